"""Built-in data sets that need no download: ``digits``, ``ring``, ``grid`` (and ``shapes``, see
:mod:`engines.data.shapes`). numpy, Pillow and scikit-learn only: no torch.
"""

from __future__ import annotations

import math

import numpy as np

from engines.data.base import Dataset
from engines.data.files import array_dataset, resize_images
from engines.data.shapes import ShapesDataset

#: Side the 8x8 digits are upscaled to when no image_size is given.
DIGITS_SIZE = 32
#: Points drawn for ``ring`` and ``grid``, and the seed of that fixed sample.
N_POINTS = 100_000
POINTS_SEED = 2018
RING_STD = 0.01
GRID_STD = 0.05


def load_shapes(image_size: int | None = None, spec: str = "shapes") -> ShapesDataset:
    """The dSprites-style shapes (:class:`ShapesDataset`), 64x64 unless ``image_size`` is given."""
    return ShapesDataset(64 if image_size is None else image_size, spec=spec)


def load_digits(image_size: int | None = None, spec: str = "digits") -> Dataset:
    """scikit-learn's bundled handwritten digits (the UCI optical digits test set, Alpaydin and
    Kaynak, 1998), loaded with :func:`sklearn.datasets.load_digits`.

    Parameters
    ----------
    image_size : int, optional
        Side to upscale the 8x8 images to (Pillow bicubic, clipped to [0, 1]); default
        :data:`DIGITS_SIZE`.

    Returns
    -------
    Dataset
        x (1797, 1, S, S) float32 in [0, 1] (the 0..16 grey levels divided by 16); y (1797,) int64
        digits 0-9, class names ``"0"`` .. ``"9"``.
    """
    from sklearn.datasets import load_digits as sk_load_digits  # heavy import, only when asked for

    bunch = sk_load_digits()
    x = (np.asarray(bunch.images, np.float32) / np.float32(16.0))[:, None]
    x = resize_images(x, DIGITS_SIZE if image_size is None else image_size)
    y = np.asarray(bunch.target, np.int64)
    return array_dataset(spec, x, y, tuple(str(d) for d in range(10)))


def ring_modes() -> np.ndarray:
    """(8, 2) float64 centres of ``ring``: the unit circle at angles 2 pi k / 8."""
    a = 2.0 * math.pi * np.arange(8) / 8
    return np.stack([np.cos(a), np.sin(a)], axis=1)


def grid_modes() -> np.ndarray:
    """(25, 2) float64 centres of ``grid``: {-4, -2, 0, 2, 4}^2, row by row."""
    v = np.arange(-4.0, 5.0, 2.0)
    return np.stack(np.meshgrid(v, v, indexing="ij"), axis=-1).reshape(-1, 2)


def mixture(modes: np.ndarray, std: float, spec: str, n: int = N_POINTS, seed: int = POINTS_SEED) -> Dataset:
    """A fixed sample of an equal-weight isotropic Gaussian mixture.

    Every mode gets ``n // M`` or ``n // M + 1`` points (assigned in a seeded random order), each
    point ``mode + std * N(0, I)``.

    Parameters
    ----------
    modes : (M, 2) float
        Component means, in data units.
    std : float
        Standard deviation of every component, in data units.

    Returns
    -------
    Dataset
        x (n, 2) float32; y (n,) int64 mode index; ``info.modes`` and ``info.mode_std`` set.
    """
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % len(modes)).astype(np.int64)
    x = (modes[y] + std * rng.standard_normal((n, 2))).astype(np.float32)
    names = tuple(f"mode {k}" for k in range(len(modes)))
    centres = tuple((float(a), float(b)) for a, b in modes)
    return array_dataset(spec, x, y, names, modes=centres, mode_std=float(std))


def load_ring(spec: str = "ring") -> Dataset:
    """8 Gaussians on the unit circle, std :data:`RING_STD` (the 2-D ring of Lin, Khetan, Fanti
    and Oh, 2018, PacGAN, after Metz et al., 2017, unrolled GANs)."""
    return mixture(ring_modes(), RING_STD, spec)


def load_grid(spec: str = "grid") -> Dataset:
    """25 Gaussians at {-4, -2, 0, 2, 4}^2, std :data:`GRID_STD` (the 2-D grid of Lin, Khetan,
    Fanti and Oh, 2018, PacGAN)."""
    return mixture(grid_modes(), GRID_STD, spec)
