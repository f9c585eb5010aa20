"""Invertible layers for the coupling flows: NICE, RealNVP and Glow.

Every layer is an :class:`torch.nn.Module` with

- ``forward(x) -> (y, logdet)``: y shaped like x, ``logdet`` (N,) = log |det dy/dx| per example, nats;
- ``inverse(y) -> x``: the exact inverse (up to float rounding).

They work on images (N, C, H, W) and, where it makes sense, on vectors (N, D) (2-D points, or a
flattened image for NICE). :class:`Squeeze` and :class:`MultiScale` are for images only.

The layers:

- :class:`ActNorm`: a per-channel affine map initialised from the first training batch so that its
  output has zero mean and unit variance per channel (Kingma & Dhariwal 2018, section 3.1).
- :class:`InvertibleConv1x1`: a 1x1 convolution W = P L (U + diag(s)) in LU form (Kingma & Dhariwal
  2018, section 3.2); on vectors an invertible linear map. log |det W| = sum log |s|.
- :class:`AdditiveCoupling`: y = x_a, y_b = x_b + t(x_a) (Dinh, Krueger & Bengio 2015, "NICE").
- :class:`AffineCoupling`: y_b = x_b * exp(log_s(x_a)) + t(x_a) (Dinh, Sohl-Dickstein & Bengio 2017,
  "RealNVP"), with a bounded log-scale for stability.
- :class:`Scaling`: NICE's final diagonal scaling y = x * exp(S) (Dinh et al. 2015, section 3.3).
- :class:`Squeeze`: space-to-depth, (C, H, W) -> (4C, H/2, W/2) (Dinh et al. 2017, section 3.6).
- :class:`FlowSequence` and :class:`MultiScale`: composition, and one scale of a multi-scale
  architecture that factors out half of its channels (Dinh et al. 2017, section 3.6) while keeping
  z in the data's shape.

Couplings are written with a binary mask m (1: the conditioning part x_a, passed through; 0: the part
x_b that is transformed): :func:`checkerboard_mask` and :func:`channel_mask` for images,
:func:`vector_mask` (interleaved or halves) for vectors. The conditioner is built inside the layer, a
small conv net for images and an MLP for vectors, and its last layer is zero-initialised so that
every coupling starts as the identity.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from engines.lib.nets import mlp
from engines.shared.errors import ConfigError

#: Floor of the batch standard deviation in ActNorm's data-dependent initialisation.
ACTNORM_MIN_STD = 1e-3


# -- masks ------------------------------------------------------------------------------------------
def checkerboard_mask(height: int, width: int, parity: int = 0) -> torch.Tensor:
    """The checkerboard mask (Dinh et al. 2017, Figure 3): 1 where (i + j) % 2 == parity.

    Returns
    -------
    (1, H, W) float tensor of 0/1, broadcasting over the channels of a (N, C, H, W) image.
    """
    i = torch.arange(height).view(-1, 1)
    j = torch.arange(width).view(1, -1)
    return ((i + j) % 2 == parity % 2).float().unsqueeze(0)


def channel_mask(channels: int, parity: int = 0) -> torch.Tensor:
    """The channel-wise mask (Dinh et al. 2017, Figure 3): 1 on the first half of the channels
    (parity 0) or on the second half (parity 1); with an odd count the first "half" is C // 2.

    Returns
    -------
    (C, 1, 1) float tensor of 0/1, broadcasting over H and W.
    """
    first = torch.arange(channels) < channels // 2
    mask = first if parity % 2 == 0 else ~first
    return mask.float().view(channels, 1, 1)


def vector_mask(dim: int, parity: int = 0, kind: str = "interleaved") -> torch.Tensor:
    """A partition of a vector's D coordinates for a coupling layer.

    Parameters
    ----------
    dim : int
        D.
    parity : int
        0 or 1; the two parities are complementary, so alternating them updates every coordinate.
    kind : {"interleaved", "halves"}
        ``interleaved``: 1 on the even coordinates (parity 0) or the odd ones (NICE's odd/even
        partition, Dinh et al. 2015, section 5.1); ``halves``: 1 on the first D // 2 (parity 0) or
        on the rest. For D = 2 both give [1, 0] and [0, 1].

    Returns
    -------
    (D,) float tensor of 0/1.
    """
    idx = torch.arange(dim)
    if kind == "interleaved":
        ones = idx % 2 == 0
    elif kind == "halves":
        ones = idx < dim // 2
    else:
        raise ConfigError(f"vector_mask: kind must be 'interleaved' or 'halves', not {kind!r}")
    return (ones if parity % 2 == 0 else ~ones).float()


# -- conditioner networks ---------------------------------------------------------------------------
def conditioner(shape: tuple[int, ...], out_per_dim: int, hidden: int, layers: int = 2) -> nn.Sequential:
    """The network of a coupling layer, its last layer zero-initialised (so it outputs 0 at first).

    Parameters
    ----------
    shape : (C, H, W) or (D,)
        One example's shape. Images get conv3x3 -> ReLU -> [conv1x1 -> ReLU] * (layers - 1) ->
        conv3x3 (Glow's coupling network, Kingma & Dhariwal 2018, section 3.3), C -> out_per_dim * C
        channels; vectors an MLP D -> hidden (x ``layers``) -> out_per_dim * D with ReLUs.
    out_per_dim : int
        Outputs per input dimension: 1 (a shift) or 2 (a log-scale and a shift).
    hidden : int
        Channels (images) or units (vectors) of the hidden layers.
    layers : int
        Number of hidden layers.
    """
    if len(shape) == 3:
        c = shape[0]
        mods: list[nn.Module] = [nn.Conv2d(c, hidden, 3, padding=1), nn.ReLU()]
        for _ in range(layers - 1):
            mods += [nn.Conv2d(hidden, hidden, 1), nn.ReLU()]
        mods.append(nn.Conv2d(hidden, out_per_dim * c, 3, padding=1))
        net = nn.Sequential(*mods)
    elif len(shape) == 1:
        net = mlp(shape[0], out_per_dim * shape[0], hidden, layers)
    else:
        raise ConfigError(f"coupling layers need an example shape (C, H, W) or (D,), not {tuple(shape)}")
    last = net[-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return net


def _per_example(value: torch.Tensor, n: int) -> torch.Tensor:
    """A 0-d log-determinant shared by every example, as an (n,) tensor."""
    return value.expand(n)


# -- composition ------------------------------------------------------------------------------------
class FlowSequence(nn.Module):
    """Invertible layers applied in order; log-determinants add.

    Parameters
    ----------
    layers : iterable of nn.Module
        Each with ``forward(x) -> (y, logdet (N,))`` and ``inverse(y) -> x``; may be empty (identity).
    """

    def __init__(self, layers=()) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        for layer in reversed(self.layers):
            y = layer.inverse(y)
        return y


# -- elementwise layers -----------------------------------------------------------------------------
class ActNorm(nn.Module):
    """Activation normalisation (Kingma & Dhariwal 2018, section 3.1): y = (x + b) * exp(log_scale).

    One bias and one log-scale per channel of an image (N, C, H, W) or per coordinate of a vector
    (N, D). On the first forward pass in training mode they are set from that batch so that y has
    zero mean and unit variance per channel (the std floored at ``ACTNORM_MIN_STD``); the
    ``initialised`` buffer (0 or 1) records it, so a loaded checkpoint keeps its values. Before that
    the layer is the identity. log |det| = H * W * sum(log_scale) (H = W = 1 for vectors).

    Parameters
    ----------
    features : int
        C (images) or D (vectors).
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(features))
        self.log_scale = nn.Parameter(torch.zeros(features))
        self.register_buffer("initialised", torch.zeros(()))

    def _view(self, p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return p.view(1, -1, 1, 1) if x.dim() == 4 else p.view(1, -1)

    @torch.no_grad()
    def initialise(self, x: torch.Tensor) -> None:
        """Set bias and log-scale from the batch x so that the output is standardised per channel."""
        dims = (0, 2, 3) if x.dim() == 4 else (0,)
        mean = x.mean(dims)
        count = x.numel() // x.shape[1]  # values per channel in the batch
        std = x.std(dims, unbiased=False) if count > 1 else torch.ones_like(mean)
        self.bias.copy_(-mean)
        self.log_scale.copy_(-torch.log(std.clamp_min(ACTNORM_MIN_STD)))
        self.initialised.fill_(1.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not bool(self.initialised):
            self.initialise(x)
        y = (x + self._view(self.bias, x)) * torch.exp(self._view(self.log_scale, x))
        pixels = x.shape[2] * x.shape[3] if x.dim() == 4 else 1
        return y, _per_example(self.log_scale.sum() * pixels, x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * torch.exp(-self._view(self.log_scale, y)) - self._view(self.bias, y)


class Scaling(nn.Module):
    """NICE's diagonal scaling layer (Dinh et al. 2015, section 3.3): y = x * exp(log_scale).

    Parameters
    ----------
    shape : tuple of int
        One example's shape, (D,) or (C, H, W): one log-scale per dimension, initialised to 0.
        log |det| = sum(log_scale).
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(tuple(shape)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x * torch.exp(self.log_scale), _per_example(self.log_scale.sum(), x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * torch.exp(-self.log_scale)


class InvertibleConv1x1(nn.Module):
    """Glow's invertible 1x1 convolution in LU form (Kingma & Dhariwal 2018, section 3.2).

    W = P (L + I) (U + diag(sign(s) * exp(log|s|))) with P a fixed permutation (buffer), L strictly
    lower and U strictly upper triangular (parameters; only their strict parts are used), ``log_s``
    = log |s| a parameter and ``sign_s`` a buffer. W starts as a random rotation (seeded by the
    caller's RNG state). On images (N, C, H, W) it mixes the channels of every pixel, log |det| =
    H * W * sum(log_s); on vectors (N, D) it is the linear map y = W x, log |det| = sum(log_s).

    Parameters
    ----------
    features : int
        C (images) or D (vectors).
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        w = torch.linalg.qr(torch.randn(features, features))[0]
        p, low, up = torch.linalg.lu(w)
        s = torch.diagonal(up)
        self.register_buffer("perm", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.lower = nn.Parameter(torch.tril(low, -1))
        self.upper = nn.Parameter(torch.triu(up, 1))
        self.log_s = nn.Parameter(torch.log(s.abs()))

    def _factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        eye = torch.eye(self.log_s.shape[0], device=self.log_s.device, dtype=self.log_s.dtype)
        low = torch.tril(self.lower, -1) + eye
        up = torch.triu(self.upper, 1) + torch.diag(self.sign_s * torch.exp(self.log_s))
        return low, up

    def weight(self) -> torch.Tensor:
        """W, (C, C)."""
        low, up = self._factors()
        return self.perm @ low @ up

    def inverse_weight(self) -> torch.Tensor:
        """W^-1 = U^-1 L^-1 P^T by triangular solves, (C, C)."""
        low, up = self._factors()
        inv_low_pt = torch.linalg.solve_triangular(low, self.perm.T, upper=False, unitriangular=True)
        return torch.linalg.solve_triangular(up, inv_low_pt, upper=True)

    @staticmethod
    def _mix(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            return F.conv2d(x, w.view(*w.shape, 1, 1))
        return x @ w.T

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = x.shape[2] * x.shape[3] if x.dim() == 4 else 1
        return self._mix(self.weight(), x), _per_example(self.log_s.sum() * pixels, x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return self._mix(self.inverse_weight(), y)


# -- coupling layers --------------------------------------------------------------------------------
class AdditiveCoupling(nn.Module):
    """NICE's additive coupling (Dinh et al. 2015, section 3.2): y = x + (1 - m) * t(m * x).

    The entries where the mask m is 1 pass through unchanged and condition the shift t of the others;
    volume preserving, log |det| = 0.

    Parameters
    ----------
    shape : (C, H, W) or (D,)
        One example's shape; a conv conditioner for images, an MLP for vectors (:func:`conditioner`).
    mask : tensor of 0/1
        Broadcastable to ``shape`` (:func:`checkerboard_mask`, :func:`channel_mask`, :func:`vector_mask`).
    hidden : int
        Width of the conditioner.
    layers : int
        Hidden layers of the conditioner.
    """

    def __init__(self, shape: tuple[int, ...], mask: torch.Tensor, hidden: int, layers: int = 2) -> None:
        super().__init__()
        self.register_buffer("mask", mask.float().clone())
        self.net = conditioner(tuple(shape), 1, hidden, layers)

    def _shift(self, x_a: torch.Tensor) -> torch.Tensor:
        return self.net(x_a) * (1 - self.mask)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = x + self._shift(x * self.mask)
        return y, torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y - self._shift(y * self.mask)


class AffineCoupling(nn.Module):
    """RealNVP's affine coupling (Dinh et al. 2017, section 3.3).

    With x_a = m * x: y = x_a + (1 - m) * (x * exp(log_s(x_a)) + t(x_a)), so
    log |det| = sum over the transformed entries of log_s. The log-scale is bounded:

    - ``scale="tanh"``: log_s = c * tanh(h), c a learned factor per channel (per coordinate for
      vectors) starting at 1 (RealNVP's tanh with a scale);
    - ``scale="sigmoid"``: exp(log_s) = 2 * sigmoid(h), in (0, 2) (Glow's sigmoid scale, centred so
      that h = 0 is the identity).

    h and t come from the conditioner (:func:`conditioner`), zero at initialisation, so the layer
    starts as the identity.

    Parameters
    ----------
    shape : (C, H, W) or (D,)
        One example's shape.
    mask : tensor of 0/1
        Broadcastable to ``shape``; 1 marks the conditioning entries.
    hidden : int
        Width of the conditioner.
    layers : int
        Hidden layers of the conditioner.
    scale : {"tanh", "sigmoid"}
    """

    def __init__(self, shape: tuple[int, ...], mask: torch.Tensor, hidden: int, layers: int = 2,
                 scale: str = "tanh") -> None:
        super().__init__()
        if scale not in ("tanh", "sigmoid"):
            raise ConfigError(f"AffineCoupling: scale must be 'tanh' or 'sigmoid', not {scale!r}")
        shape = tuple(shape)
        self.scale = scale
        self.register_buffer("mask", mask.float().clone())
        self.net = conditioner(shape, 2, hidden, layers)
        if scale == "tanh":
            factor_shape = (shape[0], 1, 1) if len(shape) == 3 else shape
            self.scale_factor = nn.Parameter(torch.ones(factor_shape))

    def _params(self, x_a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, t = self.net(x_a).chunk(2, dim=1)
        if self.scale == "tanh":
            log_s = self.scale_factor * torch.tanh(h)
        else:
            log_s = math.log(2.0) + F.logsigmoid(h)
        free = 1 - self.mask
        return log_s * free, t * free

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_s, t = self._params(x * self.mask)
        y = x * torch.exp(log_s) + t  # log_s and t are 0 where the mask is 1
        return y, log_s.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        log_s, t = self._params(y * self.mask)
        return (y - t) * torch.exp(-log_s)


# -- reshaping and multi-scale ----------------------------------------------------------------------
def squeeze(x: torch.Tensor) -> torch.Tensor:
    """Space-to-depth: (N, C, H, W) -> (N, 4C, H/2, W/2); each 2x2 block becomes 4 channels
    (channel c * 4 + 2 * di + dj holds pixel (2i + di, 2j + dj) of channel c). H, W must be even."""
    n, c, h, w = x.shape
    x = x.view(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(n, c * 4, h // 2, w // 2)


def unsqueeze(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`squeeze`: (N, 4C, H, W) -> (N, C, 2H, 2W)."""
    n, c4, h, w = x.shape
    x = x.view(n, c4 // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(n, c4 // 4, h * 2, w * 2)


class Squeeze(nn.Module):
    """:func:`squeeze` as a layer (Dinh et al. 2017, section 3.6): a permutation, log |det| = 0."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return squeeze(x), torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return unsqueeze(y)


class MultiScale(nn.Module):
    """One scale of a multi-scale flow on images (Dinh et al. 2017, section 3.6; Kingma & Dhariwal 2018).

    forward: x (N, C, H, W) -> ``before`` at (C, H, W); then, if ``after`` is given, squeeze to
    (4C, H/2, W/2) -> ``after``; if ``inner`` is given, the first 2C channels are factored out (they
    are final z) and the other 2C go through ``inner`` (the next, coarser scale); the two halves are
    concatenated back and unsqueezed. z therefore has the input's shape (N, C, H, W) with a fixed,
    reversible layout, and a standard normal prior on all of z is the factored-out prior of the paper.

    Parameters
    ----------
    before : nn.Module
        Flow at the input resolution (e.g. RealNVP's checkerboard couplings), or an empty
        :class:`FlowSequence`.
    after : nn.Module or None
        Flow after the squeeze (channel couplings, Glow steps); None: no squeeze at this scale.
    inner : nn.Module or None
        Flow on the half that is not factored out, (2C, H/2, W/2); None: nothing is factored out.
        Needs ``after``.
    """

    def __init__(self, before: nn.Module, after: nn.Module | None = None, inner: nn.Module | None = None) -> None:
        super().__init__()
        if inner is not None and after is None:
            raise ConfigError("MultiScale: factoring out (inner) needs a squeeze (after)")
        self.before = before
        self.after = after
        self.inner = inner

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, logdet = self.before(x)
        if self.after is not None:
            x, ld = self.after(squeeze(x))
            logdet = logdet + ld
            if self.inner is not None:
                z_out, h = x.chunk(2, dim=1)
                h, ld = self.inner(h)
                logdet = logdet + ld
                x = torch.cat([z_out, h], dim=1)
            x = unsqueeze(x)
        return x, logdet

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        if self.after is not None:
            z = squeeze(z)
            if self.inner is not None:
                z_out, h = z.chunk(2, dim=1)
                z = torch.cat([z_out, self.inner.inverse(h)], dim=1)
            z = unsqueeze(self.after.inverse(z))
        return self.before.inverse(z)


def squeezes_possible(height: int, width: int, min_side: int = 1) -> int:
    """How many times (H, W) can be halved by :func:`squeeze` with both sides even at every step and
    at least ``min_side`` after it (28 -> 14 -> 7: 2; 32 with min_side 2: 4)."""
    count = 0
    while height % 2 == 0 and width % 2 == 0 and height // 2 >= min_side and width // 2 >= min_side:
        height, width, count = height // 2, width // 2, count + 1
    return count
