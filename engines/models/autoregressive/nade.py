"""NADE: the neural autoregressive distribution estimator (Larochelle & Murray 2011).

Each value's conditional is a one-hidden-layer network of the values before it in raster order,
with the hidden layer's weights tied across positions (section 3):

    a_1 = c,   a_{d+1} = a_d + W[:, d] x_d,   h_d = sigmoid(a_d),
    p(x_d = 1 | x_<d) = sigmoid(b_d + V[d] . h_d),

so all D conditionals cost O(DH) together: the pre-activations are an exclusive running sum over
positions (:meth:`NADE.conditionals`). The paper's MNIST
model has H = 500 hidden units (88.86 nats on its binarised MNIST); pytorch-generative reports 85.65
nats with dynamic binarisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from engines.models.autoregressive.base import ARModel, check_likelihood
from engines.models.base import EngineConfig
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError


@dataclass
class NADEConfig(EngineConfig):
    """Settings of :class:`NADE`.

    Attributes
    ----------
    lr : float
        Adam learning rate, live-tunable in [1e-6, 0.1].
    hidden : int
        H, units of the tied hidden layer (the paper: 500).
    likelihood : {"bernoulli"}
        Pixel likelihood (Bernoulli, as in the paper).
    """

    lr: float = 1e-3
    hidden: int = 500
    likelihood: str = "bernoulli"


class NADE(ARModel):
    """NADE (Larochelle & Murray 2011) with tied weights W (H, D), c (H,), V (D, H), b (D,).

    Parameters
    ----------
    config : NADEConfig
    data : DataInfo
        Images (C, H, W); values are flattened in C, H, W order.

    Raises
    ------
    ConfigError
        Non-image data, ``hidden`` below 1, a likelihood other than "bernoulli", a non-positive ``lr``.
    """

    config_class = NADEConfig

    def __init__(self, config: NADEConfig, data: DataInfo) -> None:
        check_likelihood("NADE", config.likelihood, ("bernoulli",))
        if config.hidden < 1:
            raise ConfigError(f"NADE: hidden must be at least 1, not {config.hidden}")
        super().__init__(config, data)
        d, h = self.n_dims, config.hidden
        gen = torch.Generator().manual_seed(config.seed)
        self.W = nn.Parameter(torch.randn(h, d, generator=gen) / math.sqrt(d))
        self.c = nn.Parameter(torch.zeros(h))
        self.V = nn.Parameter(torch.randn(d, h, generator=gen) / math.sqrt(h))
        self.b = nn.Parameter(torch.zeros(d))
        self.finish_init()

    def conditionals(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, C, H, W) -> logits (N, 1, C, H, W); logit d sees x_j for j < d only.

        The exclusive running sums a_d are taken in blocks of B ~ sqrt(D) positions: the sums of whole
        earlier blocks by a cumulative sum over blocks, those within a block by a strictly lower
        triangular (B, B) product; the same numbers as a plain cumulative sum, in about a third of
        the time on a CPU (an (N, D, H) tensor is still made once).
        """
        n, d, hidden = x.shape[0], self.n_dims, self.config.hidden
        b = max(1, math.isqrt(d - 1) + 1)
        k = -(-d // b)
        pad = k * b - d
        v = F.pad(x.flatten(1), (0, pad)).view(n, k, b)
        w = F.pad(self.W, (0, pad)).T.reshape(k, b, hidden)  # (K, B, H): W[:, j] by block
        block = torch.einsum("nkb,kbh->nkh", v, w)
        before = block.cumsum(1) - block  # whole earlier blocks
        tri = torch.ones(b, b, device=x.device).tril(-1)
        within = torch.einsum("nkj,ij,kjh->nkih", v, tri, w)  # earlier positions of the same block
        a = self.c + before.unsqueeze(2) + within
        vv = F.pad(self.V, (0, 0, 0, pad)).view(k, b, hidden)
        logits = (torch.sigmoid(a) * vv).sum(-1).reshape(n, k * b)[:, :d] + self.b
        return logits.view(n, 1, *self.shape)

    def step_logits(self, x: torch.Tensor, position: int) -> torch.Tensor:
        """(N, 1) logit of ``position`` from the values before it: O(H * position)."""
        v = x.flatten(1)[:, :position]
        a = self.c + v @ self.W[:, :position].T
        return (torch.sigmoid(a) @ self.V[position] + self.b[position]).unsqueeze(1)
