"""A VAE with discrete latents: N categorical variables of K classes each, trained by one of four gradient estimators.

The encoder gives logits l (N, K) of q(z | x), a product of categoricals; the decoder reads the N one-hot
vectors side by side (N K values) and gives Bernoulli logits of the pixels. The prior is uniform, so
KL(q || p) = sum_n sum_k q_nk log(K q_nk), nats. The ELBO's reconstruction term needs a gradient through a
discrete sample; ``estimator`` picks how:

- ``"gumbel"``: the Gumbel-softmax (Concrete) relaxation y = softmax((l + g) / tau), g Gumbel noise
  (Jang, Gu & Poole 2017; Maddison, Mnih & Teh 2017); biased, low variance, the decoder sees soft codes;
- ``"st-gumbel"``: the straight-through variant, one-hot forwards, the relaxation's gradient backwards;
- ``"reinforce"``: the score-function estimator (Williams 1992), f(z) grad log q(z | x), with a running mean of
  f subtracted (unbiased, high variance);
- ``"nvil"``: REINFORCE with an input-dependent baseline b(x) learnt by regression on f and the running
  centring of Mnih & Gregor (2014).

``temperature`` (tau) is live; with ``anneal_rate`` > 0 the temperature used at step t is
max(``tau_min``, tau exp(-anneal_rate t)) (Jang et al.'s schedule), logged as the term ``tau``. Every
``variance_every`` steps the estimators' gradients with respect to the logits of a fixed batch are drawn
``variance_draws`` times each, and their mean variance per logit is logged as ``grad_var/<estimator>`` for all
four on the same plot: what each estimator costs in noise, measured on the model as it trains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engines.lib.nets import conv_decoder, conv_encoder, mlp
from engines.models.base import Engine, EngineConfig
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError
from engines.shared.spec import HyperParam, LatentDim, LatentSpec

ESTIMATORS = ("gumbel", "st-gumbel", "reinforce", "nvil")


@dataclass
class GumbelVAEConfig(EngineConfig):
    """Settings of :class:`GumbelVAE`.

    Attributes
    ----------
    latent_dim : int
        Categorical variables N.
    n_categories : int
        Classes K of each.
    estimator : {"gumbel", "st-gumbel", "reinforce", "nvil"}
    temperature : float
        tau, live in [0.05, 10].
    anneal_rate, tau_min : float
        Exponential annealing of tau per step (0: none) and its floor.
    arch : {"conv", "mlp"}
    width, hidden : int
        Conv channels and hidden units.
    lr, beta : float
        Adam learning rate (live) and the KL weight (live; 1 is the ELBO).
    variance_every, variance_draws : int
        Steps between gradient-variance measurements (0: never) and draws per estimator.
    likelihood : {"bernoulli"}
        Pixel likelihood (exact on binarised images, a pseudo-likelihood on grey levels).
    """

    latent_dim: int = 8
    n_categories: int = 10
    estimator: str = "gumbel"
    temperature: float = 1.0
    anneal_rate: float = 0.0
    tau_min: float = 0.5
    arch: str = "mlp"
    width: int = 32
    hidden: int = 256
    lr: float = 1e-3
    beta: float = 1.0
    variance_every: int = 50
    variance_draws: int = 8
    likelihood: str = "bernoulli"


class GumbelVAE(Engine):
    """VAE with N categorical latents of K classes (module docstring).

    Parameters
    ----------
    config : GumbelVAEConfig
    data : DataInfo
        Images (C, H, W) in [0, 1] (Bernoulli pixels: binarised data is what it models exactly).

    Raises
    ------
    ConfigError
        Non-image data, an unknown estimator or arch, or a setting out of range.
    """

    family = "vae"
    config_class = GumbelVAEConfig

    def __init__(self, config: GumbelVAEConfig, data: DataInfo) -> None:
        super().__init__(config, data)
        if data.kind != "image":
            raise ConfigError("the Gumbel-softmax VAE models images; use an image data set, e.g. binarized:digits")
        if config.estimator not in ESTIMATORS:
            raise ConfigError(f"gumbel-vae: estimator must be one of {', '.join(ESTIMATORS)}, not {config.estimator!r}")
        if config.likelihood != "bernoulli":
            raise ConfigError(f"gumbel-vae: the pixels are Bernoulli, not {config.likelihood!r}")
        if config.arch not in ("conv", "mlp"):
            raise ConfigError(f"gumbel-vae: arch must be conv or mlp, not {config.arch!r}")
        if not (1 <= config.latent_dim <= 256 and 2 <= config.n_categories <= 256):
            raise ConfigError("gumbel-vae: latent_dim in [1, 256] and n_categories in [2, 256]")
        if not (0.0 <= config.anneal_rate < 1.0 and 0.01 <= config.tau_min <= 10.0):
            raise ConfigError("gumbel-vae: anneal_rate in [0, 1) and tau_min in [0.01, 10]")
        n, k = config.latent_dim, config.n_categories
        self.n, self.k, self.shape = n, k, tuple(data.shape)
        feat = int(math.prod(data.shape))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            if config.arch == "conv":
                c, s = data.shape[0], data.shape[-1]
                self.encoder = conv_encoder(c, s, n * k, width=config.width, hidden=config.hidden)
                self.decoder = conv_decoder(n * k, c, s, width=config.width, hidden=config.hidden)
            else:
                self.encoder = nn.Sequential(nn.Flatten(), mlp(feat, n * k, config.hidden, 2))
                self.decoder = nn.Sequential(mlp(n * k, feat, config.hidden, 2), nn.Unflatten(1, self.shape))
            self.baseline = nn.Sequential(nn.Flatten(), mlp(feat, 1, 64, 1))  # NVIL's b(x)
        self.register_buffer("centre", torch.zeros(()))  # running mean of the cost (REINFORCE, NVIL)
        self.latent = LatentSpec(tuple(LatentDim(f"c{i}={j}", "categorical", 0.0, 1.0, f"c{i}")
                                       for i in range(n) for j in range(k)))
        self.hyper = {
            "lr": HyperParam("lr", 1e-3, 1e-6, 1e-1, log=True, doc="Adam learning rate").with_value(config.lr),
            "beta": HyperParam("beta", 1.0, 0.0, 100.0, doc="KL weight (1: the ELBO)").with_value(config.beta),
            "temperature": HyperParam("temperature", 1.0, 0.05, 10.0, log=True,
                                      doc="Gumbel-softmax temperature tau").with_value(config.temperature),
        }
        self.opt = torch.optim.Adam(self.parameters(), lr=config.lr)
        self._probe: torch.Tensor | None = None  # the fixed batch the gradient variance is measured on

    def on_hyper_changed(self, name: str, value: float) -> None:
        if name == "lr":
            for group in self.opt.param_groups:
                group["lr"] = value

    def optimizer_states(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": self.opt}

    def tau(self, step: int) -> float:
        """The temperature used at ``step``: the live one, annealed when ``anneal_rate`` > 0."""
        tau = self.h("temperature")
        if self.config.anneal_rate > 0:
            tau = max(self.config.tau_min, tau * math.exp(-self.config.anneal_rate * step))
        return tau

    # -- pieces ---------------------------------------------------------------------------------
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, K) logits of q(z | x)."""
        return self.encoder(x).view(-1, self.n, self.k)

    def recon_nll(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """-log p(x | z), (B,) nats, for codes (B, N, K) (one-hot or relaxed)."""
        out = self.decoder(codes.reshape(len(codes), -1))
        return F.binary_cross_entropy_with_logits(out, x, reduction="none").flatten(1).sum(1)

    def kl(self, logits: torch.Tensor) -> torch.Tensor:
        """KL(q(z | x) || uniform), (B,) nats."""
        log_q = F.log_softmax(logits, -1)
        return (log_q.exp() * (log_q + math.log(self.k))).sum((1, 2))

    def surrogate(self, x: torch.Tensor, logits: torch.Tensor, estimator: str, tau: float,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A loss whose gradient is ``estimator``'s estimate of the negative ELBO's, and the cost f (B,) nats.

        The decoder's and the KL's gradients are exact in every case; only how the reconstruction's gradient
        reaches the logits differs.
        """
        if estimator in ("gumbel", "st-gumbel"):
            y = gumbel_softmax(logits, tau, hard=estimator == "st-gumbel", generator=generator)
            cost = self.recon_nll(x, y)
            return cost, cost.detach()
        log_q = F.log_softmax(logits, -1)
        z = F.one_hot(sample_categorical(log_q.detach(), generator), self.k).to(logits.dtype)
        cost = self.recon_nll(x, z)
        f = cost.detach()
        log_qz = (log_q * z).sum((1, 2))
        b = self.centre
        if estimator == "nvil":
            b = b + self.baseline(x).squeeze(1).detach()
        return cost + (f - b) * log_qz, f

    # -- training -------------------------------------------------------------------------------
    def training_step(self, batch: torch.Tensor, step: int) -> dict[str, float]:
        """One step of the negative ELBO (KL weighted by beta) with the configured estimator.

        Returns ``recon`` and ``kl`` (nats per image), ``elbo``, ``loss``, ``tau``, ``baseline_mse`` for
        NVIL, and every ``variance_every`` steps ``grad_var/<estimator>`` for the four estimators.
        """
        x = batch
        tau = self.tau(step)
        logits = self.logits(x)
        kl = self.kl(logits)
        est = self.config.estimator
        surrogate, f = self.surrogate(x, logits, est, tau)
        loss = (surrogate + self.h("beta") * kl).mean()
        terms: dict[str, float] = {}
        if est == "nvil":
            b = self.baseline(x).squeeze(1)
            mse = ((f - self.centre - b) ** 2).mean()
            loss = loss + mse
            terms["baseline_mse"] = float(mse.detach())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            self.centre.mul_(0.9).add_(0.1 * f.mean())
        recon, kl_mean = float(f.mean()), float(kl.detach().mean())
        terms = {"recon": recon, "kl": kl_mean, "elbo": -(recon + kl_mean), "loss": float(loss.detach()),
                 "tau": tau, **terms}
        every = self.config.variance_every
        if every and step % every == 0:
            if self._probe is None or self._probe.shape[1:] != x.shape[1:]:
                self._probe = x[:16].detach().clone()
            terms.update({f"grad_var/{name}": v for name, v in self.gradient_variance(self._probe, tau).items()})
        return terms

    def gradient_variance(self, x: torch.Tensor, tau: float, draws: int | None = None,
                          generator: torch.Generator | None = None) -> dict[str, float]:
        """Each estimator's mean variance per logit of the gradient of the reconstruction term with respect to
        the logits of ``x``, over ``draws`` independent draws (the weights untouched)."""
        draws = int(draws or self.config.variance_draws)
        with torch.no_grad():
            base = self.logits(x)
        out = {}
        for name in ESTIMATORS:
            grads = []
            for _ in range(draws):
                logits = base.clone().requires_grad_(True)
                surrogate, _ = self.surrogate(x, logits, name, tau, generator)
                (g,) = torch.autograd.grad(surrogate.sum(), logits)
                grads.append(g)
            out[name] = float(torch.stack(grads).var(0).mean())
        for p in self.parameters():  # autograd.grad leaves no .grad, but be sure the step's are not mixed in
            p.grad = None
        return out

    # -- the latent -----------------------------------------------------------------------------
    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, N K) one-hot draws of the uniform prior."""
        idx = torch.randint(0, self.k, (n, self.n), generator=generator, device=self.device)
        return F.one_hot(idx, self.k).float().reshape(n, -1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel means (N, C, H, W) in [0, 1] of codes z (N, N K): one-hot, or any mixture within each block."""
        return torch.sigmoid(self.decoder(z.to(self.device, torch.float32)))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """q(z | x)'s class probabilities (N, N K): a valid mixture in each block."""
        return F.softmax(self.logits(x.to(self.device)), -1).reshape(len(x), -1)

    def log_prob(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The ELBO (N,) nats with one hard sample of q (a lower bound on log p(x), estimated)."""
        with torch.no_grad():
            logits = self.logits(x.to(self.device))
            z = F.one_hot(sample_categorical(F.log_softmax(logits, -1), generator), self.k).float()
            return -(self.recon_nll(x.to(self.device), z) + self.kl(logits))


def gumbel_softmax(logits: torch.Tensor, tau: float, hard: bool = False,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Gumbel-softmax samples (..., K) of categorical logits (..., K) at temperature ``tau`` (Jang et al. 2017).

    With ``hard`` the forward value is the one-hot argmax and the gradient the relaxation's (straight-through).
    """
    u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
    g = -torch.log((-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20))  # Gumbel(0, 1) noise
    y = F.softmax((logits + g) / tau, -1)
    if hard:
        one = F.one_hot(y.argmax(-1), logits.shape[-1]).to(y.dtype)
        y = one - y.detach() + y
    return y


def sample_categorical(log_p: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Class indices (...) drawn from log-probabilities (..., K) by the Gumbel-max trick."""
    u = torch.rand(log_p.shape, generator=generator, device=log_p.device, dtype=log_p.dtype)
    return (log_p - torch.log((-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20))).argmax(-1)
