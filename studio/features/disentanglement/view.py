"""The Disentanglement panel: scores over steps, the latent x factor mutual information, CSV and PNG export.

The scores are measured in the worker (:mod:`engines.metrics.disentanglement`): MIG (Chen et al.,
2018), SAP (Kumar et al., 2018), DCI (Eastwood & Williams, 2018), the FactorVAE score (Kim & Mnih,
2018) and the beta-VAE score (Higgins et al., 2017). All lie in [0, 1].
"""

from __future__ import annotations

import math

import threading
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog, QHBoxLayout, QHeaderView, QLabel, QPushButton, QSplitter, QTableWidget, QTableWidgetItem,
    QVBoxLayout, QWidget,
)

from engines.shared import protocol
from engines.shared.datainfo import DataInfo
from studio.features.disentanglement.state import CURVES, METRICS, NO_FACTORS, NOT_YET, ScoreTable
from studio.widgets.clock import MeasureClock
from studio.widgets.basic import TimeCursor, schedule_spin
from studio.state import nice_ceiling
from studio.widgets.basic import BACKGROUND

__all__ = ["CURVES", "METRICS", "NO_FACTORS", "DisentanglementPanel", "ScoreTable"]


class DisentanglementPanel(QWidget):
    """Disentanglement scores as curves over steps (y fixed to [0, 1]), the MI heat map and a table.

    Signals
    -------
    schedule_changed(float)
        Seconds between disentanglement measurements the user chose (0 = off).
    png_written(str, str)
        A PNG export finished: the path and an error message ("" on success).
    """

    schedule_changed = Signal(float)
    png_written = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.info: DataInfo | None = None
        self.latent_names: list[str] = []
        self.state = ScoreTable()
        self._x_range: tuple[float, float] | None = None
        self._mi_shape: tuple[int, ...] | None = None

        self.spin = schedule_spin(protocol.SetMetricSchedule().disentanglement_every,
                                  "Seconds of training between disentanglement measurements (off: never)")
        self.spin.valueChanged.connect(self.schedule_changed)
        self.clock = MeasureClock(self.spin.value())
        self.spin.valueChanged.connect(self.clock.set_interval)
        self.export_button = QPushButton("Export CSV + PNG...")
        self.export_button.setToolTip("Write the scores of every measurement to a CSV file, and beside it a PNG "
                                      "of the curves, the MI heat map and the latest scores")
        self.export_button.clicked.connect(self._ask_export)
        self.png_written.connect(self._on_png_written)
        self.export_button.setEnabled(False)
        self.status = QLabel(NOT_YET)
        self.status.setStyleSheet("color: #c8c8c8")
        controls = QHBoxLayout()
        controls.addWidget(self.status, 1)
        controls.addWidget(QLabel("Measure every"))
        controls.addWidget(self.spin)
        controls.addWidget(self.export_button)

        # curves over steps
        self.curves_plot = pg.PlotWidget(background=BACKGROUND)
        self.time_cursor = TimeCursor(self.curves_plot)
        self.curves_plot.setMinimumHeight(140)  # a short dock scrolls rather than crush the plots
        self.curves_plot.hideButtons()
        self.curves_plot.setMenuEnabled(False)
        self.curves_plot.setMouseEnabled(x=False, y=False)
        self.curves_plot.showGrid(y=True, alpha=0.15)
        self.curves_plot.setLabel("bottom", "step")
        self.curves_plot.setLabel("left", "score")
        item = self.curves_plot.getPlotItem()
        item.vb.disableAutoRange()
        item.getAxis("left").enableAutoSIPrefix(False)
        item.vb.setYRange(0.0, 1.0, padding=0.02)
        item.addLegend(offset=(-10, 10), labelTextSize="8pt")
        self.curves = {
            key: item.plot(pen=pg.mkPen(colour, width=2), name=METRICS[key], connect="finite", symbol="o",
                           symbolSize=4, symbolBrush=colour, symbolPen=None)
            for key, colour in CURVES.items()
        }

        # mutual information, latent (rows, y) x factor (columns, x)
        self.mi_plot = pg.PlotWidget(background=BACKGROUND)
        self.mi_plot.hideButtons()
        self.mi_plot.setMenuEnabled(False)
        self.mi_plot.setMouseEnabled(x=False, y=False)
        self.mi_plot.invertY(True)  # z0 at the top
        self.mi_plot.setTitle("MI (nats), latent x factor", size="9pt")
        self.mi_image = pg.ImageItem(axisOrder="row-major")
        self.mi_plot.addItem(self.mi_image)
        self.colour_bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=pg.colormap.get("viridis"), label="nats",
                                          interactive=False, width=12)
        self.colour_bar.setImageItem(self.mi_image, insert_in=self.mi_plot.getPlotItem())

        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["score", "latest"])
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        # wide enough for the longest score name ("DCI disentanglement") and its value
        self.table.setMinimumWidth(self.table.fontMetrics().horizontalAdvance("DCI disentanglement") + 90)
        self.table.setMaximumWidth(320)

        self.body = QSplitter(Qt.Orientation.Horizontal)
        self.body.addWidget(self.curves_plot)
        self.body.addWidget(self.mi_plot)
        self.body.addWidget(self.table)
        self.body.setSizes([430, 330, 210])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(controls)
        layout.addWidget(self.clock)
        layout.addWidget(self.body, 1)

    # -- the state's names ------------------------------------------------------------------------
    @property
    def rows(self) -> list[dict[str, float]]:
        """One row per measurement: step, seconds and the scores sent (see :class:`ScoreTable`)."""
        return self.state.rows

    @property
    def mi(self) -> np.ndarray | None:
        """The latest latent x factor mutual information, or None."""
        return self.state.mi

    # -- model -----------------------------------------------------------------------------------
    @property
    def has_factors(self) -> bool:
        """Whether the data set has ground-truth factors (else the panel says so and is disabled)."""
        return self.info is not None and bool(self.info.factor_names)

    def set_data(self, info: DataInfo, latent_names: list[str] | tuple[str, ...] = ()) -> None:
        """Set the data set and the latent dimension names (the heat map's y axis)."""
        self.info, self.latent_names = info, list(latent_names)
        self.body.setEnabled(self.has_factors)
        self.spin.setEnabled(self.has_factors)
        if not self.has_factors:
            self.status.setText(NO_FACTORS)
        elif not self.rows:
            self.status.setText(NOT_YET)

    def clear(self) -> None:
        """Forget every measurement (a new model was built)."""
        self.state.clear()
        self._x_range, self._mi_shape = None, None
        for curve in self.curves.values():
            curve.setData([], [])
        self.mi_image.clear()
        self.table.setRowCount(0)
        self.export_button.setEnabled(False)
        self.status.setText(NO_FACTORS if self.info is not None and not self.has_factors else NOT_YET)

    # -- input -----------------------------------------------------------------------------------
    def add_disentanglement(self, event: protocol.DisentanglementMeasured) -> None:
        """Draw one :class:`DisentanglementMeasured`: a point per score curve, the MI map, the table."""
        self.state.add(event)
        x = self.state.steps()
        for key, curve in self.curves.items():
            curve.setData(*self.state.series(key))
        lo, hi = float(x.min()), float(x.max())
        if self._x_range is None or hi > self._x_range[1] or lo < self._x_range[0]:
            self._x_range = (lo, lo + nice_ceiling(max(hi - lo, 10.0)))
            self.curves_plot.setXRange(*self._x_range, padding=0.02)
        if event.mi_matrix is not None and event.mi_matrix.ndim == 2:
            self._show_mi(self.state.mi, list(event.factor_names))
        self._fill_table(self.state.latest())
        self.export_button.setEnabled(True)
        self.status.setText(self.state.summary())

    def _show_mi(self, mi: np.ndarray, factor_names: list[str]) -> None:
        d, k = mi.shape
        finite = mi[np.isfinite(mi)]
        top = nice_ceiling(float(finite.max())) if len(finite) else 1.0
        self.mi_image.setImage(mi, autoLevels=False, levels=(0.0, top))
        self.colour_bar.setLevels((0.0, top))
        if mi.shape != self._mi_shape:
            self._mi_shape = mi.shape
            self.mi_image.setRect(QRectF(0, 0, k, d))
            factors = factor_names if len(factor_names) == k else (
                list(self.info.factor_names) if self.info is not None and self.info.factor_names
                and len(self.info.factor_names) == k else [f"f{i}" for i in range(k)])
            latents = self.latent_names if len(self.latent_names) == d else [f"z{i}" for i in range(d)]
            item = self.mi_plot.getPlotItem()
            item.getAxis("bottom").setTicks([[(i + 0.5, n) for i, n in enumerate(factors)]])
            every = max(1, math.ceil(d / 8))  # at most 8 z labels: they overlap in a short dock otherwise
            item.getAxis("left").setTicks([[(i + 0.5, n) for i, n in enumerate(latents) if i % every == 0]])
            self.mi_plot.setRange(xRange=(0, k), yRange=(0, d), padding=0)

    def _fill_table(self, latest: list[tuple[str, float]]) -> None:
        self.table.setRowCount(len(latest))
        for i, (label, score) in enumerate(latest):
            self.table.setItem(i, 0, QTableWidgetItem(label))
            value = QTableWidgetItem(f"{score:.3f}")
            value.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(i, 1, value)

    # -- export ----------------------------------------------------------------------------------
    def columns(self) -> list[str]:
        """CSV columns: step, seconds, then every score any measurement sent, in :data:`METRICS` order."""
        return self.state.columns()

    def export_csv(self, path: str | Path) -> Path:
        """Write one row per measurement (scores in [0, 1], empty where not measured) to ``path``.

        Raises
        ------
        OSError
            If the file cannot be written.
        """
        return self.state.write_csv(path)

    def export_png(self, path: str | Path) -> threading.Thread:
        """Write the curves, the MI heat map and the table as shown to ``path`` (PNG).

        The widgets are grabbed on the GUI thread (a copy of pixels); the PNG is encoded and written
        on a background thread, which emits :attr:`png_written` when done (an error message if the
        file could not be written). Returns that thread.
        """
        path = str(path)
        image = self.body.grab().toImage()

        def save() -> None:
            ok = image.save(path, "PNG")
            self.png_written.emit(path, "" if ok else f"could not write {path}")

        thread = threading.Thread(target=save, name="disentanglement-png", daemon=True)
        thread.start()
        return thread

    def export(self, path: str | Path) -> Path:
        """Write the scores to ``path`` (CSV, :meth:`export_csv`) and the picture beside it (same name, ``.png``).

        Raises
        ------
        OSError
            If the CSV cannot be written (a PNG failure arrives through :attr:`png_written`).
        """
        path = self.export_csv(path)
        self.export_png(path.with_suffix(".png"))
        return path

    def _on_png_written(self, path: str, error: str) -> None:
        csv_path = Path(path).with_suffix(".csv")
        self.status.setText(f"Could not write {path}" if error else f"Wrote {csv_path} and {path}")

    def _ask_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export disentanglement scores", "disentanglement.csv", "CSV (*.csv)")
        if not path:
            return
        try:
            self.export(path)
            self.status.setText(f"Wrote {path}")
        except OSError as exc:
            self.status.setText(f"Could not write {path}: {exc.strerror or exc}")

    # -- reading ---------------------------------------------------------------------------------
    def schedule(self) -> float:
        """Seconds between disentanglement measurements (0 = off)."""
        return float(self.spin.value())

    def curve_data(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """The (x, y) arrays the curve of score ``key`` draws (empty before the first event)."""
        c = self.curves[key]
        return (c.xData if c.xData is not None else np.zeros(0), c.yData if c.yData is not None else np.zeros(0))
