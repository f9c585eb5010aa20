"""VQ-VAE: a grid of discrete codes from a learnt codebook (van den Oord, Vinyals & Kavukcuoglu 2017).

A conv encoder maps an image (C, S, S) to a grid of vectors z_e (D, S/4, S/4); each is replaced by its nearest
codebook vector e_k (K of them, D-dimensional), and a conv decoder maps the quantised grid z_q back to Bernoulli
logits of the pixels. The gradient passes the quantisation straight through (z_e + sg(z_q - z_e)). The loss is

    -log p(x | z_q) + ||sg(z_e) - e||^2 + beta ||z_e - sg(e)||^2,

the second term moving the codebook, the third (the commitment, weight ``beta``, live) keeping the encoder near
it. With ``ema`` the codebook follows exponential moving averages of the vectors assigned to each code instead of
the second term (the paper's appendix; decay ``ema_decay``, Laplace-smoothed counts). Logged: ``recon`` (nats
per image), ``vq``, ``commit``, ``perplexity`` (exp of the entropy of the batch's code usage: K when every
code is used equally) and ``dead_codes`` (codes unused for the last 1,000 batches or so, by an EMA of usage).

The latent is the code grid: one categorical variable of K classes per position (a picker each in Explore);
``decode`` maps one-hot codes (or mixtures, which blend codebook vectors) to images.

The prior over the grid is learnt, as in the paper (section 3.3): with ``prior`` a small PixelCNN over the G x G
code indices (:class:`~engines.lib.masked_conv.CategoricalPixelCNN`, K classes per position, raster order, a first
kernel of side 2 G - 1 up to ``MAX_PRIOR_KERNEL`` so that no earlier position is out of sight) is trained at every
step on the batch's codes, detached, by its own Adam (``prior_lr``), so the VQ-VAE's own gradients are those of the
loss above. The paper fits it after the VQ-VAE has converged; fitted jointly it follows the codes as they move, and
later steps refine it. Logged: ``prior_nll`` (nats per grid, -log p(codes) under the PixelCNN) and ``prior_gain``
(its share below the uniform prior's G^2 log K nats: 0 for uniform, towards 1 as the codes get predictable).
:meth:`VQVAE.prior_sample`, and so ``sample``, draws the grid position by position from it; without ``prior`` the
draw is uniform over codes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from engines.lib.masked_conv import CategoricalPixelCNN
from engines.models.base import Engine, EngineConfig
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError
from engines.shared.spec import HyperParam, LatentDim, LatentSpec


@dataclass
class VQVAEConfig(EngineConfig):
    """Settings of :class:`VQVAE`.

    Attributes
    ----------
    latent_dim : int
        D, the size of each code vector.
    n_categories : int
        K, the codebook's size.
    width : int
        Channels of the conv layers.
    beta : float
        Commitment weight, live in [0, 10] (the paper's 0.25).
    ema : bool
        Codebook by exponential moving averages instead of its loss term.
    ema_decay : float
    lr : float
        Adam learning rate, live.
    likelihood : {"bernoulli"}
    prior : bool
        Learn a PixelCNN prior over the code grid (module docstring); off, the prior is uniform.
    prior_width : int
        Channels of the prior's embedding and hidden layers.
    prior_layers : int
        Residual mask-B blocks of the prior after its first layer.
    prior_lr : float
        The prior's own Adam learning rate.
    """

    latent_dim: int = 16
    n_categories: int = 64
    width: int = 64
    beta: float = 0.25
    ema: bool = False
    ema_decay: float = 0.99
    lr: float = 1e-3
    likelihood: str = "bernoulli"

    #: What a checkpoint written before a setting existed meant by its absence (it had no prior).
    absent_means: ClassVar[dict] = {"prior": False}
    prior: bool = True
    prior_width: int = 32
    prior_layers: int = 3
    prior_lr: float = 3e-3

#: Largest first-layer kernel of the prior: 2 G - 1 up to it (the whole grid, no blind spot), then capped.
MAX_PRIOR_KERNEL = 15


class VQVAE(Engine):
    """VQ-VAE on images (module docstring).

    Parameters
    ----------
    config : VQVAEConfig
    data : DataInfo
        Images (C, S, S) with S divisible by 4 (the code grid is S/4 on a side).

    Raises
    ------
    ConfigError
        Non-image data, a side not divisible by 4, or a setting out of range.
    """

    family = "vae"
    config_class = VQVAEConfig

    def __init__(self, config: VQVAEConfig, data: DataInfo) -> None:
        super().__init__(config, data)
        if data.kind != "image":
            raise ConfigError("a VQ-VAE models images; use an image data set")
        c, s = data.shape[0], data.shape[-1]
        if s % 4:
            raise ConfigError(f"vq-vae: the image side must be divisible by 4 (the code grid is a quarter of it), "
                              f"not {s}; pick --image-size 8, 16, 28 or 32")
        if config.likelihood != "bernoulli":
            raise ConfigError(f"vq-vae: the pixels are Bernoulli, not {config.likelihood!r}")
        if not (1 <= config.latent_dim <= 512 and 2 <= config.n_categories <= 4096 and 0 < config.ema_decay < 1):
            raise ConfigError("vq-vae: latent_dim in [1, 512], n_categories in [2, 4096], ema_decay in (0, 1)")
        if config.prior and not (1 <= config.prior_width <= 1024 and 0 <= config.prior_layers <= 32
                                 and config.prior_lr > 0):
            raise ConfigError("vq-vae: prior_width in [1, 1024], prior_layers in [0, 32], prior_lr > 0")
        d, k, w = config.latent_dim, config.n_categories, config.width
        self.k, self.d, self.grid, self.shape = k, d, s // 4, tuple(data.shape)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.encoder = nn.Sequential(
                nn.Conv2d(c, w, 4, 2, 1), nn.ReLU(), nn.Conv2d(w, w, 4, 2, 1), nn.ReLU(), nn.Conv2d(w, d, 1))
            self.decoder = nn.Sequential(
                nn.Conv2d(d, w, 3, 1, 1), nn.ReLU(), nn.ConvTranspose2d(w, w, 4, 2, 1), nn.ReLU(),
                nn.ConvTranspose2d(w, w, 4, 2, 1), nn.ReLU(), nn.Conv2d(w, c, 3, 1, 1))
            self.codebook = nn.Parameter(torch.randn(k, d) / math.sqrt(d))
            self.prior = (CategoricalPixelCNN(k, config.prior_width, config.prior_layers,
                                              min(2 * self.grid - 1, MAX_PRIOR_KERNEL)) if config.prior else None)
        self.codebook.requires_grad_(not config.ema)
        self.register_buffer("ema_count", torch.ones(k))
        self.register_buffer("ema_sum", self.codebook.detach().clone())
        self.register_buffer("usage", torch.full((k,), 1.0 / k))  # EMA of the share of positions on each code
        positions = self.grid * self.grid
        self.latent = LatentSpec(tuple(LatentDim(f"q{p}={j}", "categorical", 0.0, 1.0, f"q{p}")
                                       for p in range(positions) for j in range(k)))
        self.hyper = {
            "lr": HyperParam("lr", 1e-3, 1e-6, 1e-1, log=True, doc="Adam learning rate").with_value(config.lr),
            "beta": HyperParam("beta", 0.25, 0.0, 10.0, doc="commitment weight").with_value(config.beta),
        }
        own = [p for name, p in self.named_parameters() if p.requires_grad and not name.startswith("prior.")]
        self.opt = torch.optim.Adam(own, lr=config.lr)
        self.prior_opt = (torch.optim.Adam(self.prior.parameters(), lr=config.prior_lr)
                          if self.prior is not None else None)

    def on_hyper_changed(self, name: str, value: float) -> None:
        if name == "lr":
            for group in self.opt.param_groups:
                group["lr"] = value

    def optimizer_states(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": self.opt, **({"prior_adam": self.prior_opt} if self.prior_opt is not None else {})}

    # -- quantisation ---------------------------------------------------------------------------
    def codes(self, z_e: torch.Tensor) -> torch.Tensor:
        """Nearest codebook index of each grid vector: z_e (B, D, G, G) -> (B, G, G) int64."""
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, self.d)
        dist = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.T + self.codebook.pow(2).sum(1))
        return dist.argmin(1).view(z_e.shape[0], self.grid, self.grid)

    def lookup(self, idx: torch.Tensor) -> torch.Tensor:
        """Code vectors of indices (B, G, G): (B, D, G, G)."""
        return self.codebook[idx].permute(0, 3, 1, 2)

    # -- training -------------------------------------------------------------------------------
    def training_step(self, batch: torch.Tensor, step: int) -> dict[str, float]:
        """One step of the VQ-VAE loss (module docstring); the terms logged are named there."""
        x = batch
        z_e = self.encoder(x)
        idx = self.codes(z_e)
        z_q = self.lookup(idx)
        commit = F.mse_loss(z_e, z_q.detach(), reduction="none").sum((1, 2, 3)).mean()
        vq = F.mse_loss(z_q, z_e.detach(), reduction="none").sum((1, 2, 3)).mean()
        out = self.decoder(z_e + (z_q - z_e).detach())  # straight through the quantisation
        recon = F.binary_cross_entropy_with_logits(out, x, reduction="none").flatten(1).sum(1).mean()
        loss = recon + self.h("beta") * commit + (0.0 if self.config.ema else vq)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            onehot = F.one_hot(idx.reshape(-1), self.k).float()
            share = onehot.mean(0)
            self.usage.mul_(0.999).add_(0.001 * share)
            if self.config.ema:
                g = self.config.ema_decay
                flat = z_e.detach().permute(0, 2, 3, 1).reshape(-1, self.d)
                self.ema_count.mul_(g).add_((1 - g) * onehot.sum(0))
                self.ema_sum.mul_(g).add_((1 - g) * onehot.T @ flat)
                n = self.ema_count.sum()
                count = (self.ema_count + 1e-5) / (n + self.k * 1e-5) * n  # Laplace smoothing
                self.codebook.copy_(self.ema_sum / count[:, None])
            entropy = -(share * torch.log(share.clamp_min(1e-12))).sum()
        terms = {"recon": float(recon.detach()), "vq": float(vq.detach()), "commit": float(commit.detach()),
                 "loss": float(loss.detach()), "perplexity": float(torch.exp(entropy)),
                 "dead_codes": float((self.usage < 1e-3 / self.k).sum())}
        if self.prior is not None:
            terms.update(self.fit_prior(idx))
        return terms

    def fit_prior(self, idx: torch.Tensor) -> dict[str, float]:
        """One Adam step of the PixelCNN prior on code grids idx (B, G, G) int64 (detached: nothing reaches the
        encoder or the codebook); returns ``prior_nll`` (nats per grid) and ``prior_gain`` (module docstring).

        Raises
        ------
        ConfigError
            Built with ``prior=False``: there is no prior to fit.
        """
        if self.prior is None:
            raise ConfigError("vq-vae: built with prior=False, there is no learnt prior to fit")
        nll = self.code_prior_nll(idx.detach()).mean()
        self.prior_opt.zero_grad(set_to_none=True)
        nll.backward()
        self.prior_opt.step()
        value = float(nll.detach())
        return {"prior_nll": value, "prior_gain": 1.0 - value / self.uniform_nll}

    @property
    def uniform_nll(self) -> float:
        """-log p of any grid under the uniform prior: G^2 log K nats."""
        return self.grid * self.grid * math.log(self.k)

    def code_prior_nll(self, idx: torch.Tensor) -> torch.Tensor:
        """-log p(idx) under the prior: (B,) nats per grid of code indices idx (B, G, G) int64 in [0, K); the
        uniform prior's G^2 log K for each grid when ``prior`` is off."""
        idx = idx.to(self.device)
        if self.prior is None:
            return torch.full((len(idx),), self.uniform_nll, device=self.device)
        return self.prior.nll(idx)

    def code_usage(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each code's share of the grid positions, (K,) in [0, 1] summing to about 1 (a running average over
        about the last 1,000 batches), and which codes are dead, (K,) bool: used below 1/1000 of the even share
        (the ``dead_codes`` term counts them)."""
        usage = self.usage.detach().clone()
        return usage, usage < 1e-3 / self.k

    # -- the latent -----------------------------------------------------------------------------
    @torch.no_grad()
    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, G G K) one-hot code grids drawn from the prior: position by position from the PixelCNN in raster
        order (one uniform (n,) draw per position from ``generator``, so seeded draws repeat), or uniformly at
        each position without ``prior``."""
        if self.prior is None:
            idx = torch.randint(0, self.k, (n, self.grid * self.grid), generator=generator, device=self.device)
        else:
            idx = self.prior.sample(n, self.grid, self.grid, generator).reshape(n, -1)
        return F.one_hot(idx, self.k).float().reshape(n, -1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel means (N, C, S, S) in [0, 1] of code grids z (N, G G K), one-hot (or mixtures blending codes)."""
        w = z.to(self.device, torch.float32).view(-1, self.grid, self.grid, self.k)
        z_q = (w @ self.codebook).permute(0, 3, 1, 2)
        return torch.sigmoid(self.decoder(z_q))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code grid of images x, one-hot (N, G G K)."""
        idx = self.codes(self.encoder(x.to(self.device)))
        return F.one_hot(idx.reshape(len(x), -1), self.k).float().reshape(len(x), -1)
