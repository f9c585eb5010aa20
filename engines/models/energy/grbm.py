"""The Gaussian-Bernoulli restricted Boltzmann machine for grey-level images (Hinton & Salakhutdinov 2006), in
Cho, Ilin & Raiko's (2011) parameterisation, with the visible variances fixed at 1 or learnt.

Real visible units v (V of them, the standardised pixels) and binary hidden units h (``latent_dim``), with

    E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - c.h - sum_ij v_i W_ij h_j / sigma_i^2,

    p(h_j = 1 | v) = sigmoid(c_j + sum_i W_ij v_i / sigma_i^2),        p(v | h) = N(b + W h, diag sigma^2).

Standardisation: the model lives in the space of standardised pixels v = (x - m) / s, with m and s the per-pixel
running mean and standard deviation of the training batches (buffers ``pixel_mean`` and ``pixel_sq``, the
mean of x^2; an average over the first 1,000 batches, an exponential average after; s floored at ``min_std``
so that pixels which never change stay finite). With sigma = 1 (the default) the model's noise is the data's
spread, which is what lets grey images in [0, 1] train at one learning rate (Hinton 2010, "A practical guide to
training RBMs", section 13.2). ``learn_sigma`` learns log sigma^2 per pixel as well (Cho et al. 2011's gradient),
kept in [LOG_VAR_MIN, LOG_VAR_MAX].

Training is CD-k or PCD-k (Hinton 2002; Tieleman 2008) with SGD, momentum and weight decay on W, as
:mod:`engines.models.energy.rbm`; the gradients are the data's minus the model's expectations of
-dE/dtheta: v h / sigma^2 for W, (v - b) / sigma^2 for b, h for c and ((v - b)^2 / 2 - v.(W h)) / sigma^2 for
log sigma^2, with p(h | v) in place of h.

Likelihood: log p(x) = -F(v) - log Z - sum_i log s_i, in nats. -F(v) - log Z is the log-density of the
standardised v; the last term is the Jacobian of x -> v, so that log p(x) is the density of continuous pixels x
in R^V (the Gaussian puts mass outside [0, 1] too). Being a density, it can be positive. log Z is exact (the
visible units integrated out, 2^H terms) up to 20 hidden units and estimated by AIS beyond
(:mod:`engines.lib.ais_gaussian`), kept until the weights change.

What the studio sees: z is the hidden layer (a toggle per unit), ``encode`` gives p(h | v), ``decode`` the
visible means b + W h back in pixel space, clipped to [0, 1], ``sample`` runs Gibbs chains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from engines.lib.ais import MAX_EXACT_HIDDEN, default_betas
from engines.lib.ais_gaussian import ais_log_z_gaussian, exact_log_z_gaussian, free_energy_gaussian
from engines.models.base import Engine, EngineConfig
from engines.models.energy.common import apply_cd_hyper, bernoulli, cd_hypers, cd_sgd
from engines.models.energy.rbm import TRAIN_PROBE
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError
from engines.shared.spec import LatentDim, LatentSpec

#: Bounds on a learnt log sigma^2 (standardised units): sigma in about [0.08, 7.4].
LOG_VAR_MIN, LOG_VAR_MAX = -5.0, 4.0
#: Batches over which the standardisation is a plain average; an exponential average with this horizon after.
STANDARDISE_HORIZON = 1000.0


@dataclass
class GRBMConfig(EngineConfig):
    """Settings of :class:`GRBM`.

    Attributes
    ----------
    latent_dim : int
        Hidden units H.
    lr : float
        SGD learning rate, live in [1e-5, 1]; Gaussian visible units need a smaller one than binary ones.
    k : int
        Gibbs sweeps per negative phase (CD-k / PCD-k), live in [1, 100].
    persistent : bool
        Persistent contrastive divergence (Tieleman 2008): the negative phase continues ``chains`` chains.
    chains : int
        Persistent chains (PCD).
    momentum : float
        SGD momentum, live in [0, 0.99].
    weight_decay : float
        L2 penalty on W, live in [0, 0.01].
    learn_sigma : bool
        Learn each visible unit's log sigma^2 (Cho et al. 2011); sigma stays 1 otherwise.
    min_std : float
        Floor of the per-pixel standard deviation s of the standardisation, in pixel units (0, 1].
    sample_sweeps : int
        Gibbs sweeps of a fresh chain in :meth:`GRBM.sample`.
    ais_runs, ais_betas : int
        AIS runs and intermediate distributions for log Z (more than 20 hidden units).
    """

    latent_dim: int = 64
    lr: float = 2e-3
    k: int = 1
    persistent: bool = False
    chains: int = 100
    momentum: float = 0.5
    weight_decay: float = 2e-4
    learn_sigma: bool = False
    min_std: float = 0.05
    sample_sweeps: int = 500
    ais_runs: int = 100
    ais_betas: int = 1000


class GRBM(Engine):
    """Gaussian-Bernoulli RBM (module docstring).

    Parameters
    ----------
    config : GRBMConfig
    data : DataInfo
        Images (C, H, W) with grey levels in [0, 1].

    Attributes
    ----------
    W : Parameter (V, H), b : Parameter (V,), c : Parameter (H,)
        Weights (N(0, 0.01) at first), visible and hidden biases (0), in the standardised space.
    log_var : Parameter (V,)
        log sigma^2 of the visible units (0 at first; learnt only with ``learn_sigma``).
    pixel_mean, pixel_sq : buffer (V,)
        Running means of x and x^2 of the training pixels: the standardisation m, s (module docstring).
    persistent_v : buffer (chains, V)
        PCD's chains (N(0, 1) at first), saved with the checkpoint.

    Raises
    ------
    ConfigError
        Non-image data, or a setting out of range.
    """

    family = "energy"
    #: Real-valued visible units: the likelihood is a density of continuous pixels
    #: (:func:`engines.metrics.likelihood.likelihood_space`).
    visible_units = "gaussian"
    config_class = GRBMConfig

    def __init__(self, config: GRBMConfig, data: DataInfo) -> None:
        super().__init__(config, data)
        if data.kind != "image":
            raise ConfigError("a Gaussian-Bernoulli RBM models grey-level images; use an image data set, e.g. digits")
        for name, lo, hi in (("latent_dim", 1, 4096), ("k", 1, 100), ("chains", 1, 10_000),
                             ("sample_sweeps", 1, 100_000), ("ais_runs", 2, 100_000), ("ais_betas", 10, 10**6)):
            if not lo <= int(getattr(config, name)) <= hi:
                raise ConfigError(f"GRBM: {name} must be in [{lo}, {hi}], not {getattr(config, name)}")
        if not 0 < float(config.min_std) <= 1:
            raise ConfigError(f"GRBM: min_std must be in (0, 1], not {config.min_std}")
        V, H = int(math.prod(data.shape)), int(config.latent_dim)
        self.shape = tuple(data.shape)
        gen = torch.Generator().manual_seed(config.seed)
        self.W = nn.Parameter(0.01 * torch.randn(V, H, generator=gen))
        self.b = nn.Parameter(torch.zeros(V))
        self.c = nn.Parameter(torch.zeros(H))
        self.log_var = nn.Parameter(torch.zeros(V))
        self.register_buffer("persistent_v", torch.randn(config.chains, V, generator=gen))
        self.register_buffer("pixel_mean", torch.full((V,), 0.5))
        self.register_buffer("pixel_sq", torch.full((V,), 0.5 ** 2 + 0.25 ** 2))  # s = 0.25 until data is seen
        self.register_buffer("batches_seen", torch.zeros(()))
        # the first TRAIN_PROBE training images seen (pixels), for the free energy of training against held-out data
        self.register_buffer("train_probe", torch.zeros(TRAIN_PROBE, V), persistent=False)  # not in checkpoints:
        self.register_buffer("train_probe_n", torch.zeros(()), persistent=False)  # a loaded model refills it
        self.latent = LatentSpec(tuple(LatentDim(f"h{j}", "binary", 0.0, 1.0) for j in range(H)))
        self.hyper = cd_hypers(config, lr_default=GRBMConfig.lr)
        self.opt = cd_sgd(self.W, [self.b, self.c, self.log_var], config)
        self._log_z: tuple[int, float, float] | None = None  # (version, log Z, its standard error)
        self._version = 0

    # -- hyperparameters and optimiser ----------------------------------------------------------
    def on_hyper_changed(self, name: str, value: float) -> None:
        apply_cd_hyper(self.opt, name, value)

    def optimizer_states(self) -> dict[str, torch.optim.Optimizer]:
        return {"sgd": self.opt}

    # -- the standardisation --------------------------------------------------------------------
    def pixel_std(self) -> torch.Tensor:
        """s: (V,) the per-pixel standard deviation of the training data, at least ``min_std``, pixel units."""
        return (self.pixel_sq - self.pixel_mean ** 2).clamp_min(0).sqrt().clamp_min(float(self.config.min_std))

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        """v = (x - m) / s: (N, V) for images x (N, C, H, W) or rows (N, V) in pixel units."""
        return (x.flatten(1).to(self.W) - self.pixel_mean) / self.pixel_std()

    def to_pixels(self, v: torch.Tensor) -> torch.Tensor:
        """m + s v clipped to [0, 1], as images (N, C, H, W), for standardised rows v (N, V)."""
        return (self.pixel_mean + self.pixel_std() * v).clamp(0.0, 1.0).view(-1, *self.shape)

    # -- the conditionals -----------------------------------------------------------------------
    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        """p(h = 1 | v): (N, H) for standardised v (N, V)."""
        return torch.sigmoid((v * torch.exp(-self.log_var)) @ self.W + self.c)

    def visible_means(self, h: torch.Tensor) -> torch.Tensor:
        """E[v | h] = b + W h: (N, V) standardised, for h (N, H)."""
        return h @ self.W.T + self.b

    def gibbs(self, v: torch.Tensor, sweeps: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``sweeps`` Gibbs sweeps (h | v, then v | h) from standardised v (N, V); the last v drawn."""
        std = torch.exp(0.5 * self.log_var)
        for _ in range(int(sweeps)):
            h = bernoulli(self.hidden_probs(v), generator)
            mean = self.visible_means(h)
            v = mean + std * torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return v

    # -- the chains the Energy tab watches (the "chains" extra) ------------------------------------
    # A chain's state is in the model's standardised visible space, (n, V); no gradients are kept.
    @torch.no_grad()
    def chain_start(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Random visible states (n, V) to start ``n`` chains from: N(0, 1), the standardised data's spread."""
        return torch.randn(int(n), self.W.shape[0], generator=generator, device=self.device, dtype=self.W.dtype)

    @torch.no_grad()
    def clamp_values(self, image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """An image (1, C, H, W) in [0, 1] as visible values (1, V) to clamp a chain to: its standardised pixels
        (no draw; ``generator`` is unused)."""
        return self.standardise(image.reshape(1, -1))

    @torch.no_grad()
    def chain_step(self, v: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One Gibbs sweep of chains (n, V): h given v, then v given h."""
        return self.gibbs(v, 1, generator)

    @torch.no_grad()
    def chain_images(self, v: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """What the chains show: the means b + W h for h drawn given the state v (n, V), as images (n, C, H, W)
        in [0, 1]."""
        return self.to_pixels(self.visible_means(bernoulli(self.hidden_probs(v), generator)))

    @torch.no_grad()
    def hidden_layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        """p(h = 1 | v) of images x (N, C, H, W) in [0, 1], one (N, H) tensor per hidden layer (one here)."""
        return [self.hidden_probs(self.standardise(x))]

    def filters(self, layer: int = 0) -> torch.Tensor:
        """Each hidden unit's generative field in pixel units, s_i W_ij (what turning unit j on adds to the mean
        image), as an image: (H, C, h, w), scaled to [0, 1] per unit (0.5 is a zero weight).

        Raises
        ------
        ConfigError
            A ``layer`` other than 0 (there is one hidden layer).
        """
        if layer != 0:
            raise ConfigError(f"a Gaussian-Bernoulli RBM has one hidden layer (0), not {layer}")
        w = (self.W.detach() * self.pixel_std()[:, None]).T
        scale = w.abs().amax(1, keepdim=True).clamp_min(1e-12)
        return (0.5 + 0.5 * w / scale).reshape(-1, *self.shape)

    def exact_log_z(self) -> float | None:
        """log Z of the standardised density summed exactly (nats), or None beyond 20 hidden units."""
        if self.W.shape[1] > MAX_EXACT_HIDDEN:
            return None
        with torch.no_grad():
            return exact_log_z_gaussian(self.W, self.b, self.c, self.log_var)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) (N,) nats for standardised v (N, V)."""
        return free_energy_gaussian(v, self.W, self.b, self.c, self.log_var)

    def held_out_terms(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, float]:
        """Mean free energy (nats, standardised space) of the held-out probe x (N, C, H, W) and of the first
        training images seen, and their difference: the overfitting gap (Hinton 2010, section 6)."""
        kept = int(self.train_probe_n)
        if kept == 0:
            return {}
        with torch.no_grad():
            held = float(self.free_energy(self.standardise(x.flatten(1).to(self.W))).mean())
            train = float(self.free_energy(self.standardise(self.train_probe[:kept])).mean())
        return {"free_energy_held_out": held, "free_energy_train": train, "free_energy_gap": held - train}

    # -- training -------------------------------------------------------------------------------
    def training_step(self, batch: torch.Tensor, step: int) -> dict[str, float]:
        """One CD-k (or PCD-k) update on a batch (B, C, H, W) in [0, 1].

        Returns ``recon`` (squared error of a one-sweep reconstruction of the means, clipped to [0, 1], per image,
        pixel units squared) and ``free_energy`` (mean F of the standardised batch, nats).
        """
        x = batch.flatten(1).to(self.W.dtype)
        n = x.shape[0]
        k = int(self.h("k"))
        with torch.no_grad():
            self.batches_seen += 1
            rate = 1.0 / torch.clamp(self.batches_seen, max=STANDARDISE_HORIZON)
            self.pixel_mean += (x.mean(0) - self.pixel_mean) * rate
            self.pixel_sq += ((x * x).mean(0) - self.pixel_sq) * rate
            kept = int(self.train_probe_n)
            if kept < TRAIN_PROBE:
                take = min(TRAIN_PROBE - kept, n)
                self.train_probe[kept:kept + take] = x[:take]
                self.train_probe_n += take
            v0 = self.standardise(x)
            ph0 = self.hidden_probs(v0)
            if self.config.persistent:
                vk = self.gibbs(self.persistent_v, k)
                self.persistent_v.copy_(vk)
            else:
                vk = self.gibbs(v0, k)  # CD-k from the data
            phk = self.hidden_probs(vk)
            m = vk.shape[0]
            inv_var = torch.exp(-self.log_var)
            self.W.grad = -((v0 * inv_var).T @ ph0 / n - (vk * inv_var).T @ phk / m)
            self.b.grad = -(v0.mean(0) - vk.mean(0)) * inv_var
            self.c.grad = -(ph0.mean(0) - phk.mean(0))
            if self.config.learn_sigma:
                def stat(v: torch.Tensor, ph: torch.Tensor) -> torch.Tensor:  # -dE/dlog sigma^2, h by p(h | v)
                    return ((0.5 * (v - self.b) ** 2 - v * (ph @ self.W.T)) * inv_var).mean(0)
                self.log_var.grad = -(stat(v0, ph0) - stat(vk, phk))
            else:
                self.log_var.grad = None
        self.opt.step()
        with torch.no_grad():
            self.log_var.clamp_(LOG_VAR_MIN, LOG_VAR_MAX)
        self._version += 1
        with torch.no_grad():
            recon = self.to_pixels(self.visible_means(bernoulli(self.hidden_probs(v0)))).flatten(1)
            fe = self.free_energy(v0)
        return {"recon": float(((recon - x) ** 2).sum(1).mean()), "free_energy": float(fe.mean())}

    # -- the latent -----------------------------------------------------------------------------
    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Hidden states (n, H) of fresh Gibbs chains after ``sample_sweeps`` sweeps (the model's marginal of h)."""
        with torch.no_grad():
            v = self.gibbs(self.chain_start(n, generator), self.config.sample_sweeps, generator)
            return bernoulli(self.hidden_probs(v), generator)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The visible means b + W h in pixel space, clipped: (N, C, H, W) in [0, 1] for hidden states z (N, H)
        in [0, 1]."""
        return self.to_pixels(self.visible_means(z.to(self.W)))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """p(h = 1 | v): (N, H) in [0, 1] for images x (N, C, H, W) in [0, 1]."""
        return self.hidden_probs(self.standardise(x))

    # -- the likelihood -------------------------------------------------------------------------
    def log_z(self, generator: torch.Generator | None = None, progress=None, cancel=None) -> tuple[float, float]:  # noqa: ANN001
        """log Z of the standardised density and its standard error, nats: exact (error 0) up to 20 hidden
        units, else AIS; kept until the weights change."""
        if self._log_z is not None and self._log_z[0] == self._version:
            return self._log_z[1], self._log_z[2]
        if self.W.shape[1] <= MAX_EXACT_HIDDEN:
            value, se = self.exact_log_z(), 0.0
        else:
            gen = generator if generator is not None else torch.Generator(device=self.device).manual_seed(0)
            value, se = self.estimate_log_z(self.config.ais_runs, self.config.ais_betas, gen, progress, cancel)
        if math.isfinite(value):
            self._log_z = (self._version, value, se)
        return value, se

    def estimate_log_z(self, runs: int, betas: int, generator: torch.Generator, progress=None,  # noqa: ANN001
                       cancel=None) -> tuple[float, float]:  # noqa: ANN001
        """log Z by AIS from the weightless model with the standardised data's mean (0) and the model's sigma:
        ``runs`` runs over ``betas`` temperatures; (log Z, its standard error) in nats, NaN if cancelled.
        ``progress(done, total)`` every 100 temperatures; ``cancel`` a threading.Event."""
        with torch.no_grad():
            return ais_log_z_gaussian(self.W, self.b, self.c, self.log_var, None, int(runs),
                                      default_betas(int(betas), self.device), generator, progress, cancel)

    def log_prob(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """log p(x) = -F(v) - log Z - sum_i log s_i: (N,) nats, the density of continuous pixels x (N, C, H, W)
        (module docstring); log Z exact or estimated (:meth:`log_z`)."""
        value, _ = self.log_z(generator)
        with torch.no_grad():
            return -self.free_energy(self.standardise(x)) - value - torch.log(self.pixel_std()).sum()

