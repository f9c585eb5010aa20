"""MAF: the masked autoregressive flow (Papamakarios, Pavlakou & Murray 2017).

Each block is an autoregressive affine map whose parameters come from a MADE (Germain et al. 2015,
:class:`engines.lib.made.MADE`) in one pass:

    z_d = (x_d - mu_d(x_<d)) exp(-alpha_d(x_<d)),   log |det dz/dx| = -sum_d alpha_d,

"<d" meaning "before d in the block's ordering" (section 3.1, eq. 4 and 5, with the paper's
x = u exp(alpha) + mu read in the normalising direction). The Jacobian of a block is triangular in
its ordering, so the log-determinant is exact. The ordering is reversed from one block to the next
(section 3.2), so each dimension conditions on the others somewhere in the stack. The log-scale is
bounded, alpha = :data:`ALPHA_BOUND` tanh(a / :data:`ALPHA_BOUND`) of the MADE's raw output a, and
each MADE's output layer starts at zero, so every block starts as the identity.

Evaluation x -> z is one MADE pass per block. The inverse z -> x (sampling, decoding) is sequential:
x = z exp(alpha(x)) + mu(x) is iterated D times per block, batch-wise, and after pass t the first t
dimensions of the ordering are exact (each depends only on those before it), so after D passes all
of them are. That is D MADE passes per block: quick for 2-D points and small images, slow (minutes)
for large ones.

Points (D = 2) are modelled as they are; on images the blocks act on the flattened D = C*H*W values
(after :class:`~engines.models.flow.base.FlowEngine`'s dequantisation and logit) and the result is
reshaped back.

Simplification against the paper: no batch normalisation between the blocks, so the model is
deterministic in evaluation, independent of the batch, and exactly invertible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from engines.lib.made import MADE
from engines.models.base import EngineConfig
from engines.models.flow.base import FlowEngine
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError

#: MADE width when the config leaves ``hidden`` None, for points and for flattened images.
DEFAULT_HIDDEN = {"points": 64, "image": 256}
#: Blocks when the config leaves ``blocks`` None.
DEFAULT_BLOCKS = {"points": 5, "image": 3}
#: Hidden layers of each MADE.
MADE_LAYERS = 2
#: Bound on |alpha|, the log-scale of one block, nats per dimension.
ALPHA_BOUND = 6.0


@dataclass
class MAFConfig(EngineConfig):
    """Settings of :class:`MAF`. None means "chosen from the data".

    Attributes
    ----------
    lr : float
        Adam learning rate, live-tunable in [1e-6, 0.1].
    hidden : int or None
        Units of each of the :data:`MADE_LAYERS` hidden layers of every MADE; None takes it from
        ``DEFAULT_HIDDEN`` (64 for points, 256 for images).
    blocks : int or None
        Number of autoregressive blocks; None takes it from ``DEFAULT_BLOCKS`` (5 for points,
        3 for images).
    """

    lr: float = 1e-3
    hidden: int | None = None
    blocks: int | None = None


def _resolve(config: MAFConfig, data: DataInfo) -> MAFConfig:
    """``config`` with the data-dependent defaults filled in; raises ConfigError on bad values."""
    kind = "points" if data.kind == "points" else "image"
    hidden = config.hidden if config.hidden is not None else DEFAULT_HIDDEN[kind]
    blocks = config.blocks if config.blocks is not None else DEFAULT_BLOCKS[kind]
    if hidden < 1:
        raise ConfigError(f"MAF: hidden (MADE width) must be at least 1, not {hidden}")
    if blocks < 1:
        raise ConfigError(f"MAF: blocks must be at least 1, not {blocks}")
    if not (isinstance(config.lr, (int, float)) and math.isfinite(config.lr) and config.lr > 0):
        raise ConfigError(f"MAF: lr must be a positive number, not {config.lr!r}")
    return replace(config, hidden=hidden, blocks=blocks)


def block_order(dim: int, index: int) -> np.ndarray:
    """(dim,) the autoregressive order of block ``index``: natural for even blocks, reversed for odd."""
    order = np.arange(dim)
    return order if index % 2 == 0 else order[::-1].copy()


class MAF(FlowEngine):
    """Masked autoregressive flow (Papamakarios et al. 2017) of MADE blocks on the flattened data.

    Parameters
    ----------
    config : MAFConfig
        Settings; ``hidden`` and ``blocks`` resolved from the data and stored back in ``self.config``.
    data : DataInfo
        2-D points, or images (C, H, W) in [0, 1] (flattened to D = C*H*W).

    Attributes
    ----------
    mades : nn.ModuleList of MADE
        One per block, (N, D) -> (N, 2, D): the mean mu and the raw log-scale; block i's ordering is
        :func:`block_order` (its ``order`` buffer).

    Raises
    ------
    ConfigError
        ``hidden`` or ``blocks`` below 1, a non-positive ``lr``, or an unknown data kind.
    """

    family = "flow"
    config_class = MAFConfig

    def __init__(self, config: MAFConfig, data: DataInfo) -> None:
        config = _resolve(config, data)
        super().__init__(config, data)
        d = self.n_dims
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.mades = nn.ModuleList(
                MADE(d, [config.hidden] * MADE_LAYERS, k=2, order=block_order(d, i), mask_seed=config.seed + i)
                for i in range(config.blocks)
            )
            for made in self.mades:  # every block starts as the identity
                nn.init.zeros_(made.out.weight)
                nn.init.zeros_(made.out.bias)
        self.finish_init()

    @staticmethod
    def block_params(made: MADE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mu and the bounded log-scale alpha of one block at x, each (N, D)."""
        out = made(x)
        mu, raw = out[:, 0], out[:, 1]
        return mu, ALPHA_BOUND * torch.tanh(raw / ALPHA_BOUND)

    def flow_forward(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """s (N, C, H, W) or (N, 2) -> z of the same shape, and log |det dz/ds| (N,) nats."""
        x = s.flatten(1)
        logdet = x.new_zeros(x.shape[0])
        for made in self.mades:
            mu, alpha = self.block_params(made, x)
            x = (x - mu) * torch.exp(-alpha)
            logdet = logdet - alpha.sum(1)
        return x.reshape(s.shape), logdet

    def flow_inverse(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, C, H, W) or (N, 2) -> s of the same shape: D sequential MADE passes per block."""
        y = z.flatten(1)
        for made in reversed(self.mades):
            x = torch.zeros_like(y)
            for _ in range(self.n_dims):
                mu, alpha = self.block_params(made, x)
                x = y * torch.exp(alpha) + mu
            y = x
        return y.reshape(z.shape)
