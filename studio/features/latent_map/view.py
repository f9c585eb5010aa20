"""The Map tab: the latent space in 2-D (PCA or t-SNE), coloured by label or factor; hover, click, draw, lasso.

Modes (the buttons above the map): "Click" decodes the clicked point into Explore; "Draw path" turns a
drag into a keyframed interpolation; "Lasso A" and "Lasso B" select two groups of held-out images for an
attribute direction. Beside the map: the hovered image, and a generated image's nearest training examples.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup, QCheckBox, QComboBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout,
    QWidget,
)

from studio.widgets import BACKGROUND
from studio.widgets.basic import ImageView, JobProgress, off_note
from studio.widgets.images import grid

#: The map's modes and their buttons.
MODES = {"click": "Click: decode", "path": "Draw path", "lasso-a": "Lasso group A", "lasso-b": "Lasso group B"}
#: Pens of the strokes drawn, by mode.
STROKE_PENS = {"path": (255, 210, 80), "lasso-a": (120, 220, 120), "lasso-b": (230, 120, 220)}


class _MapBox(pg.ViewBox):
    """A view box that pans and zooms, except in a drawing mode, where a drag draws a stroke.

    Signals
    -------
    stroke_changed(object), stroke_finished(object)
        (P, 2) float64 map positions of the stroke so far / at the end of the drag.
    """

    stroke_changed = Signal(object)
    stroke_finished = Signal(object)

    def __init__(self) -> None:
        super().__init__(enableMenu=False)
        self.mode = "click"
        self._stroke: list[tuple[float, float]] = []

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: ANN001, N802 - pyqtgraph override
        if self.mode == "click" or ev.button() != Qt.MouseButton.LeftButton:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        p = self.mapSceneToView(ev.scenePos())
        if ev.isStart():
            start = self.mapSceneToView(ev.buttonDownScenePos())
            self._stroke = [(start.x(), start.y())]
        self._stroke.append((p.x(), p.y()))
        stroke = np.asarray(self._stroke, np.float64)
        if ev.isFinish():
            self.stroke_finished.emit(stroke)
        else:
            self.stroke_changed.emit(stroke)


class MapView(QWidget):
    """The map, its controls, the hovered image and the nearest training examples.

    Signals
    -------
    compute_requested(str method, int n, float perplexity)
    clicked(float x, float y, float radius)
        A click in "click" mode, in map units, with the pick radius.
    hovered(float x, float y, float radius)
    stroke_finished(str mode, object)
        A drawn path or lasso, (P, 2) map positions.
    colour_changed(str)
    nearest_requested()
    """

    compute_requested = Signal(str, int, float)
    clicked = Signal(float, float, float)
    hovered = Signal(float, float, float)
    stroke_finished = Signal(str, object)
    colour_changed = Signal(str)
    nearest_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.note = off_note("Build or open a model with a latent to map it")
        self.method_combo = QComboBox()
        self.method_combo.addItem("PCA", "pca")
        self.method_combo.addItem("t-SNE", "tsne")
        self.method_combo.setToolTip("The top two principal components (instant, linear), or t-SNE (van der Maaten "
                                     "& Hinton 2008: neighbours stay together; computed in the worker)")
        self.n_spin = QSpinBox()
        self.n_spin.setRange(50, 5000)
        self.n_spin.setSingleStep(250)
        self.n_spin.setValue(1000)
        self.n_spin.setToolTip("Held-out images encoded (or prior draws for a model without an encoder)")
        self.perplexity = QSpinBox()
        self.perplexity.setRange(5, 100)
        self.perplexity.setValue(30)
        self.perplexity.setToolTip("t-SNE's perplexity: about how many neighbours each point keeps close")
        self.colour_combo = QComboBox()
        self.colour_combo.setToolTip("Colour the points by their class or a ground-truth factor")
        self.compute_button = QPushButton("Compute map")
        self.follow = QCheckBox("follow training")
        self.follow.setToolTip("Map the same images again as the weights change (t-SNE starts from the last "
                               "map, so points move rather than jump)")
        self.job = JobProgress()
        self.mode_buttons: dict[str, QPushButton] = {}
        self.modes = QButtonGroup(self)
        for key, text in MODES.items():
            b = QPushButton(text)
            b.setCheckable(True)
            self.modes.addButton(b)
            self.mode_buttons[key] = b
        self.mode_buttons["click"].setChecked(True)
        self.mode_buttons["path"].setToolTip("Drag a path over the map: it becomes the Interpolate tab's keyframes")
        self.status = QLabel("")
        self.legend = QLabel("")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)

        self.box = _MapBox()
        self.plot = pg.PlotWidget(viewBox=self.box, background=BACKGROUND)
        self.plot.setMinimumSize(320, 280)
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.scatter = pg.ScatterPlotItem(size=6, pen=None)
        self.plot.addItem(self.scatter)
        self.marker = pg.ScatterPlotItem(size=16, symbol="star", pen=pg.mkPen("w"), brush=pg.mkBrush(255, 60, 60))
        self.plot.addItem(self.marker)
        self.path_curve = pg.PlotCurveItem(pen=pg.mkPen(255, 210, 80, width=2))
        self.plot.addItem(self.path_curve)
        self.stroke = pg.PlotCurveItem(pen=pg.mkPen(255, 255, 255, width=1))
        self.plot.addItem(self.stroke)
        self.groups = {k: pg.ScatterPlotItem(size=9, pen=pg.mkPen(*STROKE_PENS[k], width=2), brush=None)
                       for k in ("lasso-a", "lasso-b")}
        for item in self.groups.values():
            self.plot.addItem(item)

        self.hover_view = ImageView("hover over a point")
        self.pixel_view = ImageView("nearest in pixel space")
        self.latent_view = ImageView("nearest in latent space")
        self.query_view = ImageView("the Explore image")
        self.nearest_button = QPushButton("Nearest training examples")
        self.nearest_button.setToolTip("The training images nearest the Explore point's image, in pixels and in z: "
                                       "is the model generating or remembering?")

        controls = QHBoxLayout()
        for w in (self.method_combo, QLabel("points"), self.n_spin, QLabel("perplexity"), self.perplexity,
                  QLabel("colour"), self.colour_combo, self.compute_button, self.follow):
            controls.addWidget(w)
        controls.addStretch(1)
        modes = QHBoxLayout()
        for b in self.mode_buttons.values():
            modes.addWidget(b)
        modes.addWidget(self.status, 1)
        side = QVBoxLayout()
        side.addWidget(self.hover_view, 1)
        near = QGroupBox("Memorisation check")
        ng = QGridLayout(near)
        ng.addWidget(self.nearest_button, 0, 0, 1, 2)
        ng.addWidget(self.query_view, 1, 0)
        ng.addWidget(self.pixel_view, 1, 1)
        ng.addWidget(self.latent_view, 2, 0, 1, 2)
        side.addWidget(near, 2)
        body = QHBoxLayout()
        plot_col = QVBoxLayout()
        plot_col.addWidget(self.plot, 1)
        plot_col.addWidget(self.legend)
        body.addLayout(plot_col, 3)
        body.addLayout(side, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addLayout(controls)
        layout.addWidget(self.job)
        layout.addLayout(modes)
        layout.addLayout(body, 1)

        self.compute_button.clicked.connect(lambda: self.compute_requested.emit(
            self.method_combo.currentData(), self.n_spin.value(), float(self.perplexity.value())))
        self.colour_combo.currentTextChanged.connect(lambda t: t and self.colour_changed.emit(t))
        self.modes.buttonClicked.connect(lambda _b: self._mode_changed())
        self.nearest_button.clicked.connect(self.nearest_requested)
        self.box.stroke_changed.connect(lambda s: self.stroke.setData(s[:, 0], s[:, 1]))
        self.box.stroke_finished.connect(self._stroke_done)
        scene = self.plot.scene()
        scene.sigMouseClicked.connect(self._scene_clicked)
        scene.sigMouseMoved.connect(self._scene_moved)
        self.set_enabled("Build or open a model with a latent to map it")

    # -- modes and mouse ---------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return next(k for k, b in self.mode_buttons.items() if b.isChecked())

    def set_mode(self, mode: str) -> None:
        """Switch to ``mode`` (a key of :data:`MODES`)."""
        self.mode_buttons[mode].setChecked(True)
        self._mode_changed()

    def _mode_changed(self) -> None:
        self.box.mode = self.mode
        self.stroke.setPen(pg.mkPen(*STROKE_PENS.get(self.mode, (255, 255, 255)), width=2))
        self.box.setMouseEnabled(x=self.mode == "click", y=self.mode == "click")

    def radius(self) -> float:
        """The pick radius in map units: 2% of the visible width."""
        (x0, x1), _ = self.box.viewRange()
        return 0.02 * abs(x1 - x0)

    def _scene_clicked(self, ev) -> None:  # noqa: ANN001 - a pyqtgraph MouseClickEvent
        if self.mode != "click" or ev.button() != Qt.MouseButton.LeftButton or ev.double():
            return
        if not self.box.sceneBoundingRect().contains(ev.scenePos()):
            return
        p = self.box.mapSceneToView(ev.scenePos())
        self.clicked.emit(p.x(), p.y(), self.radius())

    def _scene_moved(self, pos: QPointF) -> None:
        if self.box.sceneBoundingRect().contains(pos):
            p = self.box.mapSceneToView(pos)
            self.hovered.emit(p.x(), p.y(), self.radius())

    def _stroke_done(self, stroke: np.ndarray) -> None:
        self.stroke.setData([], [])
        self.stroke_finished.emit(self.mode, stroke)

    def scene_pos_of(self, x: float, y: float) -> QPoint:
        """Where map point (x, y) is in the plot's viewport, in pixels (for tests and tooltips)."""
        return self.plot.mapFromScene(self.box.mapViewToScene(QPointF(x, y)))

    # -- state shown -------------------------------------------------------------------------------
    def set_enabled(self, reason: str) -> None:
        on = not reason
        self.note.setText(reason)
        self.note.setVisible(bool(reason))
        for w in (self.compute_button, self.nearest_button, *self.mode_buttons.values()):
            w.setEnabled(on)

    def set_points(self, xy: np.ndarray, colours: list[tuple[int, int, int]], fit: bool = True) -> None:
        """Draw the map: (N, 2) positions, one RGB colour each; ``fit``: zoom to them (not while following training)."""
        brushes = [pg.mkBrush(*c, 200) for c in colours]
        self.scatter.setData(x=xy[:, 0], y=xy[:, 1], brush=brushes)
        if fit:
            self.box.autoRange(padding=0.05)

    def set_legend(self, entries: list[tuple[str, tuple[int, int, int]]]) -> None:
        """What the colours mean: (text, RGB) pairs shown under the map."""
        self.legend.setText("&nbsp; ".join(
            f'<span style="color: rgb({r},{g},{b})">&#9679;</span>&nbsp;{html.escape(t)}' for t, (r, g, b) in entries))

    def set_colour_options(self, options: list[str]) -> None:
        self.colour_combo.blockSignals(True)
        self.colour_combo.clear()
        self.colour_combo.addItems(options)
        self.colour_combo.blockSignals(False)

    def set_marker(self, xy: np.ndarray | None) -> None:
        """The current point (2,) on the map, or none."""
        if xy is None:
            self.marker.setData([], [])
        else:
            self.marker.setData([float(xy[0])], [float(xy[1])])

    def set_path(self, xy: np.ndarray | None) -> None:
        """The interpolation path (K, 2) on the map, or none."""
        if xy is None or len(xy) < 2:
            self.path_curve.setData([], [])
        else:
            self.path_curve.setData(xy[:, 0], xy[:, 1])

    def set_group(self, mode: str, xy: np.ndarray) -> None:
        """Ring the points of group ``mode`` ("lasso-a", "lasso-b")."""
        self.groups[mode].setData(x=xy[:, 0], y=xy[:, 1]) if len(xy) else self.groups[mode].setData([], [])

    def set_nearest(self, query: np.ndarray, pixel: np.ndarray, pixel_d: np.ndarray, latent: np.ndarray | None,
                    latent_d: np.ndarray | None, n: int) -> None:
        """The query image and its nearest training images (k, C, H, W) with their distances."""
        self.query_view.set_image(query[0])
        self.query_view.set_title("the Explore image")
        self.pixel_view.set_image(grid(pixel, ncols=len(pixel)))
        self.pixel_view.set_title(f"pixels: nearest {pixel_d[0]:.2f} ... {pixel_d[-1]:.2f} (of {n} training images)")
        if latent is None:
            self.latent_view.clear()
            self.latent_view.set_title("latent space: this model has no encoder")
        else:
            self.latent_view.set_image(grid(latent, ncols=len(latent)))
            self.latent_view.set_title(f"z: nearest {latent_d[0]:.2f} ... {latent_d[-1]:.2f}")
