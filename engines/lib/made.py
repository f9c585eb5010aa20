"""MADE: masked autoencoders that give autoregressive outputs in one pass (Germain et al. 2015).

Shared by the autoregressive family (``made``), the flows (``maf``'s blocks, Papamakarios et al.
2017) and the VAE with an IAF posterior (Kingma et al. 2016): each needs a network whose output i
depends only on inputs earlier than i in a chosen ordering.

Degrees (Germain et al. 2015, Section 4): every input d gets the degree ``m(d) = order[d] + 1``
(1..D); every hidden unit a degree in ``[min_prev, D - 1]`` drawn with a seeded generator; a hidden
unit connects to a unit of the layer below whose degree is <= its own, and output d to hidden
units whose degree is < ``m(d)``. Output d therefore sees exactly the inputs that come before it
in the ordering, and the output of the first input in the ordering sees none (its parameters come
from the biases alone). ``context`` (an extra input every output may see, e.g. the encoder's h in
an IAF step) connects to every hidden unit of the first layer.

Shapes: inputs (N, D), context (N, C); the output is (N, k, D): k parameters per dimension (a
logit, or a mean and a log-scale), the parameters of dimension d in ``out[:, :, d]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from engines.shared.errors import ConfigError


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (out, in), a buffer.

    The mask is saved with the weights, so a checkpoint restores the connectivity it was trained
    with (a reordered MADE included).
    """

    def __init__(self, n_in: int, n_out: int, bias: bool = True) -> None:
        super().__init__(n_in, n_out, bias)
        self.register_buffer("mask", torch.ones(n_out, n_in))

    def set_mask(self, mask: torch.Tensor | np.ndarray) -> None:
        """Replace the mask; ``mask`` is (out, in) of 0/1."""
        self.mask.copy_(torch.as_tensor(mask, dtype=self.mask.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def made_degrees(order: np.ndarray, hidden: Sequence[int], seed: int) -> list[np.ndarray]:
    """Degrees of the input and hidden units (Germain et al. 2015, Section 4).

    Parameters
    ----------
    order : (D,) int array
        A permutation of 0..D-1: ``order[d]`` is input d's position in the autoregressive order.
    hidden : sequence of int
        Hidden layer widths.
    seed : int
        Seeds the hidden degrees (a "mask" in the paper's connectivity-agnostic training).

    Returns
    -------
    list of int arrays
        ``[input degrees (D,) in 1..D, hidden degrees (H_l,) in 1..D-1 for each layer]``.
    """
    d = len(order)
    rng = np.random.default_rng(seed)
    degrees = [np.asarray(order, dtype=np.int64) + 1]
    for width in hidden:
        low = min(int(degrees[-1].min()), d - 1)
        degrees.append(rng.integers(low, d, size=width) if d > 1 else np.ones(width, np.int64))
    return degrees


def check_order(order: Sequence[int] | np.ndarray, d: int) -> np.ndarray:
    """``order`` as an int array, checked to be a permutation of 0..d-1.

    Raises
    ------
    ConfigError
        If it is not.
    """
    arr = np.asarray(order, dtype=np.int64)
    if arr.shape != (d,) or not np.array_equal(np.sort(arr), np.arange(d)):
        raise ConfigError(f"MADE: an ordering must be a permutation of 0..{d - 1}, got {list(arr)[:10]}...")
    return arr


class MADE(nn.Module):
    """A masked MLP: out[:, :, d] depends only on inputs that come before d in ``order`` (and context).

    Parameters
    ----------
    dim : int
        D, the number of inputs (and of output positions).
    hidden : sequence of int
        Hidden widths (at least one layer).
    k : int
        Parameters per dimension in the output.
    context : int
        Width C of an optional context input that every output may depend on (0: none).
    order : sequence of int, optional
        Autoregressive order (default: the natural order 0..D-1).
    mask_seed : int
        Seed of the hidden degrees.

    Raises
    ------
    ConfigError
        On an empty hidden list, a dimension below 1, or an ordering that is not a permutation.
    """

    def __init__(self, dim: int, hidden: Sequence[int], k: int = 1, context: int = 0,
                 order: Sequence[int] | None = None, mask_seed: int = 0) -> None:
        super().__init__()
        if dim < 1 or not hidden or min(hidden) < 1 or k < 1:
            raise ConfigError(f"MADE: need dim >= 1, k >= 1 and hidden widths >= 1, got dim={dim}, hidden={list(hidden)}, k={k}")
        self.dim, self.k, self.hidden, self.n_context = dim, k, tuple(hidden), context
        widths = [dim, *hidden]
        self.layers = nn.ModuleList(MaskedLinear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.out = MaskedLinear(hidden[-1], k * dim)
        self.context = nn.Linear(context, hidden[0], bias=False) if context else None
        self.register_buffer("order", torch.arange(dim))
        self.set_order(np.arange(dim) if order is None else order, mask_seed)

    def set_order(self, order: Sequence[int] | np.ndarray, mask_seed: int = 0) -> None:
        """Rebuild the masks for a new ordering and hidden-degree seed (weights are kept).

        Raises
        ------
        ConfigError
            If ``order`` is not a permutation of 0..D-1.
        """
        order = check_order(order, self.dim)
        degrees = made_degrees(order, self.hidden, mask_seed)
        for layer, below, above in zip(self.layers, degrees[:-1], degrees[1:]):
            layer.set_mask(above[:, None] >= below[None, :])
        out_mask = degrees[0][:, None] > degrees[-1][None, :]  # (D, H): output d sees hidden degree < m(d)
        self.out.set_mask(np.tile(out_mask, (self.k, 1)))
        self.order.copy_(torch.as_tensor(order))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """(N, D) inputs (and (N, C) context) -> (N, k, D) parameters."""
        h = x
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i == 0 and self.context is not None:
                if context is None:
                    raise ConfigError("MADE: this network takes a context input")
                h = h + self.context(context)
            h = F.relu(h)
        return self.out(h).view(x.shape[0], self.k, self.dim)
