"""The loss plot: one pyqtgraph curve per loss term, redrawn on a timer from a :class:`LossHistory`."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget,
)

from engines.shared import protocol
from studio.features.losses.state import HIDDEN_BY_DEFAULT, LossTerms, measured_term, on_right_axis, shown_by_default
from studio.state import LossHistory, nice_ceiling, stable_range
from studio.widgets.basic import BACKGROUND, PALETTE, FpsCounter, TimeCursor

#: Seconds between loss-plot redraws while a slider is being dragged.
HELD_REDRAW_S = 1.0



__all__ = ["HIDDEN_BY_DEFAULT", "PALETTE", "LossPlotPanel", "LossTerms", "on_right_axis", "shown_by_default"]


class LossPlotPanel(QWidget):
    """Live loss curves with smoothing, log scale, term selection and hyperparameter-change markers.

    Each curve is created once, the first time its term appears, and updated with ``setData`` by a
    timer (``refresh_hz``) only when the history changed, with peak downsampling and clipping to
    the view (pyqtgraph's ``PlotSpeedTest`` and ``scrollingPlots`` examples). The view follows the
    data with ranges that change rarely (:func:`stable_range`; x grows to 1-2-5 steps), not with
    pyqtgraph's autorange, whose axis repaints on every redraw held the GUI thread long enough to
    delay slider images while training. Zooming or panning by hand stops the following; "Fit"
    resumes it.

    Parameters
    ----------
    history : LossHistory, optional
        The model drawn; a new one by default.
    refresh_hz : float
        Redraws per second at most.
    fps : FpsCounter, optional
        Ticked on every redraw.
    """

    def __init__(
        self, history: LossHistory | None = None, refresh_hz: float = 10.0, fps: FpsCounter | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.history = history if history is not None else LossHistory()
        self.fps = fps
        self.plot = pg.PlotWidget(background=BACKGROUND)
        self.time_cursor = TimeCursor(self.plot)
        self.plot.showGrid(y=True, alpha=0.15)  # an x grid too costs ~40% more per redraw (software raster)
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss")
        self.right = pg.ViewBox()  # second y axis for the KL terms (pyqtgraph's MultiplePlotAxes example)
        item = self.plot.getPlotItem()
        item.showAxis("right")
        item.getAxis("right").hide()  # shown with the first KL curve (GANs have none)
        item.scene().addItem(self.right)
        item.getAxis("right").linkToView(self.right)
        item.getAxis("right").setLabel("KL (nats)")
        self.right.setXLink(item)
        item.vb.sigResized.connect(self._sync_right)
        item.hideButtons()  # the "A" (autorange) button: "Fit" below does that, without per-redraw autorange
        for vb in (item.vb, self.right):
            vb.disableAutoRange()
            vb.sigRangeChangedManually.connect(self._stop_following)
        self.follow = True
        self._ranges: dict[str, tuple[float, float] | None] = {"x": None, "left": None, "right": None}
        self.smooth_check = QCheckBox("Smooth (EMA)")
        self.log_check = QCheckBox("Log y")
        self.terms = QListWidget()
        self.terms.setMaximumWidth(150)
        self.terms.setToolTip("Loss terms to plot, in their curve's colour (KL terms use the right axis)")
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.state = LossTerms()
        self._lines: list[pg.InfiniteLine] = []  # one per marker of the state
        self._drawn_version = -1
        self._items: dict[str, QListWidgetItem] = {}

        controls = QHBoxLayout()
        controls.addWidget(self.smooth_check)
        controls.addWidget(self.log_check)
        self.fit_button = QPushButton("Fit")
        self.fit_button.setToolTip("Fit the view to the curves and follow them again")
        self.fit_button.clicked.connect(self.fit)
        controls.addWidget(self.fit_button)
        controls.addStretch(1)
        self.last_label = QLabel("")
        self.last_label.setStyleSheet("color: #a0a0a0")
        controls.addWidget(self.last_label)
        side = QVBoxLayout()
        side.addWidget(QLabel("Terms"))
        side.addWidget(self.terms, 1)
        body = QHBoxLayout()
        body.addWidget(self.plot, 1)
        body.addLayout(side)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addLayout(body, 1)

        self.smooth_check.toggled.connect(lambda _: self.refresh(force=True))
        self.log_check.toggled.connect(self._set_log)
        self.terms.itemChanged.connect(self._term_toggled)
        #: While it returns True (a slider is being dragged), timer redraws come at most every
        #: :data:`HELD_REDRAW_S` s, so the GUI thread is free when the decoded image arrives.
        self.hold: Callable[[], bool] = lambda: False
        self._drawn_at = 0.0
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(max(1, int(1000 / refresh_hz)))

    @property
    def markers(self) -> list[tuple[int, pg.InfiniteLine]]:
        """(step, line) of every hyperparameter-change marker (the state's markers, as drawn)."""
        return [(step, line) for (step, _), line in zip(self.state.markers, self._lines)]

    def _sync_right(self) -> None:
        vb = self.plot.getPlotItem().vb
        self.right.setGeometry(vb.sceneBoundingRect())
        self.right.linkedViewChanged(vb, self.right.XAxis)

    def _stop_following(self, *_args: object) -> None:
        self.follow = False

    def fit(self) -> None:
        """Fit the view to the visible curves and follow the data again."""
        self.follow = True
        self._ranges = dict.fromkeys(self._ranges)
        self.refresh(force=True)

    # -- input -----------------------------------------------------------------------------------
    def add_metrics(self, event: protocol.StepMetrics) -> None:
        """Record a :class:`StepMetrics` batch (drawn at the next timer tick)."""
        if event.steps is None or event.values is None or not len(event.steps):
            return
        first = int(event.steps[0])
        if len(self.history) and self.history.steps[-1] >= first:  # a run resumed or restored at an earlier step
            self.truncate(first - 1)
        self.history.append(event.steps, event.names, event.values)

    def add_marker(self, step: int, text: str) -> None:
        """A dashed vertical line with a label at ``step`` (a hyperparameter changed there)."""
        line = pg.InfiniteLine(
            pos=step, angle=90, movable=False, pen=pg.mkPen("#9e9e9e", width=1, style=Qt.PenStyle.DashLine),
            label=text, labelOpts={"position": 0.92, "color": "#e0e0e0", "fill": (40, 40, 40, 200), "movable": False},
        )
        self.plot.addItem(line, ignoreBounds=True)
        self.state.add_marker(step, text)
        self._lines.append(line)

    def clear(self) -> None:
        """Forget the history, the curves and the markers (a new model was built)."""
        self.history.clear()
        for name, curve in self.curves.items():
            (self.right if on_right_axis(name) else self.plot).removeItem(curve)
        self.curves.clear()
        self.state.shown.clear()
        self._items.clear()
        self.terms.clear()
        self.truncate(-1)
        self.fit()

    def truncate(self, step: int) -> None:
        """Drop history and markers after ``step`` (a checkpoint from that step was restored)."""
        self.history.truncate(step)
        dropped = set(self.state.truncate(step))
        for i in sorted(dropped):
            self.plot.removeItem(self._lines[i])
        self._lines = [line for i, line in enumerate(self._lines) if i not in dropped]

    # -- terms -----------------------------------------------------------------------------------
    def set_term_visible(self, name: str, visible: bool) -> None:
        """Show or hide one loss term.

        Raises
        ------
        KeyError
            If the term has not been seen yet.
        """
        self._items[name].setCheckState(Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked)

    def visible_terms(self) -> list[str]:
        """Names of the terms currently drawn."""
        return self.state.visible_terms()

    def curve_data(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The (x, y) arrays a curve currently draws (empty before the first redraw)."""
        curve = self.curves.get(name)
        if curve is None or curve.xData is None:
            return np.zeros(0), np.zeros(0)
        return curve.xData, curve.yData

    def _ensure_curve(self, name: str) -> pg.PlotDataItem:
        curve = self.curves.get(name)
        if curve is not None:
            return curve
        colour = PALETTE[len(self.curves) % len(PALETTE)]
        curve = pg.PlotDataItem(pen=pg.mkPen(colour, width=1), name=name, connect="finite", antialias=True)  # width > 1 with AA is 10x slower
        if measured_term(name):  # sparse: its finite points, marked
            curve.setSymbol("o")
            curve.setSymbolSize(5)
            curve.setSymbolBrush(pg.mkBrush(colour))
            curve.setSymbolPen(None)
        curve.setDownsampling(auto=True, method="peak")
        curve.setClipToView(True)
        if on_right_axis(name):
            self.plot.getPlotItem().getAxis("right").show()
            self.right.addItem(curve)
            curve.setLogMode(False, self.log_check.isChecked())
        else:
            self.plot.addItem(curve)
        self.curves[name] = curve
        item = QListWidgetItem(name)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setForeground(pg.mkColor(colour))
        visible = self.state.add_term(name)
        self.terms.blockSignals(True)
        item.setCheckState(Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked)
        self.terms.addItem(item)
        self.terms.blockSignals(False)
        self._items[name] = item
        if not visible:
            curve.hide()
        return curve

    def _term_toggled(self, item: QListWidgetItem) -> None:
        name = item.text()
        visible = item.checkState() == Qt.CheckState.Checked
        if not self.state.set_shown(name, visible):
            return
        self.curves[name].setVisible(visible)
        self.refresh(force=True)

    def _set_log(self, on: bool) -> None:
        self._ranges["left"] = self._ranges["right"] = None  # the y units changed
        self.plot.setLogMode(y=on)
        self.plot.getPlotItem().getAxis("right").setLogMode(False, on)
        for name, curve in self.curves.items():
            if on_right_axis(name):
                curve.setLogMode(False, on)
        self.refresh(force=True)

    # -- drawing ---------------------------------------------------------------------------------
    def _follow(self, bounds: dict[str, list[float]]) -> None:
        """Move the views only where the data left them (see :func:`stable_range`)."""
        vb = self.plot.getPlotItem().vb
        if bounds["x"]:
            lo, hi = min(bounds["x"]), max(bounds["x"])
            cur = self._ranges["x"]
            if cur is None or hi > cur[1] or lo < cur[0]:
                self._ranges["x"] = (lo, lo + nice_ceiling(max(hi - lo, 10.0)))
                vb.setXRange(*self._ranges["x"], padding=0.02)
        for side, box in (("left", vb), ("right", self.right)):
            if bounds[side]:
                new = stable_range(self._ranges[side], min(bounds[side]), max(bounds[side]))
                if new is not None:
                    self._ranges[side] = new
                    box.setYRange(*new, padding=0)

    def refresh(self, force: bool = False) -> None:
        """Push new history to the visible curves (cheap when nothing changed)."""
        if not force and self._drawn_version == self.history.version:
            return
        if not force and self.hold() and time.monotonic() - self._drawn_at < HELD_REDRAW_S:
            return
        self._drawn_at = time.monotonic()
        self._drawn_version = self.history.version
        smooth = self.smooth_check.isChecked()
        bounds: dict[str, list[float]] = {"x": [], "left": [], "right": []}
        for name in self.history.names:
            curve = self._ensure_curve(name)
            if self.state.shown[name]:
                x, y = self.history.series(name, smooth=smooth and not measured_term(name))
                if measured_term(name):
                    keep = np.isfinite(y)
                    x, y = x[keep], y[keep]
                curve.setData(x, y)
                if self.follow and len(x):
                    side = "right" if on_right_axis(name) else "left"
                    y = y[np.isfinite(y)]
                    if self.log_check.isChecked():
                        y = np.log10(y[y > 0])
                    if len(y):
                        bounds[side] += [float(y.min()), float(y.max())]
                    bounds["x"] += [float(x[0]), float(x[-1])]
        if self.follow:
            self._follow(bounds)
        shown = [n for n in self.history.names if self.state.shown[n]]
        if len(self.history):
            parts = [f"{n} {self.history.last(n):.4g}" for n in shown[:4]]
            self.last_label.setText(f"step {self.history.last_step:,}: " + ", ".join(parts))
        else:
            self.last_label.setText("")
        if self.fps is not None:
            self.fps.tick()
