"""Network building blocks sized from the data: conv encoder / decoder stacks and MLPs.

Shared by every family: the VAE uses both stacks, GAN generators reuse :func:`conv_decoder` and
discriminators :func:`conv_encoder` (with ``act="leaky_relu"`` and a ``norm``).

Conv stacks follow DCGAN (Radford, Metz & Chintala 2016) and the beta-VAE image encoder of
Burgess et al. 2018: 4x4 convolutions of stride 2 halve the side down to a small base grid, then
linear heads; the decoder mirrors them with 4x4 transposed convolutions of stride 2.

Sizes that are not 4 * 2**n are handled by choosing the base grid, not by resizing: for a side
``s`` we take ``n = floor(log2(s / 4))`` stride-2 stages and a base side ``b = ceil(s / 2**n)``
(between 4 and 8), so the padded side ``b * 2**n`` exceeds ``s`` by less than ``2**n`` pixels.
The encoder zero-pads its input to that side (split evenly, extra pixel at the end) and the
decoder crops its output back, so every shape comes out exact. The usual sizes need no padding:
8, 16, 32, 64 use a 4x4 base and 28 (MNIST) a 7x7 base (7 -> 14 -> 28). Stacks with fewer than two
stride-2 stages (sides below 16) get an extra 3x3 stride-1 convolution (a stem in the encoder, a
final layer in the decoder) so they keep two convolutions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from engines.shared.errors import ConfigError

#: Smallest and largest image side the conv stacks accept, in pixels.
MIN_SIZE, MAX_SIZE = 4, 256


@dataclass(frozen=True)
class ConvPlan:
    """Geometry of a conv stack for a square image.

    Attributes
    ----------
    size : int
        Image side in pixels.
    stages : int
        Number of stride-2 stages (halvings).
    base : int
        Side of the smallest feature map (4..8).
    padded : int
        ``base * 2**stages``; the side the convolutions work at (>= size).
    """

    size: int
    stages: int
    base: int
    padded: int

    @property
    def pad(self) -> tuple[int, int]:
        """(before, after) zero padding per spatial axis, in pixels."""
        total = self.padded - self.size
        return total // 2, total - total // 2

    @property
    def stem(self) -> bool:
        """Whether an extra 3x3 stride-1 convolution is added (fewer than two stages)."""
        return self.stages < 2


def conv_plan(size: int) -> ConvPlan:
    """The conv stack geometry for square images of side ``size``.

    Raises
    ------
    ConfigError
        If ``size`` is outside [MIN_SIZE, MAX_SIZE].
    """
    size = int(size)
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ConfigError(f"conv networks need an image side in [{MIN_SIZE}, {MAX_SIZE}] pixels, not {size}")
    stages = max(0, int(math.floor(math.log2(size / 4))))
    base = math.ceil(size / 2**stages)
    return ConvPlan(size, stages, base, base * 2**stages)


def stage_channels(stages: int, width: int) -> list[int]:
    """Channels after each encoder stage: ``width`` for the first half, ``2 * width`` after.

    For 64 px and width 32 this is [32, 32, 64, 64], the beta-VAE encoder of Higgins et al. 2017.
    The decoder uses the same list reversed.
    """
    return [width if i < stages // 2 else 2 * width for i in range(max(stages, 1))]


def activation(name: str) -> nn.Module:
    """``"relu"``, ``"leaky_relu"`` (slope 0.2, as in DCGAN discriminators) or ``"silu"``.

    Raises
    ------
    ConfigError
        Unknown name.
    """
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(0.2)
    if name == "silu":
        return nn.SiLU()
    raise ConfigError(f"unknown activation {name!r}; use relu, leaky_relu or silu")


def norm_layer(kind: str | None, channels: int) -> nn.Module:
    """``None`` (identity), ``"batch"`` (BatchNorm2d) or ``"layer"`` (GroupNorm with one group).

    Raises
    ------
    ConfigError
        Unknown kind.
    """
    if kind in (None, "none"):
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    raise ConfigError(f"unknown normalisation {kind!r}; use none, batch or layer")


class Pad(nn.Module):
    """Zero-pad (N, C, s, s) to (N, C, s + a + b, s + a + b) with ``(a, b)`` on each axis."""

    def __init__(self, pad: tuple[int, int]) -> None:
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.pad
        return F.pad(x, (a, b, a, b)) if a or b else x


class Crop(nn.Module):
    """Crop (N, C, S, S) to (N, C, S - a - b, S - a - b), removing ``(a, b)`` on each axis."""

    def __init__(self, pad: tuple[int, int]) -> None:
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.pad
        if not (a or b):
            return x
        return x[..., a : x.shape[-2] - b, a : x.shape[-1] - b]


def mlp(
    in_features: int,
    out_features: int,
    hidden: int | tuple[int, ...] | list[int] = (),
    depth: int = 1,
    act: str = "relu",
) -> nn.Sequential:
    """A multilayer perceptron (N, in_features) -> (N, out_features).

    Parameters
    ----------
    in_features, out_features : int
        Widths of the input and the output (no activation on the output).
    hidden : int or sequence of int
        Hidden widths. An int ``h`` means ``depth`` hidden layers of width ``h``; 0 or an empty
        sequence gives a single linear layer. ``mlp(784, 40, 400)`` is the encoder of the PyTorch
        examples VAE (784-400-(20+20)).
    depth : int
        Number of hidden layers when ``hidden`` is an int.
    act : str
        Hidden activation, see :func:`activation`.
    """
    if isinstance(hidden, int):
        widths = [hidden] * depth if hidden > 0 else []
    else:
        widths = [int(h) for h in hidden]
    layers: list[nn.Module] = []
    prev = in_features
    for h in widths:
        layers += [nn.Linear(prev, h), activation(act)]
        prev = h
    layers.append(nn.Linear(prev, out_features))
    return nn.Sequential(*layers)


def conv_encoder(
    channels: int,
    size: int,
    out_features: int,
    width: int = 32,
    hidden: int = 256,
    act: str = "relu",
    norm: str | None = None,
) -> nn.Sequential:
    """A conv encoder (N, channels, size, size) -> (N, out_features).

    Stride-2 4x4 convolutions down to the base grid of :func:`conv_plan`, flatten, then a linear
    head (through one hidden layer of ``hidden`` units unless ``hidden`` is 0). Following DCGAN,
    ``norm`` is applied after every convolution but the first.

    Parameters
    ----------
    channels : int
        Image channels (1 grey, 3 RGB).
    size : int
        Image side in pixels; see :func:`conv_plan` for sizes that are not powers of two.
    out_features : int
        Output width, e.g. ``2 * latent_dim`` for a Gaussian posterior's (mu, logvar).
    width : int
        Channels of the first stages; later stages have twice as many (:func:`stage_channels`).
    hidden : int
        Width of the hidden linear layer; 0 for none.
    act : str
        Activation, see :func:`activation`.
    norm : {None, "batch", "layer"}
        Normalisation after each convolution but the first.

    Raises
    ------
    ConfigError
        Size out of range, unknown activation or normalisation.
    """
    plan = conv_plan(size)
    chans = stage_channels(plan.stages, width)
    layers: list[nn.Module] = [Pad(plan.pad)]
    prev = channels
    first = True
    if plan.stem:
        layers += [nn.Conv2d(prev, chans[0], 3, 1, 1), activation(act)]
        prev, first = chans[0], False
    for c in chans[: plan.stages]:
        layers.append(nn.Conv2d(prev, c, 4, 2, 1))
        if not first:
            layers.append(norm_layer(norm, c))
        layers.append(activation(act))
        prev, first = c, False
    layers.append(nn.Flatten())
    flat = prev * plan.base * plan.base
    if hidden > 0:
        layers += [nn.Linear(flat, hidden), activation(act), nn.Linear(hidden, out_features)]
    else:
        layers.append(nn.Linear(flat, out_features))
    return nn.Sequential(*layers)


def conv_decoder(
    in_features: int,
    channels: int,
    size: int,
    width: int = 32,
    hidden: int = 256,
    act: str = "relu",
    norm: str | None = None,
) -> nn.Sequential:
    """A conv decoder (N, in_features) -> (N, channels, size, size) of unbounded values (logits).

    The mirror of :func:`conv_encoder`: linear layers to the base grid, then stride-2 4x4
    transposed convolutions up to the padded side, then a crop to exactly ``size``. ``norm``
    follows every layer but the output one (as in the DCGAN generator). No output activation:
    apply a sigmoid for Bernoulli logits or images in [0, 1], tanh for [-1, 1].

    Parameters
    ----------
    in_features : int
        Width of z (or of the generator's noise).
    channels, size, width, hidden, act, norm
        As for :func:`conv_encoder`.

    Raises
    ------
    ConfigError
        Size out of range, unknown activation or normalisation.
    """
    plan = conv_plan(size)
    chans = stage_channels(plan.stages, width)[::-1]
    flat = chans[0] * plan.base * plan.base
    layers: list[nn.Module] = []
    if hidden > 0:
        layers += [nn.Linear(in_features, hidden), activation(act), nn.Linear(hidden, flat)]
    else:
        layers.append(nn.Linear(in_features, flat))
    layers += [activation(act), nn.Unflatten(1, (chans[0], plan.base, plan.base))]
    prev = chans[0]
    outs = chans[1 : plan.stages] + [chans[-1] if plan.stem else channels]
    for i, c in enumerate(outs[: plan.stages]):
        layers.append(nn.ConvTranspose2d(prev, c, 4, 2, 1))
        last = i == plan.stages - 1 and not plan.stem
        if not last:
            layers += [norm_layer(norm, c), activation(act)]
        prev = c
    if plan.stem:
        layers.append(nn.Conv2d(prev, channels, 3, 1, 1))
    layers.append(Crop(plan.pad))
    return nn.Sequential(*layers)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars in ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def first_layer(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The activations ``x`` produces after the first linear layer and its activation in ``module``.

    Walks nested ``nn.Sequential`` containers in order, applying each leaf module, and stops after
    the first non-linear leaf that follows an ``nn.Linear``: for :func:`conv_decoder` and :func:`mlp`,
    ``act(W z + b)``, the first generator layer GANSpace (Harkonen et al. 2020) finds its components in.
    Returns (N, F), flattened.
    """
    seen_linear = False
    stack = [module]
    leaves: list[nn.Module] = []
    while stack:
        m = stack.pop(0)
        if isinstance(m, nn.Sequential):
            stack = list(m.children()) + stack
        else:
            leaves.append(m)
    h = x
    for m in leaves:
        h = m(h)
        if isinstance(m, nn.Linear):
            seen_linear = True
        elif seen_linear:
            break
    return h.reshape(len(h), -1)
