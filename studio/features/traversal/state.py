"""The Traversal tab's Qt-free part: the rows it sweeps, the sweep's latents, and its pictures and files.

A traversal grid (Higgins et al., 2017, "beta-VAE: Learning basic visual concepts with a
constrained variational framework", figures of latent traversals) shows one row per latent
dimension and one column per value; a disentangled dimension changes one factor along its row.
The grid comes from the worker as a :class:`~engines.shared.protocol.Traversed` event; this module
draws it and writes it to PNG, with every cell's latent in a CSV beside it (numpy and Pillow,
no torch, no Qt).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from engines.shared.imaging import plot_points, tile, to_uint8
from studio.widgets.images import grid

#: Choices of the base latent, in the order of the combo box.
BASES = ("prior mean", "current sliders", "held-out #")
#: Pixels between tiles in the grid (shown and exported).
PAD = 1


@dataclass
class TraversalRows:
    """What the traversal sweeps: latent dimensions (in the Explore panel's order) and their labels.

    Attributes
    ----------
    dims : list of int
        Indices into z of the continuous dimensions, most informative first.
    labels : list of str
        One label per row ("z3: x (MI 0.71 nats)").
    z : (D,) float32 array
        The current slider point (the base "current sliders").
    """

    dims: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    z: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def latents(self, params: dict) -> dict:
        """The sidecar latents of the sweep ``params`` (the view's controls) describe: z or index, dims, steps, range.

        Raises
        ------
        ValueError
            If there is no continuous dimension to sweep (no model yet).
        """
        if not self.dims:
            raise ValueError("no latent dimension to traverse: load or configure a model first")
        z = [float(v) for v in self.z] if params["base"] == "sliders" else None
        return {"z": z, "index": params["index"] if params["base"] == "example" else None, "dims": list(self.dims),
                "steps": params["steps"], "low": params["low"], "high": params["high"]}


def traversal_picture(images: np.ndarray) -> np.ndarray:
    """Tile a traversal (R, S, C, H, W) in [0, 1] into one (C, R*(H+1)-1, S*(W+1)-1) picture, rows kept.

    Raises
    ------
    ValueError
        If ``images`` is not 5-D.
    """
    x = np.asarray(images, np.float32)
    if x.ndim != 5:
        raise ValueError(f"expected traversal images of shape (R, S, C, H, W), got {x.shape}")
    r, s = x.shape[:2]
    return grid(x.reshape((r * s,) + x.shape[2:]), ncols=s)


def labelled_traversal(images: np.ndarray, labels: list[str], values: np.ndarray, target: int = 768) -> Image.Image:
    """A traversal grid as a Pillow RGB image with row labels on the left and values above.

    Parameters
    ----------
    images : (R, S, C, H, W) float array in [0, 1], or (R, S, 2) points
        Points are drawn as one scatter plot (rows are not separable there) without labels.
    labels : list of str
        R row labels, e.g. ``"z3: x (MI 0.71)"``.
    values : (S,) array
        Column values (latent units).
    target : int
        Approximate width in pixels of the grid part (nearest-neighbour integer upscaling).

    Raises
    ------
    ValueError
        If the shapes do not agree.
    """
    x = np.asarray(images, np.float32)
    if x.ndim == 3 and x.shape[-1] == 2:
        return Image.fromarray(to_uint8(plot_points(x.reshape(-1, 2), size=target)))
    if x.ndim != 5 or len(labels) != x.shape[0] or len(values) != x.shape[1]:
        raise ValueError(f"traversal of shape {x.shape} does not match {len(labels)} labels and {len(values)} values")
    picture = to_uint8(tile(x.reshape((-1,) + x.shape[2:]), ncols=x.shape[1], pad=PAD, pad_value=0.35))
    scale = max(1, int(target) // max(1, picture.shape[1]))
    tiles = Image.fromarray(picture[..., 0] if picture.shape[-1] == 1 else picture).convert("RGB")
    tiles = tiles.resize((tiles.width * scale, tiles.height * scale), Image.Resampling.NEAREST)
    font = ImageFont.load_default()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_w = max([probe.textlength(t, font=font) for t in labels] + [0.0])
    left, top = int(text_w) + 12, 18
    out = Image.new("RGB", (tiles.width + left + 4, tiles.height + top + 4), (24, 24, 24))
    out.paste(tiles, (left, top))
    draw = ImageDraw.Draw(out)
    row_h = (x.shape[3] + PAD) * scale
    col_w = (x.shape[4] + PAD) * scale
    for r, text in enumerate(labels):
        draw.text((6, top + r * row_h + row_h // 2 - 6), text, fill=(230, 230, 230), font=font)
    for c, v in enumerate(np.asarray(values, np.float64)):
        label = f"{v:+.1f}"
        w = probe.textlength(label, font=font)
        draw.text((left + c * col_w + (col_w - w) / 2, 3), label, fill=(170, 170, 170), font=font)
    return out


def write_traversal_png(images: np.ndarray, labels: list[str], values: np.ndarray, path: str | Path) -> Path:
    """Write :func:`labelled_traversal` to ``path`` as PNG (call it off the GUI thread).

    Raises
    ------
    ValueError
        If the shapes do not agree.
    OSError
        If the file cannot be written.
    """
    path = Path(path)
    labelled_traversal(images, labels, values).save(path, format="PNG")
    return path


def write_traversal_csv(event, labels: list[str], path: str | Path) -> Path:
    """Write the latents behind a traversal grid to ``path`` as CSV, one line per cell (call it off the GUI thread).

    Columns: ``row``, ``column``, ``dim`` (the latent dimension the row sweeps), ``label`` (its
    Explore label, for example "z3: x (MI 0.71 nats)"), ``value`` (that dimension's value in the
    cell), then ``z0`` .. ``z{D-1}``: the whole latent decoded in that cell (the base with the row's
    dimension set to ``value``), so any cell can be decoded again. A 2-D points traversal adds the
    decoded ``x`` and ``y``.

    Parameters
    ----------
    event : Traversed
        ``dims`` (R,), ``values`` (S,), ``z`` (1, D) the base latent, ``images`` (R, S, ...).
    labels : list of str
        R row labels.

    Raises
    ------
    ValueError
        If the labels, dims, values and images disagree.
    OSError
        If the file cannot be written.
    """
    dims = [int(d) for d in event.dims]
    values = np.asarray(event.values, np.float64)
    images = np.asarray(event.images)
    base = np.asarray(event.z, np.float64).reshape(-1)
    if len(labels) != len(dims) or images.shape[:2] != (len(dims), len(values)):
        raise ValueError(f"{len(labels)} labels and {len(dims)} dims for a traversal of shape {images.shape}")
    points = images.ndim == 3 and images.shape[-1] == 2
    path = Path(path)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["row", "column", "dim", "label", "value", *(f"z{i}" for i in range(len(base))),
                         *(("x", "y") if points else ())])
        for r, (dim, label) in enumerate(zip(dims, labels)):
            for c, value in enumerate(values):
                z = base.copy()
                z[dim] = value
                out = [f"{v:.6g}" for v in images[r, c]] if points else []
                writer.writerow([r, c, dim, label, f"{value:.6g}", *(f"{v:.6g}" for v in z), *out])
    return path
