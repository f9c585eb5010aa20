"""NICE: Non-linear Independent Components Estimation (Dinh, Krueger & Bengio 2015).

A stack of additive coupling layers, y_b = x_b + t(x_a) with an MLP t, each volume preserving, and a
final diagonal scaling y = x * exp(S) that carries the whole log-determinant, sum(S) (sections 3.2,
3.3). As in the paper the model is fully connected: an image (C, H, W) is flattened to a vector of
D = C*H*W values (after :class:`~engines.models.flow.base.FlowEngine`'s dequantisation and logit),
the couplings alternate the odd/even partition of that vector (section 5.1; for 2-D points the two
coordinates), and the result is reshaped back, so z has the data's shape.

The paper's MNIST model has 4 couplings with 5 hidden layers of 1000 units; the defaults here are
smaller (``depth`` 4 couplings, :data:`HIDDEN_LAYERS` hidden layers of ``hidden`` units).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from engines.models.base import EngineConfig
from engines.models.flow.base import FlowEngine
from engines.models.flow.layers import AdditiveCoupling, FlowSequence, Scaling, vector_mask
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError

#: Conditioner width when the config leaves ``hidden`` None, for flattened images and for points.
DEFAULT_HIDDEN = {"image": 256, "points": 64}
#: Hidden layers of each coupling's MLP.
HIDDEN_LAYERS = 3


@dataclass
class NICEConfig(EngineConfig):
    """Settings of :class:`NICE`.

    Attributes
    ----------
    lr : float
        Adam learning rate, live-tunable in [1e-6, 0.1].
    hidden : int or None
        Units of each hidden layer of the coupling MLPs; None takes it from ``DEFAULT_HIDDEN``
        (256 for images, 64 for points).
    depth : int
        Number of additive coupling layers (the partition alternates between them).
    """

    lr: float = 1e-3
    hidden: int | None = None
    depth: int = 4


def _resolve(config: NICEConfig, data: DataInfo) -> NICEConfig:
    hidden = config.hidden if config.hidden is not None else DEFAULT_HIDDEN.get(data.kind, 64)
    if hidden < 1:
        raise ConfigError(f"NICE: hidden must be at least 1, not {hidden}")
    if config.depth < 1:
        raise ConfigError(f"NICE: depth (coupling layers) must be at least 1, not {config.depth}")
    if not config.lr > 0:
        raise ConfigError(f"NICE: lr must be positive, not {config.lr!r}")
    return replace(config, hidden=hidden)


class NICE(FlowEngine):
    """NICE (Dinh, Krueger & Bengio 2015): additive couplings on the flattened data, then a scaling.

    Parameters
    ----------
    config : NICEConfig
        Settings; ``hidden`` resolved from the data and stored back in ``self.config``.
    data : DataInfo
        Images (C, H, W) in [0, 1] or 2-D points.

    Attributes
    ----------
    flow : FlowSequence
        ``depth`` :class:`AdditiveCoupling` layers on (N, D) with alternating odd/even masks, then a
        :class:`Scaling` of D log-scales.

    Raises
    ------
    ConfigError
        ``hidden`` or ``depth`` below 1, a non-positive ``lr``, or an unknown data kind.
    """

    family = "flow"
    config_class = NICEConfig

    def __init__(self, config: NICEConfig, data: DataInfo) -> None:
        config = _resolve(config, data)
        super().__init__(config, data)
        dim = int(math.prod(data.shape))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            layers = [AdditiveCoupling((dim,), vector_mask(dim, i % 2), config.hidden, HIDDEN_LAYERS)
                      for i in range(config.depth)]
            self.flow = FlowSequence([*layers, Scaling((dim,))])
        self.finish_init()

    def flow_forward(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """s (N, C, H, W) or (N, 2) -> z of the same shape, and log |det dz/ds| (N,) nats."""
        z, logdet = self.flow(s.flatten(1))
        return z.reshape(s.shape), logdet

    def flow_inverse(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, C, H, W) or (N, 2) -> s of the same shape."""
        return self.flow.inverse(z.flatten(1)).reshape(z.shape)
