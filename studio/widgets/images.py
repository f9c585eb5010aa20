"""Model outputs as pictures for the window: display arrays and PNG exports (numpy and Pillow only).

Grids and PNG files come from :mod:`engines.shared.imaging` (numpy and Pillow, no torch), so the window's
exports match the CLI's ``samples.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engines.shared.imaging import plot_points, save_png, tile

__all__ = ["to_display", "grid", "export_scale", "write_png", "points_picture"]


def to_display(image: np.ndarray) -> np.ndarray:
    """One (C, H, W) image in [0, 1] as the array an ``ImageItem`` shows (row-major).

    Parameters
    ----------
    image : (C, H, W) float array, C in {1, 3}; or (H, W)
        Values outside [0, 1] are clipped.

    Returns
    -------
    (H, W) float32 for grey, (H, W, 3) float32 for colour, in [0, 1].

    Raises
    ------
    ValueError
        If the shape is not one of those.
    """
    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 2:
        return np.clip(x, 0.0, 1.0)
    if x.ndim != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"expected a (1|3, H, W) image, got shape {x.shape}")
    x = np.clip(x, 0.0, 1.0)
    return x[0] if x.shape[0] == 1 else np.ascontiguousarray(np.moveaxis(x, 0, -1))


def grid(images: np.ndarray, ncols: int | None = None) -> np.ndarray:
    """Tile (N, C, H, W) images in [0, 1] into one (C, H', W') picture with 1-pixel grey gaps."""
    return tile(images, ncols=ncols, pad=1, pad_value=0.35)


def export_scale(shape: tuple[int, ...], target: int = 512) -> int:
    """Integer nearest-neighbour upscaling that brings the longest side near ``target`` pixels (at least 1)."""
    return max(1, int(target) // max(1, max(shape[-2:])))


def write_png(image: np.ndarray, path: str | Path, target: int = 512) -> Path:
    """Write a (C, H, W) image in [0, 1] to PNG, upscaled by an integer factor (nearest) to about ``target`` px.

    Raises
    ------
    ValueError
        If the image is not (1|3, H, W).
    OSError
        If the file cannot be written.
    """
    image = np.asarray(image, dtype=np.float32)
    return save_png(image, path, scale=export_scale(image.shape, target))


def points_picture(points: np.ndarray, modes: np.ndarray | None = None, size: int = 512) -> np.ndarray:
    """2-D points (N, 2), with optional mode centres (M, 2), drawn as a (3, size, size) picture in [0, 1]."""
    return plot_points(points, modes=modes, size=size)
