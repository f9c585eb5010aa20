"""The Traversal tab's view: the grid of a latent traversal and its controls (base, steps, range, exports)."""

from __future__ import annotations


import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtGui import QFontMetrics, QPainter
from PySide6.QtWidgets import (
    QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget,
)

from studio.widgets.basic import JobProgress
from studio.features.traversal.state import BASES, PAD, traversal_picture
from studio.widgets.images import to_display
from studio.widgets.basic import BACKGROUND

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
