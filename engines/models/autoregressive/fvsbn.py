"""FVSBN: the fully visible sigmoid belief network (Frey 1998; see also Neal 1992).

The simplest autoregressive model of binary images: each value is a logistic regression on every
value before it in raster order,

    p(x_d = 1 | x_<d) = sigmoid(b_d + sum_{j<d} W_dj x_j),

one strictly lower-triangular D x D weight matrix (a :class:`~engines.lib.made.MaskedLinear` with a
fixed mask) and D biases: D(D+1)/2 free parameters, 307,720 for 28x28. No hidden units, so it is
the baseline the other autoregressive models are measured against (pytorch-generative reports
96.58 nats on dynamically binarised MNIST).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engines.lib.made import MaskedLinear
from engines.models.autoregressive.base import ARModel, check_likelihood
from engines.models.base import EngineConfig
from engines.shared.datainfo import DataInfo


@dataclass
class FVSBNConfig(EngineConfig):
    """Settings of :class:`FVSBN`.

    Attributes
    ----------
    lr : float
        Adam learning rate, live-tunable in [1e-6, 0.1].
    likelihood : {"bernoulli"}
        Pixel likelihood (Bernoulli only: a logistic regression per value).
    """

    lr: float = 1e-3
    likelihood: str = "bernoulli"


class FVSBN(ARModel):
    """Fully visible sigmoid belief net (Frey 1998): logit_d = b_d + W[d, :d] x[:d], raster order.

    Parameters
    ----------
    config : FVSBNConfig
    data : DataInfo
        Images (C, H, W); values are flattened in C, H, W order.

    Attributes
    ----------
    net : MaskedLinear
        D -> D with a strictly lower-triangular mask; weights start at zero (every pixel p = 1/2).

    Raises
    ------
    ConfigError
        Non-image data, a likelihood other than "bernoulli", a non-positive ``lr``.
    """

    config_class = FVSBNConfig

    def __init__(self, config: FVSBNConfig, data: DataInfo) -> None:
        check_likelihood("FVSBN", config.likelihood, ("bernoulli",))
        super().__init__(config, data)
        d = self.n_dims
        self.net = MaskedLinear(d, d)
        self.net.set_mask(torch.ones(d, d).tril(-1))
        with torch.no_grad():
            self.net.weight.zero_()
            self.net.bias.zero_()
        self.finish_init()

    def conditionals(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, C, H, W) -> logits (N, 1, C, H, W); logit d sees x_j for j < d only."""
        return self.net(x.flatten(1)).view(x.shape[0], 1, *self.shape)

    def step_logits(self, x: torch.Tensor, position: int) -> torch.Tensor:
        """(N, 1) logit of ``position``: one row of the weights, not the whole product."""
        row = self.net.weight[position] * self.net.mask[position]
        return (x.flatten(1) @ row + self.net.bias[position]).unsqueeze(1)
