"""Turning model outputs into pictures: image grids and 2-D point plots (numpy and Pillow, no torch).

Shared by the CLI (``samples.png``) and the window's exports, so both write the same pictures.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] to uint8 (values outside are clipped).

    Parameters
    ----------
    images : (..., C, H, W) float array in [0, 1]

    Returns
    -------
    (..., H, W, C) uint8 array (channels last, as Pillow wants).
    """
    x = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    x = np.moveaxis(x, -3, -1)
    return (x * 255.0 + 0.5).astype(np.uint8)


def tile(images: np.ndarray, ncols: int | None = None, pad: int = 1, pad_value: float = 0.25) -> np.ndarray:
    """Lay out images in a grid.

    Parameters
    ----------
    images : (N, C, H, W) float array in [0, 1]
    ncols : int, optional
        Columns; by default the smallest square that holds N.
    pad : int
        Pixels between tiles.
    pad_value : float
        Grey level of the padding, in [0, 1].

    Returns
    -------
    (C, rows*(H+pad)-pad, ncols*(W+pad)-pad) float32 array in [0, 1].

    Raises
    ------
    ValueError
        If ``images`` is not 4-D or is empty.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"tile expects (N, C, H, W) images with N >= 1, got shape {images.shape}")
    n, c, h, w = images.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / ncols)
    out = np.full((c, rows * (h + pad) - pad, ncols * (w + pad) - pad), pad_value, np.float32)
    for i in range(n):
        r, k = divmod(i, ncols)
        out[:, r * (h + pad) : r * (h + pad) + h, k * (w + pad) : k * (w + pad) + w] = images[i]
    return out


def plot_points(
    points: np.ndarray,
    modes: np.ndarray | None = None,
    size: int = 256,
    extent: float | None = None,
) -> np.ndarray:
    """Render 2-D points (and optional mode centres) as a (3, size, size) float32 image in [0, 1].

    Points are white dots on black, modes red crosses; the view spans [-extent, extent] on both axes
    (by default a margin around the modes or the points).
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    ref = np.asarray(modes, dtype=np.float64).reshape(-1, 2) if modes is not None else pts
    if extent is None:
        finite = ref[np.isfinite(ref).all(axis=1)]
        extent = float(np.abs(finite).max()) * 1.25 + 0.25 if len(finite) else 1.0
    img = np.zeros((3, size, size), np.float32)

    def pix(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        col = ((p[:, 0] + extent) / (2 * extent) * (size - 1)).round()
        row = ((extent - p[:, 1]) / (2 * extent) * (size - 1)).round()
        ok = np.isfinite(col) & np.isfinite(row) & (col >= 0) & (col < size) & (row >= 0) & (row < size)
        return row[ok].astype(int), col[ok].astype(int)

    r, c = pix(pts)
    img[:, r, c] = 1.0
    if modes is not None:
        r, c = pix(np.asarray(modes, dtype=np.float64).reshape(-1, 2))
        for d in range(-3, 4):
            for rr, cc in ((r + d, c), (r, c + d)):
                ok = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size)
                img[0, rr[ok], cc[ok]] = 1.0
                img[1:, rr[ok], cc[ok]] = 0.0
    return img


def save_png(image: np.ndarray, path: str | Path, scale: int = 1) -> Path:
    """Write a (C, H, W) float image in [0, 1] (C = 1 or 3) to a PNG, upscaled by an integer factor (nearest).

    Raises
    ------
    ValueError
        If the image is not (C, H, W) with C in {1, 3} or ``scale`` < 1.
    OSError
        If the file cannot be written.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[0] not in (1, 3) or scale < 1:
        raise ValueError(f"save_png expects a (1|3, H, W) image and scale >= 1, got {image.shape}, scale {scale}")
    arr = to_uint8(image)
    pil = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.Resampling.NEAREST)
    path = Path(path)
    pil.save(path, format="PNG")
    return path
