"""dSprites-style 2-D shapes with known factors of variation, drawn by the project, generated lazily.

The factors and their values follow dSprites (Matthey, Higgins, Hassabis and Lerchner, 2017,
"dSprites: Disentanglement testing Sprites dataset", used by Higgins et al., 2017, beta-VAE):
shape (square, ellipse, heart), scale ``linspace(0.5, 1, 6)``, orientation ``linspace(0, 2 pi, 40)``
(so, as in dSprites, orientations 0 and 2 pi draw the same image, and the square's and ellipse's
symmetries repeat images too), x and y ``linspace(0, 1, 32)``. Index ``i`` decodes to factors in
mixed radix, shape slowest and y fastest, like dSprites' ``latents_classes`` (without its
constant colour). Images are binary, white on black, 1 channel.

Drawing: the 720 centred sprites (3 shapes x 6 scales x 40 orientations) are rasterised once at
start-up (numpy, one sample at each pixel centre, no anti-aliasing) at a working resolution
``R = k * S >= 64`` (``k = ceil(64 / S)``), where a step of x or y moves the sprite by at least one
pixel. :meth:`ShapesDataset.get` pastes the sprites at their integer positions and, for
``S < 64``, averages k x k blocks and thresholds at 1/2, so a smaller image is a binary version of
the larger drawing. A sprite's bounding circle at scale 1 has radius ``R // 4`` and every position
keeps the whole sprite inside the frame.
"""

from __future__ import annotations

import math

import numpy as np

from engines.data.base import DataInfo, Dataset, split_indices
from engines.shared.errors import DataError

SHAPE_NAMES = ("square", "ellipse", "heart")
FACTOR_NAMES = ("shape", "scale", "orientation", "x", "y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
#: Factor values, as in dSprites: scale (unitless), orientation (radians), x and y (fraction of the range).
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2.0 * math.pi, 40)
POSITIONS = np.linspace(0.0, 1.0, 32)
N_SHAPES = int(np.prod(FACTOR_SIZES))  # 737,280

# The heart (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0 fits a circle of radius 1.25 centred at (0, 0.25).
_HEART_RADIUS, _HEART_CENTRE = 1.25, 0.25


def render_sprites(radius: int) -> np.ndarray:
    """The 720 centred sprites.

    Parameters
    ----------
    radius : int
        Radius in pixels of each shape's bounding circle at scale 1.

    Returns
    -------
    (3, 6, 40, P, P) bool, P = 2 * radius + 1, the shape's centre at pixel (radius, radius);
    orientation turns the shape counter-clockwise as seen on screen (rows grow downwards).
    """
    d = np.arange(-radius, radius + 1, dtype=np.float64)
    u, v = d[None, :], -d[:, None]  # pixel centres, x to the right and y up
    theta = ORIENTATIONS[None, :, None, None]
    r = (SCALES * radius)[:, None, None, None]
    # Rounded so that 0 and 2 pi (and the quarter turns) give exactly the same drawing.
    cos, sin = np.round(np.cos(theta), 12), np.round(np.sin(theta), 12)
    # Rotating the point by -theta rotates the shape by +theta.
    ur = (u * cos + v * sin) / r
    vr = (-u * sin + v * cos) / r
    square = np.maximum(np.abs(ur), np.abs(vr)) <= 1.0 / math.sqrt(2.0)
    ellipse = ur**2 + (vr / 0.5) ** 2 <= 1.0
    hx, hy = ur * _HEART_RADIUS, vr * _HEART_RADIUS + _HEART_CENTRE
    heart = (hx**2 + hy**2 - 1.0) ** 3 - hx**2 * hy**3 <= 0.0
    return np.stack([square, ellipse, heart])


class ShapesDataset(Dataset):
    """The dSprites factor grid drawn lazily: 737,280 images, 1 x S x S, never all held at once.

    Parameters
    ----------
    size : int
        Side S of the images in pixels, 8..64 (64 is dSprites' own size).
    spec : str
        Spec recorded in :attr:`info`.

    Attributes
    ----------
    info : DataInfo
        ``class_names`` are the shapes; ``factor_names`` (shape, scale, orientation, x, y) with
        ``factor_sizes`` (3, 6, 40, 32, 32).
    x, y, factors : None
        Lazy: use :meth:`get`, :meth:`labels` and :meth:`factor_values`.

    Raises
    ------
    DataError
        A size outside 8..64.
    """

    def __init__(self, size: int = 64, spec: str = "shapes") -> None:
        if not 8 <= size <= 64:
            raise DataError(f"{spec}: image size {size} is outside 8..64")
        train, test = split_indices(N_SHAPES)
        info = DataInfo(
            spec=spec, kind="image", shape=(1, size, size), size=N_SHAPES, n_train=len(train), n_test=len(test),
            class_names=SHAPE_NAMES, factor_names=FACTOR_NAMES, factor_sizes=FACTOR_SIZES,
        )
        super().__init__(info=info, train_indices=train, test_indices=test)
        self.size = size
        self.pool = math.ceil(64 / size)  # k
        self.resolution = size * self.pool  # R
        self.radius = self.resolution // 4
        span = self.resolution - 1 - 2 * self.radius
        #: (32,) int64 pixel centre of each x (column) and y (row) value at the working resolution.
        self.centres = np.round(self.radius + POSITIONS * span).astype(np.int64)
        self.sprites = render_sprites(self.radius)
        p = 2 * self.radius + 1
        self._offsets = np.arange(p, dtype=np.int64) - self.radius

    def _check(self, indices: np.ndarray) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.ndim != 1 or not (np.issubdtype(idx.dtype, np.integer) or idx.size == 0):
            raise IndexError(f"{self.info.spec}: indices must be a 1-D integer array, got {idx.dtype} {idx.shape}")
        idx = idx.astype(np.int64, copy=False)
        if idx.size and (idx.min() < 0 or idx.max() >= N_SHAPES):
            raise IndexError(f"{self.info.spec}: indices must lie in [0, {N_SHAPES})")
        return idx

    def factor_values(self, indices: np.ndarray) -> np.ndarray:
        """(B, 5) int64 factor classes (shape, scale, orientation, x, y) of the given (B,) indices."""
        idx = self._check(indices)
        return np.stack(np.unravel_index(idx, FACTOR_SIZES), axis=1).astype(np.int64)

    def labels(self, indices: np.ndarray) -> np.ndarray:
        """(B,) int64 shape index (0 square, 1 ellipse, 2 heart) of the given indices."""
        return self._check(indices) // (N_SHAPES // FACTOR_SIZES[0])

    @staticmethod
    def index_of(factors: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`factor_values`.

        Parameters
        ----------
        factors : (B, 5) int
            Factor classes, column k in [0, factor_sizes[k]).

        Returns
        -------
        (B,) int64 indices.

        Raises
        ------
        DataError
            A wrong shape or a value out of range.
        """
        f = np.asarray(factors)
        if f.ndim != 2 or f.shape[1] != len(FACTOR_SIZES) or not np.issubdtype(f.dtype, np.integer):
            raise DataError(f"shapes: factors must be (B, 5) integers, got {f.dtype} {f.shape}")
        if f.size and ((f < 0).any() or (f >= np.asarray(FACTOR_SIZES)).any()):
            raise DataError(f"shapes: factor values out of range; sizes are {FACTOR_SIZES}")
        return np.ravel_multi_index(tuple(f.T.astype(np.int64)), FACTOR_SIZES).astype(np.int64)

    def get(self, indices: np.ndarray) -> np.ndarray:
        """Draw the images of the given indices.

        Parameters
        ----------
        indices : (B,) int
            Indices in [0, 737280).

        Returns
        -------
        (B, 1, S, S) float32, values 0 (background) and 1 (shape). Deterministic by index.

        Raises
        ------
        IndexError
            Indices out of range or not a 1-D integer array.
        """
        f = self.factor_values(indices)
        b, r, k = len(f), self.resolution, self.pool
        canvas = np.zeros((b, r, r), dtype=bool)
        if b:
            rows = self.centres[f[:, 4], None] + self._offsets  # (B, P)
            cols = self.centres[f[:, 3], None] + self._offsets
            canvas[np.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]] = (
                self.sprites[f[:, 0], f[:, 1], f[:, 2]]
            )
        if k > 1:  # count the pixels drawn in each k x k block (k * k <= 64 fits a uint8)
            s = self.size
            cells = canvas.view(np.uint8).reshape(b, s, k, r)
            rows_sum = cells[:, :, 0].copy()
            for i in range(1, k):
                rows_sum += cells[:, :, i]
            blocks = rows_sum.reshape(b, s, s, k)
            counts = blocks[..., 0].copy()
            for i in range(1, k):
                counts += blocks[..., i]
            canvas = counts >= (k * k + 1) // 2
        return canvas[:, None].astype(np.float32)
