"""Masked convolutions and a small categorical PixelCNN over a grid of indices (van den Oord et al. 2016).

A masked convolution zeroes the kernel's taps at and after its centre in raster order, so the output at (i, j)
sees only the rows above i and row i left of j: mask "A" excludes the centre (the first layer, where a position
must not see its own value), mask "B" includes it (later layers, where a position holds only what came before
it). That is the PixelCNN of "Pixel Recurrent Neural Networks" (van den Oord, Kalchbrenner & Kavukcuoglu
2016a, section 3.5 and Figure 2) for a single input group: one categorical value per position, no colour
channels to order within a pixel.

:class:`CategoricalPixelCNN` is that network over a grid of class indices, as the VQ-VAE's learnt prior over
its code grid (van den Oord, Vinyals & Kavukcuoglu 2017, section 3.3): an embedding of each index, a mask-A
convolution, residual blocks around 3x3 mask-B convolutions, two 1x1 convolutions to K logits per position.
Stacked 3x3 mask-B layers leave the PixelCNN's blind spot up and to the right; a first kernel of side
2 G - 1 on a G x G grid reaches every earlier position directly and removes it (cheap on the small grids of a
VQ-VAE). Shapes: indices (B, H, W) int64 in [0, K); logits (B, K, H, W).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from engines.shared.errors import ConfigError


def causal_mask(kernel: int, mask_type: str) -> torch.Tensor:
    """The (kernel, kernel) 0/1 mask of a raster-order convolution: the rows above the centre and the taps left
    of it, the centre too for mask "B".

    Raises
    ------
    ConfigError
        An even kernel, or a mask type other than "A" or "B".
    """
    if mask_type not in ("A", "B"):
        raise ConfigError(f"mask type must be 'A' or 'B', not {mask_type!r}")
    if kernel < 1 or kernel % 2 == 0:
        raise ConfigError(f"a masked convolution needs an odd kernel side, not {kernel}")
    mask = torch.zeros(kernel, kernel)
    mask[: kernel // 2] = 1
    mask[kernel // 2, : kernel // 2 + (mask_type == "B")] = 1
    return mask


class MaskedConv2d(nn.Conv2d):
    """A square 'same' convolution (C_in, H, W) -> (C_out, H, W) whose output at (i, j) sees only positions
    before (i, j) in raster order, and (i, j) itself under mask "B" (:func:`causal_mask`).

    The mask is a fixed buffer rebuilt from ``mask_type`` and ``kernel``, not saved in checkpoints.
    """

    def __init__(self, mask_type: str, c_in: int, c_out: int, kernel: int) -> None:
        mask = causal_mask(kernel, mask_type)
        super().__init__(c_in, c_out, kernel, padding=kernel // 2)
        self.mask_type = mask_type
        self.register_buffer("mask", mask.expand(c_out, c_in, kernel, kernel).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class MaskedResidualBlock(nn.Module):
    """h + 1x1(ReLU(3x3 mask B(ReLU(h)))), h (B, C, H, W): the PixelCNN's residual block (van den Oord et al.
    2016a, Figure 5)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = MaskedConv2d("B", channels, channels, 3)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.out(F.relu(self.conv(F.relu(h))))


class CategoricalPixelCNN(nn.Module):
    """An autoregressive distribution over grids of class indices in raster order (module docstring).

    Parameters
    ----------
    n_classes : int
        K, the classes at each position.
    width : int
        Channels of the embedding and of every hidden layer.
    layers : int
        Residual blocks after the first layer.
    kernel : int
        Odd side of the first (mask A) convolution; 2 G - 1 on a G x G grid leaves no blind spot.

    Raises
    ------
    ConfigError
        K below 2, width below 1, layers below 0, or an even kernel.
    """

    def __init__(self, n_classes: int, width: int = 32, layers: int = 3, kernel: int = 7) -> None:
        super().__init__()
        if n_classes < 2 or width < 1 or layers < 0:
            raise ConfigError(f"categorical PixelCNN: n_classes >= 2, width >= 1 and layers >= 0, "
                              f"not {n_classes}, {width}, {layers}")
        self.k = n_classes
        self.embed = nn.Embedding(n_classes, width)
        self.first = MaskedConv2d("A", width, width, kernel)
        self.blocks = nn.Sequential(*[MaskedResidualBlock(width) for _ in range(layers)])
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(width, width, 1), nn.ReLU(), nn.Conv2d(width, n_classes, 1))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (B, K, H, W) of indices idx (B, H, W) int64 in [0, K): those at (i, j) depend only on the
        indices before (i, j) in raster order (the first position's on none: the biases alone)."""
        h = self.embed(idx).permute(0, 3, 1, 2)
        return self.head(self.blocks(self.first(h)))

    def nll(self, idx: torch.Tensor) -> torch.Tensor:
        """-log p(idx): (B,) nats per grid of idx (B, H, W) int64."""
        return F.cross_entropy(self(idx), idx, reduction="none").flatten(1).sum(1)

    @torch.no_grad()
    def sample(self, n: int, height: int, width: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw n grids (n, H, W) int64 position by position in raster order.

        Each position takes one uniform draw (n,) from ``generator`` (on the generator's device, then moved)
        and inverts the conditional's cumulative distribution, so a seeded generator gives the same grids
        on any device. The pass for row i runs on rows 0..i only: the masks never look below a row.
        """
        device = self.embed.weight.device
        idx = torch.zeros(n, height, width, dtype=torch.long, device=device)
        for i in range(height):
            for j in range(width):
                probs = F.softmax(self(idx[:, : i + 1])[:, :, i, j].float(), dim=1)
                u = torch.rand(n, generator=generator, device=generator.device if generator is not None else "cpu")
                below = (probs.cumsum(1) < u.to(device)[:, None]).sum(1)
                idx[:, i, j] = below.clamp_max(self.k - 1)
        return idx
