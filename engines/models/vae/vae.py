"""The variational autoencoder and the beta-VAE.

Kingma & Welling 2014, "Auto-Encoding Variational Bayes": a Gaussian posterior q(z|x) =
N(mu(x), diag(exp(logvar(x)))) from an encoder, a standard normal prior p(z), a decoder p(x|z),
trained on the evidence lower bound (ELBO) with the reparameterization trick and the closed-form
Gaussian KL. Higgins et al. 2017, "beta-VAE": the KL term weighted by beta (the registry's
``beta-vae`` sets beta = 4). Burda, Grosse & Salakhutdinov 2016: the importance-weighted bound
(IWAE) for evaluation.

Decoders:

- ``bernoulli`` (default for images): the decoder outputs logits; -log p(x|z) is the binary cross
  entropy summed over pixels. For grey-level x in [0, 1] this is the usual Bernoulli
  pseudo-likelihood, not a normalised density of continuous x.
- ``gaussian`` (default and only choice for 2-D points): p(x|z) = N(x_hat, sigma^2 I) with one
  global sigma (a scalar, shared by every pixel or coordinate). By default log sigma is a
  parameter learned with the rest (``learn_sigma``), starting from ``sigma``; with
  ``learn_sigma=False`` sigma stays fixed. It is clamped to at least ``SIGMA_MIN`` so that a
  constant data set cannot drive the likelihood to infinity. (Setting sigma to the batch's
  root mean squared error, as in the sigma-VAE of Rybkin et al. 2021, was tried and dropped: on
  a ring of 8 Gaussians it stayed at sigma^2 = the data variance with a collapsed posterior.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.nn import functional as F

from engines.models.base import Engine, EngineConfig
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError
from engines.lib.nets import conv_decoder, conv_encoder, mlp
from engines.shared.spec import HyperParam

LOG_2PI = math.log(2 * math.pi)
#: Floor of the Gaussian decoder's sigma (data units).
SIGMA_MIN = 1e-3
#: Weight of the newest value in the running average of the per-dimension KL.
EMA_WEIGHT = 0.02
#: Most decoder evaluations per chunk in :meth:`VAE.iwae_bound`.
IWAE_CHUNK = 2048
#: Hidden width when the config leaves it None: conv images, mlp images (the PyTorch examples
#: VAE), and points.
DEFAULT_HIDDEN = {"conv": 256, "mlp": 400, "points": 128}
#: Hidden layers of an mlp when the config leaves ``depth`` None.
DEFAULT_DEPTH = {"image": 1, "points": 2}


# -- the bound maths, as plain functions -------------------------------------------------------
def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per dimension, in closed form (Kingma & Welling 2014, App. B).

    Parameters
    ----------
    mu, logvar : (N, D) tensors

    Returns
    -------
    (N, D) tensor, nats, >= 0.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def gaussian_log_density(x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor | float) -> torch.Tensor:
    """Elementwise log N(x; mu, exp(logvar)), nats, broadcasting all arguments."""
    logvar = torch.as_tensor(logvar, dtype=x.dtype, device=x.device)
    return -0.5 * (LOG_2PI + logvar + (x - mu).pow(2) * torch.exp(-logvar))


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """z = mu + exp(logvar / 2) * eps with eps ~ N(0, I): a differentiable draw from q(z|x), (N, D)."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def elbo_terms(nll: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example ELBO and per-dimension KL from a one-sample reconstruction term.

    Parameters
    ----------
    nll : (N,) tensor
        -log p(x|z) at z ~ q(z|x), nats per example.
    mu, logvar : (N, D) tensors
        The posterior q(z|x).

    Returns
    -------
    elbo : (N,) tensor
        -(nll + KL), nats; an unbiased estimate of the ELBO, a lower bound on log p(x).
    kl : (N, D) tensor
        :func:`gaussian_kl`, nats.
    """
    kl = gaussian_kl(mu, logvar)
    return -(nll + kl.sum(-1)), kl


def log_importance_weights(
    log_px_z: torch.Tensor, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor
) -> torch.Tensor:
    """log w = log p(x|z) + log p(z) - log q(z|x), nats, for z drawn from q.

    Parameters
    ----------
    log_px_z : (..., ) tensor
        log p(x|z) per draw.
    z : (..., D) tensor
        Draws from q(z|x).
    mu, logvar : (..., D) tensors, broadcastable to z
        The posterior q(z|x).
    """
    log_pz = gaussian_log_density(z, torch.zeros_like(z), 0.0).sum(-1)
    log_qz = gaussian_log_density(z, mu, logvar).sum(-1)
    return log_px_z + log_pz - log_qz


def iwae_from_log_weights(log_w: torch.Tensor) -> torch.Tensor:
    """The importance-weighted bound log (1/k) sum_i w_i (Burda et al. 2016), stably.

    Parameters
    ----------
    log_w : (N, k) tensor
        Log importance weights of k draws from q(z|x) per example.

    Returns
    -------
    (N,) tensor, nats. k = 1 gives the one-sample ELBO estimate; the expectation rises with k
    towards log p(x).
    """
    return torch.logsumexp(log_w, dim=-1) - math.log(log_w.shape[-1])


# -- the model ---------------------------------------------------------------------------------
@dataclass
class VAEConfig(EngineConfig):
    """Settings of :class:`VAE` (and the beta-VAE). None means "chosen from the data".

    Attributes
    ----------
    arch : {"conv", "mlp"} or None
        Encoder and decoder networks; None is conv for images, mlp for points (points must be mlp).
    likelihood : {"bernoulli", "gaussian"} or None
        The decoder p(x|z); None is bernoulli for images, gaussian for points (which must be
        gaussian).
    beta : float
        Weight of the KL term, live-tunable in [0, 100]; beta = 1 is the plain ELBO.
    lr : float
        Adam learning rate, live-tunable in [1e-6, 0.1].
    hidden : int or None
        Width of the hidden linear layers (0: none); None takes it from ``DEFAULT_HIDDEN``.
    width : int
        Channels of the first conv stages (see :func:`engines.lib.nets.conv_encoder`).
    depth : int or None
        Hidden layers of an mlp encoder and decoder; None takes it from ``DEFAULT_DEPTH``.
    sigma : float
        Standard deviation of the Gaussian decoder in data units: its starting value when
        ``learn_sigma``, else its fixed value (module docstring).
    learn_sigma : bool
        Learn the Gaussian decoder's global log sigma.
    """

    arch: str | None = None
    likelihood: str | None = None
    beta: float = 1.0
    lr: float = 1e-3
    hidden: int | None = None
    width: int = 32
    depth: int | None = None
    sigma: float = 0.1
    learn_sigma: bool = True


def _resolve(config: VAEConfig, data: DataInfo) -> VAEConfig:
    """``config`` with the data-dependent defaults filled in; raises ConfigError on bad values."""
    points = data.kind == "points"
    if data.kind not in ("image", "points"):
        raise ConfigError(f"VAE: unknown data kind {data.kind!r} of {data.spec}")
    if config.latent_dim < 1:
        raise ConfigError(f"VAE: latent_dim must be at least 1, not {config.latent_dim}")
    arch = config.arch or ("mlp" if points else "conv")
    likelihood = config.likelihood or ("gaussian" if points else "bernoulli")
    if arch not in ("conv", "mlp"):
        raise ConfigError(f"VAE: arch must be 'conv' or 'mlp', not {arch!r}")
    if likelihood not in ("bernoulli", "gaussian"):
        raise ConfigError(f"VAE: likelihood must be 'bernoulli' or 'gaussian', not {likelihood!r}")
    if points and arch != "mlp":
        raise ConfigError(f"VAE: 2-D points ({data.spec}) need arch='mlp', not {arch!r}")
    if points and likelihood != "gaussian":
        raise ConfigError(f"VAE: 2-D points ({data.spec}) are unbounded and need likelihood='gaussian'")
    if not points and (len(data.shape) != 3 or data.shape[1] != data.shape[2]):
        raise ConfigError(f"VAE: images must be square (C, H, W), not {data.shape} ({data.spec})")
    if not (math.isfinite(config.sigma) and config.sigma >= SIGMA_MIN):
        raise ConfigError(f"VAE: sigma must be a number >= {SIGMA_MIN}, not {config.sigma!r}")
    if config.width < 1:
        raise ConfigError(f"VAE: width must be at least 1, not {config.width}")
    hidden = config.hidden
    if hidden is None:
        hidden = DEFAULT_HIDDEN["points" if points else arch]
    if hidden < 0:
        raise ConfigError(f"VAE: hidden must be >= 0, not {hidden}")
    depth = config.depth if config.depth is not None else DEFAULT_DEPTH[data.kind]
    if depth < 0:
        raise ConfigError(f"VAE: depth must be >= 0, not {depth}")
    return replace(config, arch=arch, likelihood=likelihood, hidden=hidden, depth=depth)


class VAE(Engine):
    """Variational autoencoder (Kingma & Welling 2014); beta-VAE with beta != 1 (Higgins et al. 2017).

    Parameters
    ----------
    config : VAEConfig
        Settings; the data-dependent defaults are resolved and stored back in ``self.config``.
    data : DataInfo
        Images (C, H, W) in [0, 1], square, or 2-D points.

    Attributes
    ----------
    encoder : nn.Module
        x -> (N, 2 * D): the concatenated posterior mean mu and log variance logvar.
    decoder : nn.Module
        z (N, D) -> logits (Bernoulli) or the mean x_hat (Gaussian), shaped like x.
    hyper : dict
        ``beta`` in [0, 100] and ``lr`` in [1e-6, 0.1] (log scale).

    Raises
    ------
    ConfigError
        An unknown arch or likelihood, or one that does not fit the data (module docstring).
    """

    family = "vae"
    config_class = VAEConfig

    def __init__(self, config: VAEConfig, data: DataInfo) -> None:
        config = _resolve(config, data)
        super().__init__(config, data)
        self.points = data.kind == "points"
        d = config.latent_dim
        feat = int(math.prod(data.shape))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            if config.arch == "conv":
                c, s = data.shape[0], data.shape[-1]
                self.encoder = conv_encoder(c, s, 2 * d, width=config.width, hidden=config.hidden)
                self.decoder = conv_decoder(d, c, s, width=config.width, hidden=config.hidden)
            else:
                self.encoder = nn.Sequential(nn.Flatten(), mlp(feat, 2 * d, config.hidden, config.depth))
                self.decoder = nn.Sequential(
                    mlp(d, feat, config.hidden, config.depth), nn.Unflatten(1, tuple(data.shape))
                )
        if config.likelihood == "gaussian":
            log_sigma = torch.tensor(math.log(config.sigma))
            if config.learn_sigma:
                self.log_sigma = nn.Parameter(log_sigma)
            else:
                self.register_buffer("log_sigma", log_sigma)
        # Running average of the per-dimension KL on the device (no host syncs), and its count.
        self.register_buffer("kl_ema", torch.zeros(d))
        self.register_buffer("ema_count", torch.zeros(()))
        self._last_kl = torch.zeros(d)
        self.hyper = {
            "beta": HyperParam("beta", 0.0, 0.0, 100.0, doc="weight of the KL term (1: the ELBO)"),
            "lr": HyperParam("lr", 1e-3, 1e-6, 1e-1, log=True, doc="Adam learning rate"),
        }
        self.hyper["beta"] = self.hyper["beta"].with_value(config.beta)
        self.hyper["lr"] = self.hyper["lr"].with_value(config.lr)
        self.opt = torch.optim.Adam(self.parameters(), lr=config.lr)

    # -- hyperparameters and optimiser ----------------------------------------------------------
    def on_hyper_changed(self, name: str, value: float) -> None:
        if name == "lr":
            for group in self.opt.param_groups:
                group["lr"] = value

    def optimizer_states(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": self.opt}

    # -- pieces ---------------------------------------------------------------------------------
    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x): mu and logvar, each (N, D); logvar clamped to [-30, 20] for stability."""
        h = self.encoder(x)
        mu, logvar = h.chunk(2, dim=-1)
        return mu, logvar.clamp(-30.0, 20.0)

    def decoder_log_sigma(self) -> torch.Tensor | None:
        """log sigma of the Gaussian decoder as used (clamped at log SIGMA_MIN), 0-d; None for Bernoulli."""
        if self.config.likelihood != "gaussian":
            return None
        return self.log_sigma.clamp_min(math.log(SIGMA_MIN))

    def reconstruction_nll(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """-log p(x|z), nats per example, (N,), from the decoder output ``out`` (shaped like x)."""
        dims = tuple(range(1, x.dim()))
        if self.config.likelihood == "bernoulli":
            return F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(dims)
        return -gaussian_log_density(x, out, 2.0 * self.decoder_log_sigma()).sum(dims)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(device=self.device, dtype=torch.float32)

    # -- the contract -------------------------------------------------------------------------
    def training_step(self, batch: torch.Tensor, step: int) -> dict[str, float]:
        """One Adam step on the beta-weighted negative ELBO, recon + beta * KL.

        Subclasses change the loss through :meth:`regularizer` (recon + its penalty) and add work
        after the step through :meth:`after_update`; their extra terms join the returned dict.

        Parameters
        ----------
        batch : (B, C, H, W) in [0, 1], or (B, 2) points
        step : int
            Global step (unused: the VAE has no schedule).

        Returns
        -------
        dict of str to float
            ``recon`` (-log p(x|z), nats per example, batch mean), ``kl`` (nats), ``elbo``
            (-(recon + kl), nats), ``loss`` (recon + beta * kl), ``kl/<name>`` per latent dimension
            (nats, batch mean), and for a learned Gaussian decoder ``sigma`` (after the step, data
            units).
        """
        self.train()
        x = self._prepare(batch)
        mu, logvar, z, nll = self.forward_batch(x)
        recon = nll.mean()
        kl_dim = gaussian_kl(mu, logvar).mean(0)
        kl = kl_dim.sum()
        penalty, extra = self.regularizer(mu, logvar, z, kl_dim, step)
        loss = recon + penalty
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        extra.update(self.after_update(z.detach(), step))
        with torch.no_grad():
            kl_dim = kl_dim.detach()
            self._last_kl = kl_dim
            w = torch.clamp(1.0 / (self.ema_count + 1.0), min=EMA_WEIGHT)
            self.kl_ema.add_(w * (kl_dim - self.kl_ema))
            self.ema_count.add_(1.0)
            parts = [recon.detach(), kl.detach(), loss.detach()]
            learned = self.config.likelihood == "gaussian" and self.config.learn_sigma
            if learned:
                parts.append(self.decoder_log_sigma().exp())
            n_fixed = len(parts)
            parts += [v.detach().reshape(()) for v in extra.values()]
            values = torch.cat([torch.stack(parts), kl_dim]).tolist()  # the one host sync
        terms = {"recon": values[0], "kl": values[1], "elbo": -(values[0] + values[1]), "loss": values[2]}
        if learned:
            terms["sigma"] = values[3]
        terms.update({f"kl/{name}": v for name, v in zip(self.latent.names, values[len(parts) :])})
        terms.update(zip(extra, values[n_fixed : len(parts)]))
        return terms

    # -- hooks for the disentangling subclasses (engines/models/*_vae.py) -----------------------
    def forward_batch(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode, draw one z per example and decode, with gradients.

        Parameters
        ----------
        x : (B, C, H, W) in [0, 1], or (B, 2), on the engine's device

        Returns
        -------
        mu, logvar : (B, D) tensors
            The posterior q(z|x).
        z : (B, D) tensor
            One reparameterized draw from q(z|x).
        nll : (B,) tensor
            -log p(x|z), nats per example.
        """
        mu, logvar = self.posterior(x)
        z = reparameterize(mu, logvar)
        return mu, logvar, z, self.reconstruction_nll(x, self.decoder(z))

    def regularizer(
        self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor, kl_dim: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The term added to the reconstruction term in the loss, and extra terms to log.

        The VAE's is ``beta * KL``. Subclasses replace it (beta-TCVAE, DIP-VAE, ...).

        Parameters
        ----------
        mu, logvar, z : (B, D) tensors
            From :meth:`forward_batch`, with gradients.
        kl_dim : (D,) tensor
            Closed-form KL per dimension, batch mean, nats, with gradients.
        step : int
            Global step (0-based).

        Returns
        -------
        penalty : 0-d tensor
            Nats per example (batch mean), with gradients.
        extra : dict of str to 0-d tensor
            Logged beside the usual terms under these names (read in the step's one host sync).
        """
        return self.h("beta") * kl_dim.sum(), {}

    def after_update(self, z: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """Hook run after the VAE's Adam step with the batch's detached z (B, D), e.g. to train a
        discriminator (FactorVAE). Returns 0-d tensors to log by name; the VAE's returns {}."""
        return {}

    def latent_kl(self) -> torch.Tensor:
        """Per-dimension KL of the latest training batch, (D,) nats (zeros before training)."""
        return self._last_kl

    def _output(self, out: torch.Tensor) -> torch.Tensor:
        if self.config.likelihood == "bernoulli":
            return torch.sigmoid(out)
        return out if self.points else out.clamp(0.0, 1.0)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean of p(x|z): (N, C, H, W) in [0, 1] (sigmoid of logits, or the clamped Gaussian mean),
        or (N, 2) points in data units, for z of shape (N, D)."""
        return self._output(self.decoder(z.to(device=self.device, dtype=torch.float32)))

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior mean mu, (N, D), of x (N, C, H, W) in [0, 1] or (N, 2)."""
        return self.posterior(self._prepare(x))[0]

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """decode(encode(x)): x_hat shaped like x."""
        return self.decode(self.encode(x))

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor, samples: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """The ELBO per example, (N,) nats: a lower bound on log p(x) (beta plays no part).

        Estimated with ``samples`` draws of z per example (averaged), the KL in closed form.
        """
        x = self._prepare(x)
        mu, logvar = self.posterior(x)
        total = torch.zeros(x.shape[0], device=x.device)
        for _ in range(samples):
            nll = self.reconstruction_nll(x, self.decoder(reparameterize(mu, logvar, generator)))
            total += elbo_terms(nll, mu, logvar)[0]
        return total / samples

    @torch.no_grad()
    def iwae_bound(self, x: torch.Tensor, k: int = 50, generator: torch.Generator | None = None) -> torch.Tensor:
        """The importance-weighted bound with k draws (Burda et al. 2016), (N,) nats.

        log p(x) >= IWAE_k >= IWAE_1 (= ELBO) in expectation. The N * k decoder evaluations run in
        chunks of at most ``IWAE_CHUNK`` to bound memory.
        """
        x = self._prepare(x)
        mu, logvar = self.posterior(x)
        n, d = mu.shape
        log_w = torch.empty(n, k, device=x.device)
        rows = max(1, IWAE_CHUNK // k)
        for i in range(0, n, rows):
            xs, ms, ls = x[i : i + rows], mu[i : i + rows], logvar[i : i + rows]
            per = max(1, IWAE_CHUNK // xs.shape[0])
            for j in range(0, k, per):
                kk = min(per, k - j)
                m, lv = ms.unsqueeze(1).expand(-1, kk, -1), ls.unsqueeze(1).expand(-1, kk, -1)
                z = reparameterize(m, lv, generator)
                out = self.decoder(z.reshape(-1, d))
                xx = xs.unsqueeze(1).expand(-1, kk, *xs.shape[1:]).reshape(-1, *xs.shape[1:])
                log_px_z = -self.reconstruction_nll(xx, out).view(-1, kk)
                log_w[i : i + rows, j : j + kk] = log_importance_weights(log_px_z, z, m, lv)
        return iwae_from_log_weights(log_w)
