"""The Bernoulli-Bernoulli restricted Boltzmann machine, trained by contrastive divergence (Hinton 2002) or
persistent contrastive divergence (Tieleman 2008).

Visible units v (the image's pixels, V of them) and hidden units h (``latent_dim`` of them), both binary, with
the energy E(v, h) = -b.v - c.h - v.W.h. Both conditionals factorise,

    p(h_j = 1 | v) = sigmoid(c_j + v.W[:, j]),        p(v_i = 1 | h) = sigmoid(b_i + W[i, :].h),

so Gibbs sampling alternates two matrix products. The log-likelihood gradient is the data's expectation of
-dE/dtheta minus the model's; CD-k estimates the model's by k Gibbs sweeps from the data, PCD by k sweeps of
``chains`` persistent chains that carry on from step to step. The update goes through SGD with momentum and
weight decay on W (Hinton 2010, "A practical guide to training RBMs"). The free energy, the exact log Z of a
small RBM and its AIS estimate are in :mod:`engines.lib.ais`.

What the studio sees: z is the hidden layer (a toggle per unit), ``encode`` gives p(h | v), ``decode`` gives
p(v | h) (the visible means), ``sample`` runs Gibbs chains, ``log_prob`` is -F(v) - log Z with log Z exact for
up to 20 hidden units and estimated by AIS (Salakhutdinov & Murray 2008) beyond, kept until the weights change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engines.lib.ais import MAX_EXACT_HIDDEN, ais_log_z, default_betas, exact_log_z, free_energy
from engines.models.base import Engine, EngineConfig
from engines.models.energy.common import apply_cd_hyper, bernoulli, cd_hypers, cd_sgd
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError
from engines.shared.spec import LatentDim, LatentSpec

#: Training images kept for the free energy of training data against held-out data (the overfitting gap).
TRAIN_PROBE = 100


@dataclass
class RBMConfig(EngineConfig):
    """Settings of :class:`RBM`.

    Attributes
    ----------
    latent_dim : int
        Hidden units H.
    lr : float
        SGD learning rate, live in [1e-5, 1].
    k : int
        Gibbs sweeps per negative phase (CD-k / PCD-k), live in [1, 100].
    persistent : bool
        Persistent contrastive divergence (Tieleman 2008): the negative phase continues ``chains`` chains.
    chains : int
        Persistent chains (PCD), and chains run by ``sample``.
    momentum : float
        SGD momentum, live in [0, 0.99].
    weight_decay : float
        L2 penalty on W, live in [0, 0.01].
    sample_sweeps : int
        Gibbs sweeps of a fresh chain in :meth:`RBM.sample`.
    ais_runs, ais_betas : int
        AIS runs and intermediate distributions for log Z (more than 20 hidden units).
    """

    latent_dim: int = 64
    lr: float = 0.05
    k: int = 1
    persistent: bool = False
    chains: int = 100
    momentum: float = 0.5
    weight_decay: float = 2e-4
    sample_sweeps: int = 500
    ais_runs: int = 100
    ais_betas: int = 1000


class RBM(Engine):
    """Bernoulli-Bernoulli RBM (module docstring).

    Parameters
    ----------
    config : RBMConfig
    data : DataInfo
        Images (C, H, W) in [0, 1]; grey values are read as Bernoulli means (binarised data is what the model
        describes: see ``binarized:SPEC``).

    Attributes
    ----------
    W : Parameter (V, H), b : Parameter (V,), c : Parameter (H,)
        Weights (N(0, 0.01) at first), visible and hidden biases (0).
    persistent_v : buffer (chains, V)
        PCD's chains (Bernoulli(1/2) at first), saved with the checkpoint.
    base_bias : buffer (V,)
        Log-odds of the mean training pixel (a running mean of the batches seen): AIS's base model.

    Raises
    ------
    ConfigError
        Non-image data, or a setting out of range.
    """

    family = "energy"
    config_class = RBMConfig

    def __init__(self, config: RBMConfig, data: DataInfo) -> None:
        super().__init__(config, data)
        if data.kind != "image":
            raise ConfigError("an RBM models images (binary pixels); use an image data set, e.g. binarized:digits")
        for name, lo, hi in (("latent_dim", 1, 4096), ("k", 1, 100), ("chains", 1, 10_000),
                             ("sample_sweeps", 1, 100_000), ("ais_runs", 2, 100_000), ("ais_betas", 10, 10**6)):
            if not lo <= int(getattr(config, name)) <= hi:
                raise ConfigError(f"RBM: {name} must be in [{lo}, {hi}], not {getattr(config, name)}")
        V, H = int(math.prod(data.shape)), int(config.latent_dim)
        self.shape = tuple(data.shape)
        gen = torch.Generator().manual_seed(config.seed)
        self.W = nn.Parameter(0.01 * torch.randn(V, H, generator=gen))
        self.b = nn.Parameter(torch.zeros(V))
        self.c = nn.Parameter(torch.zeros(H))
        self.register_buffer("persistent_v", (torch.rand(config.chains, V, generator=gen) < 0.5).float())
        self.register_buffer("pixel_mean", torch.full((V,), 0.5))
        self.register_buffer("batches_seen", torch.zeros(()))
        # the first TRAIN_PROBE training images seen, for the free energy of training data against held-out data
        self.register_buffer("train_probe", torch.zeros(TRAIN_PROBE, V), persistent=False)  # not in checkpoints:
        self.register_buffer("train_probe_n", torch.zeros(()), persistent=False)  # a loaded model refills it
        self.latent = LatentSpec(tuple(LatentDim(f"h{j}", "binary", 0.0, 1.0) for j in range(H)))
        self.hyper = cd_hypers(config)
        self.opt = cd_sgd(self.W, [self.b, self.c], config)
        self._log_z: tuple[int, float, float] | None = None  # (version, log Z, its standard error)
        self._version = 0

    # -- hyperparameters and optimiser ----------------------------------------------------------
    def on_hyper_changed(self, name: str, value: float) -> None:
        apply_cd_hyper(self.opt, name, value)

    def optimizer_states(self) -> dict[str, torch.optim.Optimizer]:
        return {"sgd": self.opt}

    # -- the conditionals -----------------------------------------------------------------------
    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        """p(h = 1 | v): (N, H) for v (N, V)."""
        return torch.sigmoid(v @ self.W + self.c)

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        """p(v = 1 | h): (N, V) for h (N, H)."""
        return torch.sigmoid(h @ self.W.T + self.b)

    def gibbs(self, v: torch.Tensor, sweeps: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``sweeps`` Gibbs sweeps (h | v, then v | h) from binary v (N, V); the last binary v."""
        for _ in range(int(sweeps)):
            h = bernoulli(self.hidden_probs(v), generator)
            v = bernoulli(self.visible_probs(h), generator)
        return v

    # -- the chains the Energy tab watches (the "chains" extra) ------------------------------------
    # A chain's state lives in the model's visible space, (n, V); every energy model with Gibbs chains gives
    # these five, so the worker's jobs never depend on the model's insides.
    def chain_start(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Random visible states (n, V) to start ``n`` chains from (Bernoulli(1/2) pixels)."""
        return bernoulli(torch.full((int(n), self.W.shape[0]), 0.5, device=self.device), generator)

    def clamp_values(self, image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """An image (1, C, H, W) in [0, 1] as visible values (1, V) to clamp a chain to: a binary draw."""
        return bernoulli(image.reshape(1, -1).to(self.W), generator)

    def chain_step(self, v: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One Gibbs sweep of chains (n, V): h given v, then v given h."""
        return self.gibbs(v, 1, generator)

    def chain_images(self, v: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """What the chains show: p(v | h) for h drawn given the state v (n, V), as images (n, C, H, W) in [0, 1]."""
        return self.visible_probs(bernoulli(self.hidden_probs(v), generator)).view(-1, *self.shape)

    def hidden_layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        """p(h = 1 | v) of images x (N, C, H, W) in [0, 1], one (N, H) tensor per hidden layer (one here)."""
        return [self.hidden_probs(x.flatten(1).to(self.W))]

    def filters(self, layer: int = 0) -> torch.Tensor:
        """Each hidden unit's weights as an image, (H, C, h, w), scaled to [0, 1] per unit (0.5 is a zero weight).

        Raises
        ------
        ConfigError
            A layer other than 0 (an RBM has one hidden layer).
        """
        if layer != 0:
            raise ConfigError(f"an RBM has one hidden layer (0), not {layer}")
        w = self.W.detach().T
        scale = w.abs().amax(1, keepdim=True).clamp_min(1e-12)
        return (0.5 + 0.5 * w / scale).reshape(-1, *self.shape)

    def exact_log_z(self) -> float | None:
        """log Z summed exactly (nats), or None beyond 20 hidden units."""
        if self.W.shape[1] > MAX_EXACT_HIDDEN:
            return None
        with torch.no_grad():
            return exact_log_z(self.W, self.b, self.c)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) (N,) nats for v (N, V) or images (N, C, H, W)."""
        return free_energy(v.flatten(1), self.W, self.b, self.c)

    # -- training -------------------------------------------------------------------------------
    def training_step(self, batch: torch.Tensor, step: int) -> dict[str, float]:
        """One CD-k (or PCD-k) update on a batch (B, C, H, W) in [0, 1].

        Returns ``recon`` (squared error of a one-sweep reconstruction, per image), ``free_energy`` (mean
        F of the batch, nats) and ``pseudo_nll`` (the stochastic pseudo-negative-log-likelihood, one random
        pixel flipped per image and scaled by V, nats per image: Besag 1975).
        """
        v0 = batch.flatten(1).to(self.W.dtype)
        n, V = v0.shape
        k = int(self.h("k"))
        with torch.no_grad():
            self.batches_seen += 1
            self.pixel_mean += (v0.mean(0) - self.pixel_mean) / torch.clamp(self.batches_seen, max=1000.0)
            kept = int(self.train_probe_n)
            if kept < TRAIN_PROBE:
                take = min(TRAIN_PROBE - kept, n)
                self.train_probe[kept:kept + take] = v0[:take]
                self.train_probe_n += take
            ph0 = self.hidden_probs(v0)
            if self.config.persistent:
                vk = self.gibbs(self.persistent_v, k)
                self.persistent_v.copy_(vk)
            else:
                vk = self.gibbs(bernoulli(v0), k)  # CD-k from the data (binarised by sampling)
            phk = self.hidden_probs(vk)
            m = vk.shape[0]
            self.W.grad = -(v0.T @ ph0 / n - vk.T @ phk / m)
            self.b.grad = -(v0.mean(0) - vk.mean(0))
            self.c.grad = -(ph0.mean(0) - phk.mean(0))
        self.opt.step()
        self._version += 1
        with torch.no_grad():
            recon = self.visible_probs(bernoulli(self.hidden_probs(v0)))
            fe = self.free_energy(v0)
            flip = torch.randint(0, V, (n,), device=v0.device)
            v_flip = v0.clone()
            v_flip[torch.arange(n, device=v0.device), flip] = 1 - v_flip[torch.arange(n, device=v0.device), flip]
            pseudo = -V * F.logsigmoid(self.free_energy(v_flip) - fe)
        return {"recon": float(((recon - v0) ** 2).sum(1).mean()), "free_energy": float(fe.mean()),
                "pseudo_nll": float(pseudo.mean())}

    def held_out_terms(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, float]:
        """Mean free energy (nats) of the held-out probe x (N, C, H, W) and of the first training images seen:
        ``free_energy_held_out``, ``free_energy_train`` and their difference ``free_energy_gap``. The gap
        growing while training goes on is the sign of overfitting that needs no log Z (Hinton 2010, section 6)."""
        kept = int(self.train_probe_n)
        if kept == 0:
            return {}
        with torch.no_grad():
            held = float(self.free_energy(x.to(self.W)).mean())
            train = float(self.free_energy(self.train_probe[:kept]).mean())
        return {"free_energy_held_out": held, "free_energy_train": train, "free_energy_gap": held - train}

    # -- the latent -----------------------------------------------------------------------------
    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Hidden states (n, H) of fresh Gibbs chains after ``sample_sweeps`` sweeps (the model's marginal of h)."""
        with torch.no_grad():
            v = self.gibbs(bernoulli(torch.full((n, self.W.shape[0]), 0.5, device=self.device), generator),
                           self.config.sample_sweeps, generator)
            return bernoulli(self.hidden_probs(v), generator)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """p(v = 1 | h): the visible means (N, C, H, W) in [0, 1] for hidden states z (N, H) in [0, 1]."""
        return self.visible_probs(z.to(self.W)).view(-1, *self.shape)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """p(h = 1 | v): (N, H) in [0, 1] for images x (N, C, H, W)."""
        return self.hidden_probs(x.flatten(1).to(self.W))

    # -- the likelihood -------------------------------------------------------------------------
    def log_z(self, generator: torch.Generator | None = None, progress=None, cancel=None) -> tuple[float, float]:  # noqa: ANN001
        """log Z and its standard error, nats: exact (error 0) up to 20 hidden units, else AIS from the data's
        base rates; kept until the weights change."""
        if self._log_z is not None and self._log_z[0] == self._version:
            return self._log_z[1], self._log_z[2]
        with torch.no_grad():
            if self.W.shape[1] <= MAX_EXACT_HIDDEN:
                value, se = exact_log_z(self.W, self.b, self.c), 0.0
            else:
                gen = generator if generator is not None else torch.Generator(device=self.device).manual_seed(0)
                value, se = self.estimate_log_z(self.config.ais_runs, self.config.ais_betas, gen, progress, cancel)
        if math.isfinite(value):
            self._log_z = (self._version, value, se)
        return value, se

    def estimate_log_z(self, runs: int, betas: int, generator: torch.Generator, progress=None,  # noqa: ANN001
                       cancel=None) -> tuple[float, float]:  # noqa: ANN001
        """log Z by AIS (Salakhutdinov & Murray 2008) from the base-rate model of the data's mean pixels: ``runs``
        runs over ``betas`` temperatures; (log Z, its standard error) in nats, NaN if cancelled.
        ``progress(done, total)`` after each temperature; ``cancel`` a threading.Event."""
        p = self.pixel_mean.clamp(0.01, 0.99)
        with torch.no_grad():
            return ais_log_z(self.W, self.b, self.c, torch.log(p / (1 - p)), int(runs),
                             default_betas(int(betas), self.device), generator, progress, cancel)

    def log_prob(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """log p(x) = -F(x) - log Z: (N,) nats, log Z exact or estimated (:meth:`log_z`)."""
        value, _ = self.log_z(generator)
        with torch.no_grad():
            return -self.free_energy(x.to(self.W)) - value

