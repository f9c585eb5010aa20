"""PixelCNN: masked convolutions for an exact image likelihood (van den Oord, Kalchbrenner & Kavukcuoglu 2016).

Two networks, one contract (:class:`~engines.models.autoregressive.base.ARModel`), both in raster
order over the pixels of a grey image (C = 1):

- ``gated=False``, the PixelCNN of "Pixel Recurrent Neural Networks" (van den Oord et al. 2016a,
  section 3.5 and Figure 4): a 7x7 convolution with mask A (a pixel sees the rows above and the
  pixels to its left, not itself), ``layers`` residual blocks around a 3x3 convolution with mask B
  (itself included, since from the second layer on a position holds only information from before
  it), then two 1x1 convolutions to the logits. Its receptive field has the known blind spot up
  and to the right.
- ``gated=True``, the gated PixelCNN of "Conditional Image Generation with PixelCNN Decoders" (van
  den Oord et al. 2016b, section 2.2): a vertical stack (the rows above, kernel (k/2+1) x k) and a
  horizontal stack (the row so far, kernel 1 x (k/2+1)) with gated activations
  tanh(W_f * x) . sigmoid(W_g * x); the vertical stack reaches the horizontal one shifted down by a
  row, which removes the blind spot. The first layer has k = 7, the others k = 3.

The pixel likelihood (``likelihood``) is a Bernoulli logit or the 256-way softmax over 8-bit grey
levels; left as None it is "bernoulli" on statically binarised data and "categorical" otherwise,
so a grey data set gets the exact likelihood of its 8-bit images. Published: 81.30 nats on binarised
MNIST (van den Oord et al. 2016a, Table 4); pytorch-generative 81.45 nats.

Drawing a sample takes one pass per pixel; each pass here runs only on the pixel's receptive field
(:meth:`PixelCNN.reach` rows up and columns to either side; the masked convolutions never look
below a pixel's row), with the same result as the whole image's pass and a fraction of its work.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.nn import functional as F

from engines.models.autoregressive.base import ARModel, check_likelihood
from engines.models.base import EngineConfig
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError

#: Kernel side of the first layer and of the later ones.
FIRST_KERNEL, KERNEL = 7, 3


@dataclass
class PixelCNNConfig(EngineConfig):
    """Settings of :class:`PixelCNN`.

    Attributes
    ----------
    lr : float
        Adam learning rate, live-tunable in [1e-6, 0.1].
    channels : int
        Feature maps of every hidden layer.
    layers : int
        Residual blocks (plain) or gated layers after the first layer.
    gated : bool
        The gated PixelCNN with vertical and horizontal stacks (van den Oord et al. 2016b).
    likelihood : {"bernoulli", "categorical"} or None
        None: "bernoulli" on binarised data, else "categorical" (256-way softmax).
    """

    lr: float = 1e-3
    channels: int = 64
    layers: int = 5
    gated: bool = False
    likelihood: str | None = None


class MaskedConv2d(nn.Conv2d):
    """A square 'same' convolution whose kernel sees only the rows above and the pixels to the left.

    ``mask_type`` "A" excludes the centre (the first layer: a pixel must not see itself), "B"
    includes it. For grey images (one input group), as in van den Oord et al. 2016a, Figure 2.
    """

    def __init__(self, mask_type: str, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__(c_in, c_out, kernel, padding=kernel // 2)
        if mask_type not in ("A", "B"):
            raise ConfigError(f"mask type must be 'A' or 'B', not {mask_type!r}")
        mask = torch.zeros(kernel, kernel)
        mask[: kernel // 2] = 1
        mask[kernel // 2, : kernel // 2 + (mask_type == "B")] = 1
        self.register_buffer("mask", mask.expand(c_out, c_in, kernel, kernel).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class ResidualBlock(nn.Module):
    """h + 1x1(ReLU(3x3 mask B(ReLU(h)))): the PixelCNN's residual block (van den Oord et al. 2016a, Figure 5)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = MaskedConv2d("B", channels, channels, KERNEL)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.out(F.relu(self.conv(F.relu(h))))


def _shift_down(x: torch.Tensor) -> torch.Tensor:
    """Row i takes row i-1 (row 0 zeros)."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def _shift_right(x: torch.Tensor) -> torch.Tensor:
    """Column j takes column j-1 (column 0 zeros)."""
    return F.pad(x, (1, 0, 0, 0))[:, :, :, :-1]


def _gate(x: torch.Tensor) -> torch.Tensor:
    f, g = x.chunk(2, dim=1)
    return torch.tanh(f) * torch.sigmoid(g)


class GatedLayer(nn.Module):
    """One layer of the gated PixelCNN: (v, h) -> (v', h') (van den Oord et al. 2016b, Figure 2).

    The vertical conv at row i sees rows i - k/2 .. i; it reaches the horizontal stack shifted down a
    row, so h at (i, j) sees the rows above through it and row i's pixels left of j (up to j from
    the second layer on, those holding only earlier information) through the horizontal conv.
    """

    def __init__(self, c_in: int, channels: int, kernel: int, first: bool) -> None:
        super().__init__()
        self.k, self.first = kernel // 2, first
        self.v_conv = nn.Conv2d(c_in, 2 * channels, (self.k + 1, kernel))
        self.h_conv = nn.Conv2d(c_in, 2 * channels, (1, self.k + 1))
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_out = nn.Conv2d(channels, channels, 1)

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.k
        v_pre = self.v_conv(F.pad(v, (k, k, k, 0)))
        h_pre = self.h_conv(F.pad(h, (k, 0, 0, 0)))
        if self.first:  # mask A: the pixel itself is not seen
            h_pre = _shift_right(h_pre)
        h_pre = h_pre + self.v_to_h(_shift_down(v_pre))
        h_new = self.h_out(_gate(h_pre))
        return _gate(v_pre), h_new if self.first else h + h_new


class PixelCNN(ARModel):
    """PixelCNN (van den Oord et al. 2016a), or the gated PixelCNN (2016b), on grey images (module docstring).

    Parameters
    ----------
    config : PixelCNNConfig
        ``likelihood`` resolved from the data and stored back in ``self.config``.
    data : DataInfo
        Grey images (1, H, W).

    Raises
    ------
    ConfigError
        Non-image or colour data, ``channels`` or ``layers`` out of range, an unknown likelihood,
        a non-positive ``lr``.
    """

    config_class = PixelCNNConfig

    def __init__(self, config: PixelCNNConfig, data: DataInfo) -> None:
        likelihood = config.likelihood or ("bernoulli" if data.binarized is not None else "categorical")
        config = replace(config, likelihood=check_likelihood("PixelCNN", likelihood))
        if data.kind == "image" and data.shape[0] != 1:
            raise ConfigError(f"PixelCNN here models grey images (1 channel); {data.spec} has {data.shape[0]} "
                              f"channels: use fvsbn, nade or made, or grey images")
        if config.channels < 1 or config.layers < 0:
            raise ConfigError(f"PixelCNN: channels must be >= 1 and layers >= 0, not {config.channels}, {config.layers}")
        super().__init__(config, data)
        c = config.channels
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            if config.gated:
                self.stack = nn.ModuleList([GatedLayer(1, c, FIRST_KERNEL, True)]
                                           + [GatedLayer(c, c, KERNEL, False) for _ in range(config.layers)])
            else:
                self.first = MaskedConv2d("A", 1, c, FIRST_KERNEL)
                self.blocks = nn.Sequential(*[ResidualBlock(c) for _ in range(config.layers)])
            self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 1), nn.ReLU(), nn.Conv2d(c, self.k, 1))
        self.finish_init()

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.gated:
            v = h = x
            for layer in self.stack:
                v, h = layer(v, h)
            return h
        return self.blocks(self.first(x))

    def conditionals(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 1, H, W) in [0, 1] -> logits (N, K, 1, H, W): those of (i, j) see rows < i and row i left of j."""
        return self.head(self._features(x * 2 - 1)).unsqueeze(2)

    def reach(self) -> int:
        """How many rows up, and columns to either side, a pixel's logits can see (its receptive field)."""
        first = FIRST_KERNEL // 2 + (1 if self.config.gated else 0)  # the gated stacks add a one-row shift
        return first + self.config.layers * (KERNEL // 2)

    def step_logits(self, x: torch.Tensor, position: int) -> torch.Tensor:
        """(N, K) logits of pixel ``position`` (raster index), from its receptive field only.

        The network runs on the window of rows ``row - reach .. row`` and columns ``col - reach ..
        col + reach`` (clipped to the image): every value inside the field is the same as in the full
        pass, since zero padding at the window's edges reaches at most ``reach`` pixels inwards.
        """
        h, w = self.shape[1:]
        row, col = divmod(position, w)
        r = self.reach()
        top, left = max(0, row - r), max(0, col - r)
        window = x[:, :, top: row + 1, left: min(w, col + r + 1)]
        return self.conditionals(window)[:, :, 0, row - top, col - left]
