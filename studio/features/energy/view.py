"""The Energy tab: Gibbs chains mixing (free or clamped to part of an image), the hidden units' filters layer by
layer, the hidden units of one held-out image, the free energy of held-out against training data over time, and
log Z estimated on demand."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QSplitter, QVBoxLayout, QWidget,
)

from studio.features.energy.state import MASKS, FreeEnergyHistory
from studio.widgets.basic import BACKGROUND, ImageView, JobProgress, off_note


class EnergyView(QWidget):
    """Run / Stop chains, Complete a held-out image, Show filters, Estimate log Z.

    Signals
    -------
    run_requested(int n, int sweeps)
    stop_requested()
    complete_requested(int index, str mask, int n, int sweeps)
    filters_requested(int layer)
    hidden_requested(int index)
    log_z_requested(int runs, int betas)
    """

    run_requested = Signal(int, int)
    stop_requested = Signal()
    complete_requested = Signal(int, str, int, int)
    filters_requested = Signal(int)
    hidden_requested = Signal(int)
    log_z_requested = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.note = off_note("")
        self.n_spin = _spin(1, 64, 16, "Chains run side by side")
        self.sweeps_spin = _spin(1, 100, 1, "Gibbs sweeps (h given v, then v given h) between two frames")
        self.run_button = QPushButton("Run chains")
        self.run_button.setToolTip("Start chains from random pixels and watch them mix into the model's samples")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the chains where they are")
        self.index_spin = _spin(0, 0, 0, "A held-out example of the data set")
        self.mask_combo = QComboBox()
        self.mask_combo.addItems(list(MASKS))
        self.mask_combo.setToolTip("Which part of the example is clamped; the chains sample the rest given it")
        self.complete_button = QPushButton("Clamp and sample")
        self.complete_button.setToolTip("Clamp part of the held-out example and Gibbs-sample the rest")
        self.hidden_button = QPushButton("Hidden units")
        self.hidden_button.setToolTip("p(h = 1 | v) of each hidden unit, layer by layer, for the held-out example, "
                                      "and the image decoded from them")
        self.filters_button = QPushButton("Show filters")
        self.filters_button.setToolTip("Each hidden unit's weights as an image (grey: zero; white: positive)")
        self.layer_spin = _spin(1, 1, 1, "Hidden layer whose filters to show (a deep belief net's higher layers are "
                                          "projected down to the pixels through the layers below)")
        self.stage_label = QLabel("")
        self.runs_spin = _spin(2, 100_000, 100, "Independent AIS runs")
        self.betas_spin = _spin(10, 1_000_000, 1000, "Intermediate temperatures from the base model to the RBM")
        self.log_z_button = QPushButton("Estimate log Z")
        self.job = JobProgress()
        self.log_z_label = QLabel("")
        self.log_z_label.setWordWrap(True)
        self.chains = ImageView("No chains yet")
        self.filters = ImageView("No filters shown")
        self.example = ImageView("No example inspected")
        self.hidden = ImageView("Hidden units: pick a held-out example and press Hidden units")
        self.free_energy_plot = pg.PlotWidget(background=BACKGROUND)
        self.free_energy_plot.setLabel("bottom", "step")
        self.free_energy_plot.setLabel("left", "mean free energy (nats)")
        self.free_energy_plot.addLegend(offset=(5, 5))
        self.free_energy_plot.setTitle("Free energy, held-out and training")
        self.held_curve = self.free_energy_plot.plot([], [], pen=pg.mkPen((240, 150, 60), width=2), name="held-out")
        self.train_curve = self.free_energy_plot.plot([], [], pen=pg.mkPen((90, 160, 240), width=2), name="training")
        self.gap_label = QLabel("")
        self.gap_label.setWordWrap(True)
        self.history = FreeEnergyHistory()

        row1 = QHBoxLayout()
        for w in (QLabel("Chains"), self.n_spin, QLabel("Sweeps a frame"), self.sweeps_spin, self.run_button,
                  self.stop_button, QLabel("Layer"), self.layer_spin, self.filters_button):
            row1.addWidget(w)
        row1.addStretch(1)
        row2 = QHBoxLayout()
        for w in (QLabel("Held-out example"), self.index_spin, self.mask_combo, self.complete_button,
                  self.hidden_button):
            row2.addWidget(w)
        row2.addStretch(1)
        row3 = QHBoxLayout()
        for w in (QLabel("AIS runs"), self.runs_spin, QLabel("Temperatures"), self.betas_spin, self.log_z_button):
            row3.addWidget(w)
        row3.addStretch(1)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.chains)
        top.addWidget(self.filters)
        energy = QWidget()
        el = QVBoxLayout(energy)
        el.setContentsMargins(0, 0, 0, 0)
        el.addWidget(self.free_energy_plot, 1)
        el.addWidget(self.gap_label)
        bottom = QSplitter(Qt.Orientation.Horizontal)
        for w in (self.example, self.hidden, energy):
            bottom.addWidget(w)
        bottom.setSizes([200, 260, 340])
        self.pictures = QSplitter(Qt.Orientation.Vertical)
        self.pictures.addWidget(top)
        self.pictures.addWidget(bottom)
        self.pictures.setSizes([420, 280])
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.stage_label)
        layout.addLayout(row1)
        layout.addLayout(row2)
        layout.addLayout(row3)
        layout.addWidget(self.job)
        layout.addWidget(self.log_z_label)
        layout.addWidget(self.pictures, 1)

        self.run_button.clicked.connect(lambda: self.run_requested.emit(self.n_spin.value(), self.sweeps_spin.value()))
        self.stop_button.clicked.connect(self.stop_requested)
        self.complete_button.clicked.connect(lambda: self.complete_requested.emit(
            self.index_spin.value(), self.mask_combo.currentText(), self.n_spin.value(), self.sweeps_spin.value()))
        self.filters_button.clicked.connect(lambda: self.filters_requested.emit(self.layer_spin.value() - 1))
        self.hidden_button.clicked.connect(lambda: self.hidden_requested.emit(self.index_spin.value()))
        self.log_z_button.clicked.connect(lambda: self.log_z_requested.emit(self.runs_spin.value(),
                                                                            self.betas_spin.value()))
        self.set_enabled("Build a model first", 0)

    def set_enabled(self, reason: str, n_test: int, log_z_reason: str = "", layers: int = 1) -> None:
        """Enable the tab (``reason`` "") or say why it is off; ``log_z_reason`` turns Estimate log Z off alone;
        ``layers`` hidden layers to pick filters from."""
        on = not reason
        self.note.setText(reason)
        self.note.setVisible(bool(reason))
        for w in (self.n_spin, self.sweeps_spin, self.filters_button, self.mask_combo):
            w.setEnabled(on)
        for w in (self.runs_spin, self.betas_spin, self.log_z_button):
            w.setEnabled(on and not log_z_reason)
        self.log_z_button.setToolTip(log_z_reason or "Annealed importance sampling (Salakhutdinov & Murray 2008), "
                                     "with the exact sum beside it for a model of at most 20 hidden units")
        self.layer_spin.setRange(1, max(1, layers))
        self.layer_spin.setEnabled(on and layers > 1)
        self.index_spin.setRange(0, max(0, n_test - 1))
        self.index_spin.setEnabled(on and n_test > 0)
        self.complete_button.setEnabled(on and n_test > 0)
        self.hidden_button.setEnabled(on and n_test > 0)
        self.stage_label.setText("")
        self.stage_label.setVisible(False)
        self.history.clear()
        self.show_free_energy()
        self.set_running(False)

    def show_free_energy(self) -> None:
        """Redraw the two free-energy curves and the gap from :attr:`history`."""
        h = self.history
        held, train = "free_energy_held_out", "free_energy_train"
        self.held_curve.setData(h.steps[held], h.values[held])
        self.train_curve.setData(h.steps[train], h.values[train])
        self.free_energy_plot.enableAutoRange()
        self.gap_label.setText(h.gap_text() or "The free energy of held-out and training images is measured "
                               "every few seconds while an RBM trains")

    def set_stage(self, text: str) -> None:
        """Show what a deep belief net is training ("" hides it)."""
        self.stage_label.setText(text)
        self.stage_label.setVisible(bool(text))

    def set_running(self, running: bool) -> None:
        """Stop while chains run; Run and Clamp otherwise."""
        on = self.note.isHidden()  # not isVisible(): the tab may not be shown
        self.stop_button.setEnabled(running)
        self.run_button.setEnabled(on and not running)
        self.complete_button.setEnabled(on and not running and self.index_spin.maximum() >= 0 and self.index_spin.isEnabled())


def _spin(lo: int, hi: int, value: int, tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(lo, hi)
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin
