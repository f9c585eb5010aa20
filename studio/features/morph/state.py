"""The Morph tab's Qt-free part: the A and B slots, and the style grid's latents and picture.

The style grid follows the figure of Zhu, Xu, Zhang, Shen and Wong (2020), "Semantically multi-modal
image synthesis" (GroupDNet, CVPR): rows keep a content latent's unchecked dimensions, columns give
the checked ones of a style latent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engines.shared.imaging import tile
from engines.shared.latent_np import morph


@dataclass
class MorphSlot:
    """Image A or B: its latent (D,), the image it was encoded from (C, H, W) if any, and where it came from."""

    z: np.ndarray | None = None
    image: np.ndarray | None = None
    label: str = "not set"


def style_grid_z(contents: np.ndarray, styles: np.ndarray, strengths: np.ndarray) -> np.ndarray:
    """The latents of a style grid: cell (r, c) keeps content r's unchecked dims and takes style c's checked ones.

    Parameters
    ----------
    contents : (R, D) float array
    styles : (K, D) float array
    strengths : (D,) float array in [0, 1]

    Returns
    -------
    (R, K, D) float32 array: ``morph(contents[r], styles[c], strengths)``.
    """
    c, s = np.asarray(contents, np.float32), np.asarray(styles, np.float32)
    if c.ndim != 2 or s.ndim != 2 or c.shape[1] != s.shape[1]:
        raise ValueError(f"style grid: contents {c.shape} and styles {s.shape} must be (R, D) and (K, D)")
    a = np.broadcast_to(c[:, None, :], (len(c), len(s), c.shape[1]))
    b = np.broadcast_to(s[None, :, :], a.shape)
    return morph(a, b, strengths)


def style_grid_picture(content_images: np.ndarray, style_images: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Lay out a style grid: the style images along the top, the content images down the left, the cells.

    Parameters
    ----------
    content_images : (R, C, H, W) float array in [0, 1]
    style_images : (K, C, H, W) float array in [0, 1]
    cells : (R * K, C, H, W) float array in [0, 1], row-major

    Returns
    -------
    (C, (R + 1) * (H + 1) - 1, (K + 1) * (W + 1) - 1) float32 in [0, 1]; the top-left tile is black and
    a 1-pixel grey border separates tiles.
    """
    ci, si, x = (np.asarray(a, np.float32) for a in (content_images, style_images, cells))
    r, k = len(ci), len(si)
    if x.shape[0] != r * k or ci.shape[1:] != si.shape[1:] or x.shape[1:] != ci.shape[1:]:
        raise ValueError(f"style grid: {x.shape[0]} cells for {r} contents x {k} styles of shape {ci.shape[1:]}")
    tiles = [np.zeros_like(si[0])] + list(si)
    for i in range(r):
        tiles += [ci[i]] + list(x[i * k : (i + 1) * k])
    return tile(np.stack(tiles), ncols=k + 1, pad=1, pad_value=0.35)
