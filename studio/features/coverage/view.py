"""The Coverage panel: live mode coverage of the model's samples, streamed by the worker.

For 2-D data a GAN Lab-style view (Kahng et al., 2018, "GAN Lab: Understanding Complex Deep
Generative Models using Interactive Visual Experimentation"): the measured samples over the critic's
heat map, with the data's mode centres as red crosses. For images the class histogram of generated
samples beside the data's. For every data set, curves over steps of the share of modes captured
(classes covered), the high-quality (confident) share and the KL to the data's mode (class)
histogram, and a warning banner when coverage collapses or the discriminator wins outright.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout, QLabel, QSplitter, QStackedWidget, QVBoxLayout, QWidget,
)

from engines.shared import protocol
from engines.shared.capabilities import Capabilities
from engines.shared.datainfo import DataInfo
from engines.shared.results import ClassCoverage, MixtureCoverage
from studio.features.coverage.state import CollapseDetector, grid_polyline
from studio.state import LossHistory, nice_ceiling, stable_range
from studio.widgets.clock import MeasureClock
from studio.widgets.basic import (
    BACKGROUND, CRITIC_MAP, DENSITY_MAP, Banner, TimeCursor, critic_levels, density_levels, schedule_spin,
)

#: Colours: generated samples / bars, real bars, captured share, quality share, KL.
GENERATED, REAL, CAPTURED, QUALITY, KL = "#4fc3f7", "#9e9e9e", "#81c784", "#ffb74d", "#e57373"
#: Colours of the precision and recall curves (Kynkaanniemi et al. 2019).
PRECISION, RECALL = "#ba68c8", "#4dd0e1"



def quality_text(q: dict, features: str) -> str:
    """The quality line: "FD 57.5 (classifier features) · precision 0.64 · recall 0.76 · ..." ("" for none)."""
    if not q:
        return ""
    parts = [f"FD {q['fd']:.1f} ({features})"] if "fd" in q else []
    for key, label in (("classifier_score", "classifier score"), ("precision", "precision"), ("recall", "recall"),
                       ("density", "density"), ("coverage", "coverage")):
        if key in q:
            parts.append(f"{label} {q[key]:.2f}")
    if "n" in q and "n_reference" in q:
        parts.append(f"{int(q['n']):,} samples vs {int(q['n_reference']):,} real")
    return " \u00b7 ".join(parts)


class CoveragePanel(QWidget):
    """Live coverage: the sample view (points over the critic, or class histograms) and curves over steps.

    Each plot item is created once and updated with ``setData`` / ``setImage`` / ``setOpts``; view
    ranges are fixed (shares in [0, 1]) or follow :func:`studio.state.stable_range`.

    Signals
    -------
    schedule_changed(float)
        Seconds between coverage measurements the user chose (0 = off).
    warning(str)
        A collapse warning was raised (also shown in the banner).
    """

    schedule_changed = Signal(float)
    warning = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.info: DataInfo | None = None
        self.capabilities = Capabilities()
        self.detector = CollapseDetector()
        self.steps: list[int] = []
        self.captured: list[float] = []  # share of modes (classes) captured, in [0, 1]
        self.quality: list[float] = []  # high-quality (confident) share, in [0, 1]
        self.kl: list[float] = []  # reverse KL (class KL) in nats; NaN where not given
        self.precision: list[float] = []  # improved precision and recall of the same samples; NaN where none
        self.recall: list[float] = []
        self.last_event: protocol.CoverageMeasured | None = None
        self._kl_range: tuple[float, float] | None = None
        self._x_range: tuple[float, float] | None = None
        self._hist_range: tuple[float, float] | None = None
        self._n_classes = -1

        # controls and the latest numbers
        self.spin = schedule_spin(protocol.SetMetricSchedule().coverage_every,
                                  "Seconds of training between coverage measurements (off: never)")
        self.spin.valueChanged.connect(self.schedule_changed)
        self.clock = MeasureClock(self.spin.value())
        self.spin.valueChanged.connect(self.clock.set_interval)
        self.summary = QLabel("No coverage measured yet")
        self.summary.setStyleSheet("color: #c8c8c8")
        self.quality_line = QLabel("")  # sample quality of the same samples
        self.quality_line.setStyleSheet("color: #a8a8a8")
        controls = QHBoxLayout()
        controls.addWidget(self.summary, 1)
        controls.addWidget(QLabel("Measure every"))
        controls.addWidget(self.spin)
        self.banner = Banner("Dismiss")
        self.banner.button.clicked.connect(self.banner.hide)

        # the live view: points over the critic's heat map, or the class histograms
        self.points_plot = pg.PlotWidget(background=BACKGROUND)
        self.points_plot.setAspectLocked(True)
        self.points_plot.hideButtons()
        self.points_plot.setMenuEnabled(False)
        self.critic = pg.ImageItem(axisOrder="row-major")
        self.critic.setColorMap(CRITIC_MAP)
        self.critic.setOpacity(0.85)
        self.critic.setZValue(-10)
        self.scatter = pg.ScatterPlotItem(size=4, pen=None, brush=pg.mkBrush(120, 200, 255, 170))
        self.modes = pg.ScatterPlotItem(size=12, symbol="x", pen=None, brush=pg.mkBrush(255, 80, 80, 230))
        self.warp = pg.PlotCurveItem(pen=pg.mkPen(230, 230, 230, 110, width=1))
        self.warp.setZValue(-5)
        for item in (self.critic, self.warp, self.scatter, self.modes):
            self.points_plot.addItem(item)
        self.hist_plot = pg.PlotWidget(background=BACKGROUND)
        self.hist_plot.hideButtons()
        self.hist_plot.setMenuEnabled(False)
        self.hist_plot.setMouseEnabled(x=False, y=False)
        self.hist_plot.setLabel("left", "share")
        self.hist_plot.setTitle(f'<span style="color:{GENERATED}">generated</span> vs '
                                f'<span style="color:{REAL}">real</span>', size="9pt")
        self.bars_generated = pg.BarGraphItem(x=[], height=[], width=0.4, brush=GENERATED, pen=None)
        self.bars_real = pg.BarGraphItem(x=[], height=[], width=0.4, brush=REAL, pen=None)
        self.hist_plot.addItem(self.bars_real)
        self.hist_plot.addItem(self.bars_generated)
        self.view = QStackedWidget()
        self.view.setMinimumHeight(140)
        self.view.addWidget(self.points_plot)
        self.view.addWidget(self.hist_plot)

        # curves over steps: shares on the left (fixed [0, 1]), KL in nats on the right
        self.curves_plot = pg.PlotWidget(background=BACKGROUND)
        self.time_cursor = TimeCursor(self.curves_plot)
        self.curves_plot.setMinimumHeight(140)  # a short dock (and a warning banner) scrolls, never crushes it
        self.curves_plot.hideButtons()
        self.curves_plot.setMenuEnabled(False)
        self.curves_plot.showGrid(y=True, alpha=0.15)
        self.curves_plot.setLabel("bottom", "step")
        self.curves_plot.setLabel("left", "share")
        item = self.curves_plot.getPlotItem()
        self.right = pg.ViewBox()
        item.showAxis("right")
        item.scene().addItem(self.right)
        item.getAxis("right").linkToView(self.right)
        item.getAxis("right").setLabel("KL (nats)")
        for plot, side in ((self.curves_plot, "left"), (self.curves_plot, "right"), (self.hist_plot, "left")):
            plot.getPlotItem().getAxis(side).enableAutoSIPrefix(False)  # no "(x0.001)" on shares and nats
        self.right.setXLink(item)
        item.vb.sigResized.connect(self._sync_right)
        for vb in (item.vb, self.right):
            vb.disableAutoRange()
            vb.setMouseEnabled(x=False, y=False)
        item.vb.setYRange(0.0, 1.05, padding=0)
        legend = item.addLegend(offset=(-10, 10), labelTextSize="8pt")
        self.curve_captured = item.plot(pen=pg.mkPen(CAPTURED, width=2), name="captured", connect="finite", symbol="o", symbolSize=4,
                                        symbolBrush=CAPTURED, symbolPen=None)
        self.curve_quality = item.plot(pen=pg.mkPen(QUALITY, width=2), name="high quality", connect="finite", symbol="o", symbolSize=4,
                                       symbolBrush=QUALITY, symbolPen=None)
        self.curve_precision = item.plot(pen=pg.mkPen(PRECISION, width=1, style=Qt.PenStyle.DotLine), name="precision",
                                         connect="finite")
        self.curve_recall = item.plot(pen=pg.mkPen(RECALL, width=1, style=Qt.PenStyle.DotLine), name="recall",
                                      connect="finite")
        self.curve_kl = pg.PlotDataItem(pen=pg.mkPen(KL, width=1, style=Qt.PenStyle.DashLine), connect="finite")
        self.right.addItem(self.curve_kl)
        legend.addItem(self.curve_kl, "KL")
        self._legend = legend

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.view)
        splitter.addWidget(self.curves_plot)
        splitter.setSizes([380, 620])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(controls)
        layout.addWidget(self.quality_line)
        layout.addWidget(self.clock)
        layout.addWidget(self.banner)
        layout.addWidget(splitter, 1)

    def _sync_right(self) -> None:
        vb = self.curves_plot.getPlotItem().vb
        self.right.setGeometry(vb.sceneBoundingRect())
        self.right.linkedViewChanged(vb, self.right.XAxis)

    # -- model -----------------------------------------------------------------------------------
    def set_data(self, info: DataInfo, capabilities: Capabilities | None = None) -> None:
        """Show the view that fits a data set (points or class histograms); remember the model's capabilities."""
        self.info, self.capabilities = info, capabilities or Capabilities()
        self.view.setCurrentWidget(self.points_plot if info.kind == "points" else self.hist_plot)
        modes = np.zeros((0, 2)) if not info.modes else np.asarray(info.modes, np.float64).reshape(-1, 2)
        self.modes.setData(pos=modes)
        if len(modes):
            span = max(float(np.abs(modes).max()), 1e-3) * 1.4
            self.points_plot.setRange(xRange=(-span, span), yRange=(-span, span), padding=0)

    def clear(self) -> None:
        """Forget every measurement and warning (a new model was built)."""
        self.detector.reset()
        self.steps, self.captured, self.quality, self.kl = [], [], [], []
        self.precision, self.recall = [], []
        self.quality_line.setText("")
        self.last_event = None
        self._kl_range = self._x_range = self._hist_range = None
        self._n_classes = -1
        self.scatter.setData(pos=np.zeros((0, 2)))
        self.critic.clear()
        self.warp.setData([], [])
        self.bars_generated.setOpts(x=[], height=[])
        self.bars_real.setOpts(x=[], height=[])
        for curve in (self.curve_captured, self.curve_quality, self.curve_kl, self.curve_precision, self.curve_recall):
            curve.setData([], [])
        self.banner.hide()
        self.summary.setText("No coverage measured yet")
        # the axes too: a new model's curves start on fresh ranges, not the last model's steps and nats
        self.curves_plot.setXRange(0.0, 10.0, padding=0.02)
        self.right.setYRange(0.0, 1.0, padding=0.0)

    # -- input -----------------------------------------------------------------------------------
    def add_coverage(self, event: protocol.CoverageMeasured) -> None:
        """Draw one :class:`CoverageMeasured`: the live view, one more point on each curve, the summary."""
        r = event.result
        if r is None:
            return
        self.last_event = event
        if isinstance(r, MixtureCoverage):
            total, got, share, kl = r.modes_total, r.modes_captured, r.high_quality_share, r.reverse_kl
            unit, quality_name, kl_name = "modes", "high quality", "reverse KL"
            self._show_points(event)
        else:
            total, got, share, kl = r.classes_total, r.classes_covered, r.confident_share, r.class_kl
            unit = "classes" if r.metric == "classes" else "clusters"
            quality_name, kl_name = "confident", "class KL"
            self._show_histograms(list(r.generated_hist), list(r.data_hist))
        self.steps.append(int(event.step))
        self.captured.append(r.captured_share)
        self.quality.append(float("nan") if share is None else float(share))
        self.kl.append(float("nan") if kl is None else float(kl))
        q = event.quality or {}
        self.precision.append(float(q.get("precision", float("nan"))))
        self.recall.append(float(q.get("recall", float("nan"))))
        self.quality_line.setText(quality_text(q, self.metric_features(r)))
        self._draw_curves()
        if isinstance(r, ClassCoverage):  # the published (PacGAN) count first, the confident one beside it
            parts = [f"step {event.step:,}: {r.classes_covered_any} / {total} {unit} (PacGAN), {got} confident"]
        else:
            parts = [f"step {event.step:,}: {got} / {total} {unit}"]
        if share is not None:
            parts.append(f"{100 * float(share):.0f}% {quality_name}")
        if kl is not None:
            parts.append(f"{kl_name} {float(kl):.2f} nats")
        if isinstance(r, ClassCoverage) and r.classifier_accuracy is not None:
            parts.append(f"classifier accuracy {100 * r.classifier_accuracy:.0f}%")
        self.summary.setText(", ".join(parts))
        verb = "captured" if isinstance(r, MixtureCoverage) else "covered"
        self._warn(self.detector.check_coverage(event.step, got, total, f"{unit} {verb}"))

    def check_losses(self, history: LossHistory) -> None:
        """For a model with a critic (it declares ``critic_map``): warn when the discriminator wins outright or
        g_loss explodes (see :class:`CollapseDetector`)."""
        if self.capabilities.has("critic_map"):
            self._warn(self.detector.check_losses(history, probabilities="w_dist" not in history.names))

    def _warn(self, message: str | None) -> None:
        if message:
            self.banner.show_message(f"<b>Warning:</b> {message}")
            self.warning.emit(message)

    # -- drawing ---------------------------------------------------------------------------------
    def _show_points(self, event: protocol.CoverageMeasured) -> None:
        self.view.setCurrentWidget(self.points_plot)
        if event.samples is not None:
            self.scatter.setData(pos=np.asarray(event.samples, np.float64).reshape(-1, 2))
        if event.critic is not None and len(event.extent) == 4 and event.critic.ndim == 2:
            x0, x1, y0, y1 = (float(e) for e in event.extent)
            critic = np.asarray(event.critic, np.float32)
            density = event.critic_units == "log-density"
            levels = density_levels(critic) if density else critic_levels(critic)
            self.critic.setColorMap(DENSITY_MAP if density else CRITIC_MAP)
            self.critic.setImage(np.nan_to_num(critic, nan=levels[0], neginf=levels[0]), autoLevels=False, levels=levels)
            self.critic.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
            self.critic.setToolTip("log p(x), nats: the model's density (the top 10 nats coloured)" if density else
                                   "The discriminator's output over the plane")
        if event.grid_lines is not None and np.ndim(event.grid_lines) == 3:
            x, y, connect = grid_polyline(event.grid_lines)
            self.warp.setData(x, y, connect=connect)

    def _show_histograms(self, generated: list, real: list) -> None:
        self.view.setCurrentWidget(self.hist_plot)
        k = max(len(generated), len(real))
        x = np.arange(k, dtype=np.float64)
        self.bars_generated.setOpts(x=x[: len(generated)] - 0.2, height=np.asarray(generated, np.float64))
        self.bars_real.setOpts(x=x[: len(real)] + 0.2, height=np.asarray(real, np.float64))
        if k != self._n_classes:
            self._n_classes = k
            names = list(self.info.class_names) if self.info is not None and self.info.class_names else []
            names = names if len(names) == k else [str(i) for i in range(k)]
            self.hist_plot.getPlotItem().getAxis("bottom").setTicks([list(enumerate(names))])
            self.hist_plot.setXRange(-0.6, k - 0.4, padding=0)
        top = max([0.0, *generated, *real])
        new = stable_range(self._hist_range, 0.0, top * 1.05, pad=0.0)
        if new is not None:
            self._hist_range = (0.0, new[1])
            self.hist_plot.setYRange(*self._hist_range, padding=0)

    def _draw_curves(self) -> None:
        x = np.asarray(self.steps, np.float64)
        self.curve_captured.setData(x, np.asarray(self.captured, np.float64))
        self.curve_quality.setData(x, np.asarray(self.quality, np.float64))
        self.curve_precision.setData(x, np.asarray(self.precision, np.float64))
        self.curve_recall.setData(x, np.asarray(self.recall, np.float64))
        kl = np.asarray(self.kl, np.float64)
        self.curve_kl.setData(x, kl)
        vb = self.curves_plot.getPlotItem().vb
        lo, hi = float(x.min()), float(x.max())
        if self._x_range is None or hi > self._x_range[1] or lo < self._x_range[0]:
            self._x_range = (lo, lo + nice_ceiling(max(hi - lo, 10.0)))
            vb.setXRange(*self._x_range, padding=0.02)
        finite = kl[np.isfinite(kl)]
        if len(finite):
            new = stable_range(self._kl_range, min(0.0, float(finite.min())), float(finite.max()))
            if new is not None:
                self._kl_range = new
                self.right.setYRange(*new, padding=0)

    @staticmethod
    def metric_features(result: object) -> str:
        """The feature space the quality line's numbers are in, said in the window."""
        if isinstance(result, MixtureCoverage):
            return "coordinates"
        if isinstance(result, ClassCoverage) and result.metric == "classes":
            return "classifier features"
        return "PCA of pixels: no labels"

    # -- reading ---------------------------------------------------------------------------------
    def schedule(self) -> float:
        """Seconds between coverage measurements (0 = off)."""
        return float(self.spin.value())

    def curve_data(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The (x, y) arrays the curves draw: "captured", "quality", "kl", "precision", "recall"."""
        curves = {"captured": self.curve_captured, "quality": self.curve_quality, "kl": self.curve_kl,
                  "precision": self.curve_precision, "recall": self.curve_recall}
        return {k: (c.xData if c.xData is not None else np.zeros(0), c.yData if c.yData is not None else np.zeros(0))
                for k, c in curves.items()}
