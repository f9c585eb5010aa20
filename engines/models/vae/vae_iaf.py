"""The VAE with an inverse autoregressive flow (IAF) posterior.

Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling 2016, "Improved Variational Inference with
Inverse Autoregressive Flow". The encoder gives, beside the mean mu and the log variance of a
diagonal Gaussian, a context vector h (N, C). A draw from the posterior starts Gaussian and passes
through T IAF steps:

    z_0 = mu + sigma * eps,                 eps ~ N(0, I)
    [m_t, s_t] = MADE_t(z_{t-1}, h)         autoregressive in z_{t-1} (Germain et al. 2015)
    sigma_t = sigmoid(s_t)
    z_t = sigma_t * z_{t-1} + (1 - sigma_t) * m_t

(the paper's numerically stable, LSTM-like form of the step), the MADE's ordering reversed from
one step to the next. Output d of a step depends on z_{t-1} only through the dimensions before d
in its ordering, so each step's Jacobian is triangular (in that ordering) with diagonal sigma_t:

    log q(z_T|x) = log N(z_0; mu, sigma^2) - sum_t sum_d log sigma_t,d     (nats).

The s outputs start from a positive bias (:data:`FORGET_BIAS`, the paper's advice to initialise s
"sufficiently positive, such as close to +1 or +2", like an LSTM's forget gate), so sigma_t starts
near 1 (sigmoid(2) = 0.88) and every step first moves z only a little.

The KL(q(z_T|x) || p(z_T)) has no closed form any more: the loss, the logged ``kl`` and the ELBO use
the Monte Carlo estimate log q(z_T|x) - log p(z_T) at the draw that is decoded (one draw per
example in training), an unbiased estimate of the KL. :meth:`IAFVAE.iwae_bound` weighs draws by the
same exact log q(z_T|x). With ``flow_steps=0`` the model is the plain VAE (same networks from the
same seed; only its KL is estimated by Monte Carlo instead of in closed form).

Per-dimension KL: the flow mixes the dimensions, so the KL of q(z_T|x) does not split into one
term per latent dimension. :meth:`IAFVAE.latent_kl` therefore reports the closed-form KL per
dimension of the *base Gaussian* q_0(z_0|x) = N(mu, sigma^2), which shows which dimensions the
encoder uses but is not the KL of the flow posterior (it does not add up to ``kl``); no
``kl/<dim>`` terms are logged.

Limitation of the MADE: the first dimension of each step's ordering gets its (m, s) from biases
alone (it sees neither z nor the context h); the base Gaussian carries x's information for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from engines.lib.made import MADE
from engines.lib.nets import conv_encoder, mlp
from engines.models.vae.vae import (
    EMA_WEIGHT,
    IWAE_CHUNK,
    LOG_2PI,
    VAE,
    VAEConfig,
    gaussian_kl,
    gaussian_log_density,
    iwae_from_log_weights,
)
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError

#: Initial bias of every step's s outputs: sigma_t = sigmoid(s) starts near sigmoid(2) = 0.88.
FORGET_BIAS = 2.0
#: Hidden layers of each step's MADE.
FLOW_DEPTH = 2
#: MADE width when ``flow_hidden`` is None: max(this, 4 * latent_dim).
MIN_FLOW_HIDDEN = 64
#: Added to the config's seed to seed the flow steps' weights (the encoder and decoder use the seed).
FLOW_SEED_OFFSET = 7919


@dataclass
class IAFVAEConfig(VAEConfig):
    """Settings of :class:`IAFVAE` (Kingma et al. 2016); the rest as :class:`VAEConfig`.

    Attributes
    ----------
    flow_steps : int
        T, the number of IAF steps (>= 0; 0 is the plain VAE).
    flow_hidden : int or None
        Width of the two hidden layers of each step's MADE; None is max(64, 4 * latent_dim).
    context : int
        C, the width of the encoder's context h fed to every step's MADE (>= 0; unused, and not
        produced by the encoder, when ``flow_steps`` is 0).
    """

    flow_steps: int = 2
    flow_hidden: int | None = None
    context: int = 16


def _resolve_flow(config: IAFVAEConfig) -> IAFVAEConfig:
    """``config`` with ``flow_hidden`` filled in; raises ConfigError on bad flow settings."""
    for name in ("flow_steps", "context"):
        value = getattr(config, name)
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"IAF-VAE: {name} must be an integer >= 0, not {value!r}")
    hidden = config.flow_hidden
    if hidden is None:
        hidden = max(MIN_FLOW_HIDDEN, 4 * int(config.latent_dim))
    if not isinstance(hidden, (int, np.integer)) or isinstance(hidden, bool) or hidden < 1:
        raise ConfigError(f"IAF-VAE: flow_hidden must be an integer >= 1 or None, not {config.flow_hidden!r}")
    return replace(config, flow_steps=int(config.flow_steps), context=int(config.context), flow_hidden=int(hidden))


def _repeat(t: torch.Tensor, k: int) -> torch.Tensor:
    """(M, ...) -> (M * k, ...), each row repeated k times in a row (row i * k + j is row i)."""
    return t.unsqueeze(1).expand(-1, k, *t.shape[1:]).reshape(t.shape[0] * k, *t.shape[1:])


class IAFStep(nn.Module):
    """One IAF step: z_t = sigma * z_{t-1} + (1 - sigma) * m, [m, s] = MADE(z_{t-1}, h), sigma = sigmoid(s).

    Kingma et al. 2016. Output d depends on z_{t-1} only through the dimensions before d in
    ``order``, so dz_t / dz_{t-1} is triangular in that ordering with diagonal sigma.

    Parameters
    ----------
    dim : int
        D, the latent width.
    hidden : int
        Width of the MADE's :data:`FLOW_DEPTH` hidden layers.
    context : int
        C, the width of the context h (0: none).
    order : (D,) int array
        The autoregressive ordering (``order[d]`` is dimension d's position), see
        :class:`engines.lib.made.MADE`.
    mask_seed : int
        Seed of the MADE's hidden degrees.
    """

    def __init__(self, dim: int, hidden: int, context: int, order: np.ndarray, mask_seed: int) -> None:
        super().__init__()
        self.dim = dim
        self.made = MADE(dim, [hidden] * FLOW_DEPTH, k=2, context=context, order=order, mask_seed=mask_seed)
        with torch.no_grad():
            self.made.out.bias[dim:].fill_(FORGET_BIAS)  # the s rows: out[:, 1, :]

    def forward(self, z: torch.Tensor, h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply the step.

        Parameters
        ----------
        z : (N, D) tensor
            z_{t-1}.
        h : (N, C) tensor or None
            The encoder's context (None when the step has none).

        Returns
        -------
        z : (N, D) tensor
            z_t.
        log_sigma : (N, D) tensor
            log sigma_t, <= 0: the log of the Jacobian's diagonal (its sum is log |det|, nats).
        """
        params = self.made(z, h)
        m, s = params[:, 0], params[:, 1]
        sigma = torch.sigmoid(s)
        return sigma * z + (1.0 - sigma) * m, F.logsigmoid(s)


class IAFVAE(VAE):
    """VAE whose posterior is a Gaussian pushed through an inverse autoregressive flow (Kingma et al. 2016).

    See the module docstring for the maths. The decoder, the likelihoods, ``decode``, ``sample`` and
    the live ``beta`` and ``lr`` are the :class:`VAE`'s. ``training_step`` does not go through the
    VAE's ``regularizer`` / ``after_update`` hooks (they assume the closed-form Gaussian KL).

    Parameters
    ----------
    config : IAFVAEConfig
        Settings; data-dependent defaults (and ``flow_hidden``) are resolved into ``self.config``.
    data : DataInfo
        Images (C, H, W) in [0, 1], square, or 2-D points.

    Attributes
    ----------
    encoder : nn.Module
        x -> (N, 2 * D + C'): mu, logvar of the base Gaussian and the context h, C' = ``context``
        (0 when ``flow_steps`` is 0).
    flows : nn.ModuleList of IAFStep
        The T steps; step t uses the natural ordering for even t, the reversed one for odd t.

    Raises
    ------
    ConfigError
        Negative ``flow_steps`` or ``context``, ``flow_hidden`` < 1, or any :class:`VAE` error.
    """

    config_class = IAFVAEConfig

    def __init__(self, config: IAFVAEConfig, data: DataInfo) -> None:
        config = _resolve_flow(config)
        super().__init__(config, data)  # resolves the VAE settings, builds the decoder
        config = self.config
        d = config.latent_dim
        self.n_context = config.context if config.flow_steps > 0 else 0
        out = 2 * d + self.n_context
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)  # the VAE's encoder draws, wider by the context
            if config.arch == "conv":
                c, s = data.shape[0], data.shape[-1]
                self.encoder = conv_encoder(c, s, out, width=config.width, hidden=config.hidden)
            else:
                feat = int(math.prod(data.shape))
                self.encoder = nn.Sequential(nn.Flatten(), mlp(feat, out, config.hidden, config.depth))
            torch.manual_seed(config.seed + FLOW_SEED_OFFSET)
            natural = np.arange(d)
            self.flows = nn.ModuleList(
                IAFStep(d, config.flow_hidden, self.n_context, natural if t % 2 == 0 else natural[::-1].copy(),
                        mask_seed=config.seed + t)
                for t in range(config.flow_steps)
            )
        self.opt = torch.optim.Adam(self.parameters(), lr=config.lr)  # over the new encoder and the flow

    # -- pieces ---------------------------------------------------------------------------------
    def base_posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The encoder's outputs: mu, logvar (N, D) of the base Gaussian q_0(z_0|x) (logvar clamped to
        [-30, 20]) and the context h (N, C'), (N, 0) without flow steps."""
        out = self.encoder(x)
        d = self.config.latent_dim
        mu, logvar, h = out[:, :d], out[:, d : 2 * d], out[:, 2 * d :]
        return mu, logvar.clamp(-30.0, 20.0), h

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mu and logvar (N, D) of the base Gaussian q_0(z_0|x), before the flow."""
        return self.base_posterior(x)[:2]

    def flow(self, z0: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Push z_0 (N, D) through the T steps with context h (N, C').

        Returns
        -------
        z : (N, D) tensor
            z_T.
        log_det : (N,) tensor
            sum_t sum_d log sigma_t,d = log |det dz_T / dz_0|, nats, <= 0.
        """
        ctx = h if self.n_context else None
        z, log_det = z0, z0.new_zeros(z0.shape[0])
        for step in self.flows:
            z, log_sigma = step(z, ctx)
            log_det = log_det + log_sigma.sum(-1)
        return z, log_det

    def _draw(
        self, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, h: torch.Tensor, eps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """z_T for the noise eps (N, D), with log q(z_T|x), log p(z_T) and -log p(x|z_T), each (N,) nats.

        log N(z_0; mu, sigma^2) is computed from eps directly, -(1/2) sum (log 2 pi + logvar + eps^2),
        which is exact and stable for small sigma.
        """
        z0 = mu + torch.exp(0.5 * logvar) * eps
        z, log_det = self.flow(z0, h)
        log_q = -0.5 * (LOG_2PI + logvar + eps.pow(2)).sum(-1) - log_det
        log_p = gaussian_log_density(z, torch.zeros_like(z), 0.0).sum(-1)
        return z, log_q, log_p, self.reconstruction_nll(x, self.decoder(z))

    def _noise(self, shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)

    # -- the contract -------------------------------------------------------------------------
    def training_step(self, batch: torch.Tensor, step: int) -> dict[str, float]:
        """One Adam step on recon + beta * KL, the KL by one-sample Monte Carlo (module docstring).

        Parameters
        ----------
        batch : (B, C, H, W) in [0, 1], or (B, 2) points
        step : int
            Global step (unused).

        Returns
        -------
        dict of str to float
            ``recon`` (-log p(x|z_T), nats per example, batch mean), ``kl`` (batch mean of
            log q(z_T|x) - log p(z_T), nats: an unbiased estimate of the KL, which may come out
            negative for one batch), ``elbo`` (-(recon + kl), nats), ``loss`` (recon + beta * kl)
            and for a learned Gaussian decoder ``sigma`` (after the step, data units). No per-dimension
            terms (module docstring).
        """
        self.train()
        x = self._prepare(batch)
        mu, logvar, h = self.base_posterior(x)
        _, log_q, log_p, nll = self._draw(x, mu, logvar, h, self._noise(mu.shape, mu, None))
        recon = nll.mean()
        kl = (log_q - log_p).mean()
        loss = recon + self.h("beta") * kl
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            kl_dim = gaussian_kl(mu.detach(), logvar.detach()).mean(0)  # of the base Gaussian
            self._last_kl = kl_dim
            w = torch.clamp(1.0 / (self.ema_count + 1.0), min=EMA_WEIGHT)
            self.kl_ema.add_(w * (kl_dim - self.kl_ema))
            self.ema_count.add_(1.0)
            parts = [recon.detach(), kl.detach(), loss.detach()]
            learned = self.config.likelihood == "gaussian" and self.config.learn_sigma
            if learned:
                parts.append(self.decoder_log_sigma().exp())
            values = torch.stack(parts).tolist()  # the one host sync
        terms = {"recon": values[0], "kl": values[1], "elbo": -(values[0] + values[1]), "loss": values[2]}
        if learned:
            terms["sigma"] = values[3]
        return terms

    def forward_batch(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode, draw one z_T per example through the flow and decode, with gradients.

        Returns
        -------
        mu, logvar : (B, D) tensors
            The base Gaussian q_0(z_0|x) (not the flow posterior).
        z : (B, D) tensor
            One reparameterized draw z_T from q(z_T|x).
        nll : (B,) tensor
            -log p(x|z_T), nats per example.
        """
        mu, logvar, h = self.base_posterior(x)
        z, _, _, nll = self._draw(x, mu, logvar, h, self._noise(mu.shape, mu, None))
        return mu, logvar, z, nll

    def latent_kl(self) -> torch.Tensor:
        """Closed-form KL(q_0(z_0,d|x) || N(0, 1)) of the *base Gaussian* per dimension, (D,) nats, batch
        mean of the latest training batch (zeros before training). Not the KL of the flow posterior,
        which does not split by dimension (module docstring)."""
        return self._last_kl

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The flow applied to the base mean: z_T at eps = 0, (N, D), deterministic, for x (N, C, H, W)
        in [0, 1] or (N, 2). (The image of q_0's mode, not the mean of q(z_T|x).)"""
        mu, _, h = self.base_posterior(self._prepare(x))
        return self.flow(mu, h)[0]

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor, samples: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """The ELBO per example, (N,) nats: a lower bound on log p(x) (beta plays no part).

        log p(x|z_T) + log p(z_T) - log q(z_T|x), averaged over ``samples`` draws of z_T per example
        (the noise from ``generator``); the KL is estimated at the same draws.
        """
        x = self._prepare(x)
        mu, logvar, h = self.base_posterior(x)
        total = torch.zeros(x.shape[0], device=x.device)
        for _ in range(samples):
            _, log_q, log_p, nll = self._draw(x, mu, logvar, h, self._noise(mu.shape, mu, generator))
            total += log_p - log_q - nll
        return total / samples

    @torch.no_grad()
    def iwae_bound(self, x: torch.Tensor, k: int = 50, generator: torch.Generator | None = None) -> torch.Tensor:
        """The importance-weighted bound with k draws from the flow posterior (Burda et al. 2016), (N,) nats.

        log w = log p(x|z_T) + log p(z_T) - log q(z_T|x) with the IAF's exact log q. log p(x) >=
        IWAE_k >= IWAE_1 (= ELBO) in expectation. The N * k decoder evaluations run in chunks of at
        most ``IWAE_CHUNK``, drawing the noise as the :class:`VAE` does (so with ``flow_steps=0`` and
        the same weights and generator both give the same bound).
        """
        x = self._prepare(x)
        mu, logvar, h = self.base_posterior(x)
        n, d = mu.shape
        log_w = torch.empty(n, k, device=x.device)
        rows = max(1, IWAE_CHUNK // k)
        for i in range(0, n, rows):
            xs, ms, ls, hs = x[i : i + rows], mu[i : i + rows], logvar[i : i + rows], h[i : i + rows]
            m = xs.shape[0]
            per = max(1, IWAE_CHUNK // m)
            for j in range(0, k, per):
                kk = min(per, k - j)
                eps = self._noise((m, kk, d), ms, generator).reshape(-1, d)
                _, log_q, log_p, nll = self._draw(*(_repeat(t, kk) for t in (xs, ms, ls, hs)), eps)
                log_w[i : i + rows, j : j + kk] = (log_p - log_q - nll).view(m, kk)
        return iwae_from_log_weights(log_w)
