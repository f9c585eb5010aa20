"""RealNVP: real-valued non-volume preserving flows (Dinh, Sohl-Dickstein & Bengio 2017).

Affine coupling layers, y_b = x_b * exp(log_s(x_a)) + t(x_a), log |det| = sum log_s (section 3.3),
with the log-scale bounded by a tanh times a learned factor. On images the architecture is
multi-scale (section 3.6): each scale but the last applies ``blocks`` couplings with alternating
checkerboard masks, squeezes (C, H, W) -> (4C, H/2, W/2), applies ``blocks`` couplings with
alternating channel masks and factors out half of the channels; the last scale applies
``blocks + 1`` checkerboard couplings (the paper's 3 / 3 / 4). The factored-out halves are put back
in place (:class:`~engines.models.flow.layers.MultiScale`), so z has the data's shape and the prior is
a standard normal on all of it.

A scale squeezes only while both sides are even and at least 4 (the last scale then works on at
least 2x2), so fewer scales than ``scales`` may be built: 28x28 allows 3 (28 -> 14 -> 7), 8x8 allows 3
(8 -> 4 -> 2), 32x32 allows 5; an odd side allows 1. ``n_scales`` says how many were built.

On 2-D points: ``2 * blocks`` affine couplings with MLP conditioners and alternating masks
([1, 0], [0, 1], ...).

Simplifications against the paper: plain conv conditioners (conv3x3 -> conv1x1 -> conv3x3 with
ReLUs) instead of residual networks, and no batch normalisation (so evaluation is deterministic and
independent of the batch).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engines.models.base import EngineConfig
from engines.models.flow.base import FlowEngine
from engines.models.flow.layers import (
    AffineCoupling,
    FlowSequence,
    MultiScale,
    channel_mask,
    checkerboard_mask,
    squeezes_possible,
    vector_mask,
)
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError

#: Hidden layers of each coupling's conditioner.
CONDITIONER_LAYERS = 2


@dataclass
class RealNVPConfig(EngineConfig):
    """Settings of :class:`RealNVP`.

    Attributes
    ----------
    lr : float
        Adam learning rate, live-tunable in [1e-6, 0.1].
    hidden : int
        Channels (images) or units (points) of the conditioners' hidden layers.
    blocks : int
        Couplings per stage: per scale ``blocks`` checkerboard and ``blocks`` channel-wise couplings,
        ``blocks + 1`` checkerboard ones at the last scale; ``2 * blocks`` couplings on points.
    scales : int
        Scales of the multi-scale architecture (at most; see the module docstring).
    """

    lr: float = 1e-3
    hidden: int = 64
    blocks: int = 3
    scales: int = 2


def _check(config: RealNVPConfig) -> None:
    for name in ("hidden", "blocks", "scales"):
        value = getattr(config, name)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"RealNVP: {name} must be an integer of at least 1, not {value!r}")
    if not config.lr > 0:
        raise ConfigError(f"RealNVP: lr must be positive, not {config.lr!r}")


class RealNVP(FlowEngine):
    """RealNVP (Dinh, Sohl-Dickstein & Bengio 2017): affine couplings, checkerboard and channel masks,
    multi-scale with factored-out halves.

    Parameters
    ----------
    config : RealNVPConfig
    data : DataInfo
        Images (C, H, W) in [0, 1] or 2-D points.

    Attributes
    ----------
    flow : nn.Module
        A :class:`MultiScale` stack (images) or a :class:`FlowSequence` of couplings (points).
    n_scales : int
        Scales actually built (1 for points).

    Raises
    ------
    ConfigError
        A setting below 1, a non-positive ``lr``, or an unknown data kind.
    """

    family = "flow"
    config_class = RealNVPConfig

    def __init__(self, config: RealNVPConfig, data: DataInfo) -> None:
        _check(config)
        super().__init__(config, data)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            if self.points:
                dim = int(data.shape[0])
                self.n_scales = 1
                self.flow = FlowSequence(
                    AffineCoupling((dim,), vector_mask(dim, i % 2), config.hidden, CONDITIONER_LAYERS)
                    for i in range(2 * config.blocks)
                )
            else:
                c, h, w = (int(v) for v in data.shape)
                self.n_scales = 1 + min(config.scales - 1, squeezes_possible(h, w, min_side=2))
                self.flow = self._scale((c, h, w), self.n_scales)
        self.finish_init()

    def _couplings(self, shape: tuple[int, int, int], count: int, checkerboard: bool) -> FlowSequence:
        c, h, w = shape
        masks = [checkerboard_mask(h, w, i % 2) if checkerboard else channel_mask(c, i % 2) for i in range(count)]
        return FlowSequence(AffineCoupling(shape, m, self.config.hidden, CONDITIONER_LAYERS) for m in masks)

    def _scale(self, shape: tuple[int, int, int], left: int) -> nn.Module:
        """The scale at ``shape`` with ``left`` scales (itself included) to go."""
        blocks = self.config.blocks
        if left == 1:
            return MultiScale(self._couplings(shape, blocks + 1, checkerboard=True))
        c, h, w = shape
        squeezed = (4 * c, h // 2, w // 2)
        return MultiScale(
            self._couplings(shape, blocks, checkerboard=True),
            self._couplings(squeezed, blocks, checkerboard=False),
            self._scale((2 * c, h // 2, w // 2), left - 1),
        )

    def flow_forward(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """s (N, C, H, W) or (N, 2) -> z of the same shape, and log |det dz/ds| (N,) nats."""
        return self.flow(s)

    def flow_inverse(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, C, H, W) or (N, 2) -> s of the same shape."""
        return self.flow.inverse(z)
