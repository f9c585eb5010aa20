"""The Traversal view: each latent dimension swept over a range while the others stay at a base z.

A traversal grid (Higgins et al., 2017, "beta-VAE: Learning basic visual concepts with a
constrained variational framework", figures of latent traversals) shows one row per latent
dimension and one column per value; a disentangled dimension changes one factor along its row.
The grid comes from the worker as a :class:`~engines.shared.protocol.Traversed` event; this module
draws it and writes it to PNG, with every cell's latent in a CSV beside it (numpy and Pillow,
no torch). GIF and MP4 animations of the sweep
(one frame per value, every row in it) are rendered by the worker
(:class:`~engines.shared.protocol.Export` of kind "traversal", :class:`TraversalExportController`), so
``latent-studio render`` reproduces them from their sidecar.
"""

from __future__ import annotations

import csv

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PIL import Image, ImageDraw, ImageFont
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QFontMetrics, QPainter
from PySide6.QtWidgets import (
    QComboBox, QDoubleSpinBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget,
)

from engines.shared.imaging import plot_points, to_uint8, tile
from studio.widgets.images import grid, to_display
from studio.panels.interpolate import JobProgress
from studio.widgets.basic import BACKGROUND

#: Choices of the base latent, in the order of the combo box.
BASES = ("prior mean", "current sliders", "held-out #")
#: Pixels between tiles in the grid (shown and exported).
PAD = 1


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


class TraversalView(QWidget):
    """The traversal grid with its controls: base latent, number of steps and range.

    Rows are latent dimensions (in the order the window asks for: the Explore panel's, most
    informative first), labelled on the left axis; columns are values from ``-range`` to
    ``+range``, labelled on the bottom axis.

    Signals
    -------
    controls_changed()
        The base, the held-out index, the steps or the range changed: ask for a new grid.
    export_requested()
        "Export PNG + CSV..." pressed.
    animation_requested(str)
        "GIF..." ("gif") or "MP4..." ("mp4") pressed.

    Attributes
    ----------
    job : JobProgress
        Progress and Cancel of the animation the worker is rendering.
    """

    controls_changed = Signal()
    export_requested = Signal()
    animation_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.base_combo = QComboBox()
        self.base_combo.addItems(BASES)
        self.base_combo.setToolTip("The latent every row starts from: the prior's centre, the Explore sliders, "
                                   "or the posterior mean of a held-out example")
        self.index_spin = QSpinBox()
        self.index_spin.setRange(0, 0)
        self.index_spin.setEnabled(False)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(2, 25)
        self.steps_spin.setValue(9)
        self.steps_spin.setPrefix("steps ")
        self.range_spin = QDoubleSpinBox()
        self.range_spin.setRange(0.5, 10.0)
        self.range_spin.setSingleStep(0.5)
        self.range_spin.setValue(3.0)
        self.range_spin.setPrefix("\u00b1")
        self.range_spin.setToolTip("Each row sweeps its dimension from -range to +range")
        self.export_button = QPushButton("Export PNG + CSV...")
        self.export_button.setToolTip("The grid with its row labels and values as PNG, and beside it a CSV "
                                      "with every cell's latent")
        self.export_button.setEnabled(False)
        self.gif_button = QPushButton("GIF...")
        self.mp4_button = QPushButton("MP4...")
        self.job = JobProgress()
        self.title = QLabel("Traversal: waiting for a model")
        self.title.setStyleSheet("color: #a0a0a0")
        controls = QHBoxLayout()
        controls.addWidget(QLabel("base"))
        controls.addWidget(self.base_combo)
        controls.addWidget(self.index_spin)
        controls.addWidget(self.steps_spin)
        controls.addWidget(self.range_spin)
        controls.addStretch(1)
        controls.addWidget(self.export_button)
        controls.addWidget(self.gif_button)
        controls.addWidget(self.mp4_button)
        self.plot = pg.PlotWidget(background=BACKGROUND)
        self.plot.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.plot.setMouseEnabled(False, False)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.invertY(True)
        self.plot.setAspectLocked(True)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.item)
        self.paths: list[pg.PlotDataItem] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(controls)
        layout.addWidget(self.title)
        layout.addWidget(self.job)
        layout.addWidget(self.plot, 1)
        self.shown = None
        self.labels: list[str] = []
        self.base_combo.currentIndexChanged.connect(self._base_changed)
        for spin in (self.index_spin, self.steps_spin):
            spin.valueChanged.connect(lambda _v: self.controls_changed.emit())
        self.range_spin.valueChanged.connect(lambda _v: self.controls_changed.emit())
        self.export_button.clicked.connect(self.export_requested.emit)
        self.gif_button.clicked.connect(lambda: self.animation_requested.emit("gif"))
        self.mp4_button.clicked.connect(lambda: self.animation_requested.emit("mp4"))

    # -- controls --------------------------------------------------------------------------------
    def base(self) -> str:
        """``"prior"``, ``"sliders"`` or ``"example"``."""
        return ("prior", "sliders", "example")[self.base_combo.currentIndex()]

    def set_base(self, base: str, index: int | None = None) -> None:
        """Choose the base (``"prior"``, ``"sliders"`` or ``"example"``, with a held-out ``index``)."""
        if index is not None:
            self.index_spin.setValue(int(index))
        self.base_combo.setCurrentIndex(("prior", "sliders", "example").index(base))

    def params(self) -> dict:
        """The request the controls describe: base, index, steps, low, high."""
        r = float(self.range_spin.value())
        return {"base": self.base(), "index": int(self.index_spin.value()), "steps": int(self.steps_spin.value()),
                "low": -r, "high": r}

    def set_encoder(self, has_encoder: bool, n_test: int) -> None:
        """Offer "held-out #" only for a model with an encoder and a held-out split of ``n_test`` examples."""
        ok = has_encoder and n_test > 0
        self.index_spin.setRange(0, max(0, n_test - 1))
        item = self.base_combo.model().item(BASES.index("held-out #"))
        item.setEnabled(ok)
        if not ok and self.base() == "example":
            self.base_combo.setCurrentIndex(0)
        self.index_spin.setEnabled(ok and self.base() == "example")

    def _base_changed(self, _i: int) -> None:
        self.index_spin.setEnabled(self.base() == "example")
        self.controls_changed.emit()

    # -- the grid --------------------------------------------------------------------------------
    def clear(self, message: str = "Traversal: waiting for the first grid") -> None:
        """Forget the grid shown (a new model)."""
        self.shown, self.labels = None, []
        self.item.clear()
        for path in self.paths:
            self.plot.removeItem(path)
        self.paths = []
        self.export_button.setEnabled(False)
        self.title.setText(message)

    def set_traversal(self, event, labels: list[str]) -> None:
        """Show a :class:`~engines.shared.protocol.Traversed`: images (R, S, C, H, W) or points (R, S, 2).

        Parameters
        ----------
        event : Traversed
        labels : list of str
            One label per row (``event.dims`` order).

        Raises
        ------
        ValueError
            If ``labels`` and the rows disagree or the images have an unknown shape.
        """
        images = np.asarray(event.images, np.float32)
        if len(labels) != images.shape[0] or len(event.values) != images.shape[1]:
            raise ValueError(f"{len(labels)} labels for a traversal of shape {images.shape}")
        self.shown, self.labels = event, list(labels)
        values = np.asarray(event.values, np.float64)
        left, bottom = self.plot.getAxis("left"), self.plot.getAxis("bottom")
        for path in self.paths:
            self.plot.removeItem(path)
        self.paths = []
        if images.ndim == 3:  # 2-D points: each row is a path through the plane
            self.item.clear()
            self.plot.invertY(False)
            colours = [pg.intColor(i, hues=max(2, len(labels))) for i in range(len(labels))]
            for row, label, colour in zip(images, labels, colours):
                path = pg.PlotDataItem(row[:, 0], row[:, 1], pen=pg.mkPen(colour, width=2), symbol="o",
                                       symbolSize=5, symbolBrush=colour, name=label)
                self.plot.addItem(path)
                self.paths.append(path)
            left.setTicks(None)
            left.setWidth(None)
            bottom.setTicks(None)
            self.plot.autoRange()
        else:
            self.plot.invertY(True)
            picture = to_display(traversal_picture(images))
            self.item.setImage(picture, autoLevels=False, levels=(0.0, 1.0))
            h, w = images.shape[3] + PAD, images.shape[4] + PAD
            left.setTicks([[((r + 0.5) * h - PAD, text) for r, text in enumerate(labels)]])
            metrics = QFontMetrics(left.style.get("tickFont") or self.plot.font())
            left.setWidth(max(metrics.horizontalAdvance(t) for t in labels) + 16)
            bottom.setTicks([[((c + 0.5) * w - PAD, f"{v:+.1f}") for c, v in enumerate(values)]])
            self.plot.setRange(xRange=(0, picture.shape[1]), yRange=(0, picture.shape[0]), padding=0.01)
        base = {"prior": "prior mean", "sliders": "current sliders", "example": f"held-out #{self.index_spin.value()}"}
        self.title.setText(f"Traversal around the {base[self.base()]} at step {event.step:,}: "
                           f"{len(labels)} dimensions \u00d7 {len(values)} values in [{values[0]:+.1f}, {values[-1]:+.1f}]")
        self.export_button.setEnabled(True)

    def picture(self) -> np.ndarray | None:
        """The traversal shown: (R, S, C, H, W) or (R, S, 2), or None."""
        return None if self.shown is None else np.asarray(self.shown.images, np.float32)

class TraversalExportController(QObject):
    """GIF and MP4 of the Traversal tab's sweep, rendered by the worker with a sidecar.

    Parameters
    ----------
    window : MainWindow
        Gives the traversal view and its controls, the rows (``traversal_dims``), the Explore
        sliders (base "current sliders") and the window's :class:`~studio.interpolation.WorkerExports`
        (``window.interpolation.exports``).
    """

    def __init__(self, window) -> None:  # noqa: ANN001 - MainWindow (studio.shell.window imports this module)
        super().__init__(window)
        self.window = window
        view = window.traversal_view
        view.animation_requested.connect(self.ask_export)
        view.job.cancel_requested.connect(lambda rid: window.interpolation.exports.cancel(rid))

    def latents(self) -> dict:
        """The sidecar latents of the sweep the controls describe: z or index, dims, steps, low, high.

        Raises
        ------
        ValueError
            If there is no continuous dimension to sweep (no model yet).
        """
        w = self.window
        dims = w.traversal_dims()
        if not dims:
            raise ValueError("no latent dimension to traverse: load or configure a model first")
        p = w.traversal_view.params()
        z = [float(v) for v in w.explore_panel.z()] if p["base"] == "sliders" else None
        return {"z": z, "index": p["index"] if p["base"] == "example" else None, "dims": dims,
                "steps": p["steps"], "low": p["low"], "high": p["high"]}

    def export(self, path: str | Path, fps: int = 4, size: int = 512) -> int:
        """Ask the worker for an animation of the sweep at ``path`` (.gif or .mp4); the request id (0: none).

        Raises
        ------
        ValueError
            Another suffix, or no model.
        """
        path = Path(path)
        if path.suffix.lower() not in (".gif", ".mp4"):
            raise ValueError(f"{path}: export a traversal animation to .gif or .mp4")
        if self.window.client.state not in ("ready", "training", "paused"):
            raise ValueError("no model is loaded")
        settings = {"fps": int(fps), "size": int(size), "resample": "nearest", "labels": True}
        return self.window.interpolation.exports.send("traversal", path, self.latents(), settings,
                                                      self.window.traversal_view.job)

    def ask_export(self, kind: str) -> None:
        """Ask for a file name and export ("gif" or "mp4")."""
        suffix = ".mp4" if kind == "mp4" else ".gif"
        path, _ = QFileDialog.getSaveFileName(self.window, "Export traversal animation", f"traversal{suffix}",
                                              "MP4 video (*.mp4)" if kind == "mp4" else "GIF (*.gif)")
        if not path:
            return
        try:
            self.export(Path(path).with_suffix(suffix))
        except ValueError as exc:
            self.window.statusBar().showMessage(str(exc), 5000)
