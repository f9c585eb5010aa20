"""Glow: generative flow with invertible 1x1 convolutions (Kingma & Dhariwal 2018).

One step of flow (section 3, Figure 2a) is actnorm (a per-channel affine map with a data-dependent
initialisation) -> an invertible 1x1 convolution in LU form (a learned channel permutation) -> an
affine coupling on the two halves of the channels, its scale a sigmoid. On images the architecture
is multi-scale (Figure 2b): each of ``levels`` levels squeezes (C, H, W) -> (4C, H/2, W/2) and applies
``steps`` steps; every level but the last then factors out half of the channels. The factored-out
halves are put back in place (:class:`~engines.models.flow.layers.MultiScale`), so z has the data's
shape, and the prior is a standard normal on all of z (the paper learns a prior for each factored-out
half; here it is fixed).

A level squeezes only while both sides are even, so fewer levels than ``levels`` may be built (28x28
allows 2: 28 -> 14 -> 7); ``n_levels`` says how many. An image with an odd side allows none: the flow
is then ``levels * steps`` steps at full resolution with alternating checkerboard masks.

On 2-D points: ``levels * steps`` steps of actnorm -> an invertible 2x2 linear map (LU) -> an affine
coupling of one coordinate on the other.

Simplifications against the paper: no learned prior for the factored-out parts, and the coupling
network's last layer is a plain zero-initialised conv (no learned output scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engines.models.base import EngineConfig
from engines.models.flow.base import FlowEngine
from engines.models.flow.layers import (
    ActNorm,
    AffineCoupling,
    FlowSequence,
    InvertibleConv1x1,
    MultiScale,
    channel_mask,
    checkerboard_mask,
    squeezes_possible,
    vector_mask,
)
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError

#: Hidden layers of each coupling's conditioner (conv3x3 -> conv1x1 -> conv3x3 for images).
CONDITIONER_LAYERS = 2


@dataclass
class GlowConfig(EngineConfig):
    """Settings of :class:`Glow`.

    Attributes
    ----------
    lr : float
        Adam learning rate, live-tunable in [1e-6, 0.1].
    hidden : int
        Channels (images) or units (points) of the coupling networks' hidden layers.
    levels : int
        L, the levels of the multi-scale architecture (at most; see the module docstring).
    steps : int
        K, the steps of flow per level.
    """

    lr: float = 1e-3
    hidden: int = 64
    levels: int = 2
    steps: int = 4


def _check(config: GlowConfig) -> None:
    for name in ("hidden", "levels", "steps"):
        value = getattr(config, name)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"Glow: {name} must be an integer of at least 1, not {value!r}")
    if not config.lr > 0:
        raise ConfigError(f"Glow: lr must be positive, not {config.lr!r}")


def glow_step(shape: tuple[int, ...], mask: torch.Tensor, hidden: int) -> FlowSequence:
    """One step of flow on examples of ``shape`` (C, H, W) or (D,): actnorm -> 1x1 conv (LU) ->
    affine coupling (sigmoid scale) with ``mask``."""
    features = int(shape[0])
    return FlowSequence([
        ActNorm(features),
        InvertibleConv1x1(features),
        AffineCoupling(shape, mask, hidden, CONDITIONER_LAYERS, scale="sigmoid"),
    ])


class Glow(FlowEngine):
    """Glow (Kingma & Dhariwal 2018): actnorm, invertible 1x1 convolutions and affine couplings,
    multi-scale on images.

    Parameters
    ----------
    config : GlowConfig
    data : DataInfo
        Images (C, H, W) in [0, 1] or 2-D points.

    Attributes
    ----------
    flow : nn.Module
        A :class:`MultiScale` stack (images) or a :class:`FlowSequence` of steps (points).
    n_levels : int
        Levels (squeezes) actually built; 0 for points and for images with an odd side.

    Raises
    ------
    ConfigError
        A setting below 1, a non-positive ``lr``, or an unknown data kind.
    """

    family = "flow"
    config_class = GlowConfig

    def __init__(self, config: GlowConfig, data: DataInfo) -> None:
        _check(config)
        super().__init__(config, data)
        total = config.levels * config.steps
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            if self.points:
                dim = int(data.shape[0])
                self.n_levels = 0
                self.flow = FlowSequence(glow_step((dim,), vector_mask(dim, 0), config.hidden) for _ in range(total))
            else:
                c, h, w = (int(v) for v in data.shape)
                self.n_levels = min(config.levels, squeezes_possible(h, w))
                if self.n_levels == 0:
                    steps = [glow_step((c, h, w), checkerboard_mask(h, w, i % 2), config.hidden) for i in range(total)]
                    self.flow = MultiScale(FlowSequence(steps))
                else:
                    self.flow = self._level((c, h, w), self.n_levels)
        self.finish_init()

    def _level(self, shape: tuple[int, int, int], left: int) -> nn.Module:
        """The level taking inputs of ``shape`` with ``left`` levels (itself included) to go."""
        c, h, w = shape
        squeezed = (4 * c, h // 2, w // 2)
        steps = FlowSequence(glow_step(squeezed, channel_mask(4 * c), self.config.hidden)
                             for _ in range(self.config.steps))
        inner = self._level((2 * c, h // 2, w // 2), left - 1) if left > 1 else None
        return MultiScale(FlowSequence(), steps, inner)

    def flow_forward(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """s (N, C, H, W) or (N, 2) -> z of the same shape, and log |det dz/ds| (N,) nats."""
        return self.flow(s)

    def flow_inverse(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, C, H, W) or (N, 2) -> s of the same shape."""
        return self.flow.inverse(z)
