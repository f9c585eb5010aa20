"""The Energy tab: Gibbs chains mixing (free or clamped to part of an image), the hidden units' filters, and
log Z estimated on demand."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QGridLayout, QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from studio.features.energy.state import MASKS
from studio.widgets.basic import ImageView, JobProgress, off_note


class EnergyView(QWidget):
    """Run / Stop chains, Complete a held-out image, Show filters, Estimate log Z.

    Signals
    -------
    run_requested(int n, int sweeps)
    stop_requested()
    complete_requested(int index, str mask, int n, int sweeps)
    filters_requested()
    log_z_requested(int runs, int betas)
    """

    run_requested = Signal(int, int)
    stop_requested = Signal()
    complete_requested = Signal(int, str, int, int)
    filters_requested = Signal()
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
        self.filters_button = QPushButton("Show filters")
        self.filters_button.setToolTip("Each hidden unit's weights as an image (grey: zero; white: positive)")
        self.runs_spin = _spin(2, 100_000, 100, "Independent AIS runs")
        self.betas_spin = _spin(10, 1_000_000, 1000, "Intermediate temperatures from the base model to the RBM")
        self.log_z_button = QPushButton("Estimate log Z")
        self.log_z_button.setToolTip("Annealed importance sampling (Salakhutdinov & Murray 2008), with the exact "
                                     "sum beside it for a model of at most 20 hidden units")
        self.job = JobProgress()
        self.log_z_label = QLabel("")
        self.log_z_label.setWordWrap(True)
        self.chains = ImageView("No chains yet")
        self.filters = ImageView("No filters shown")

        row1 = QHBoxLayout()
        for w in (QLabel("Chains"), self.n_spin, QLabel("Sweeps a frame"), self.sweeps_spin, self.run_button,
                  self.stop_button):
            row1.addWidget(w)
        row1.addStretch(1)
        row2 = QHBoxLayout()
        for w in (QLabel("Held-out example"), self.index_spin, self.mask_combo, self.complete_button,
                  self.filters_button):
            row2.addWidget(w)
        row2.addStretch(1)
        row3 = QHBoxLayout()
        for w in (QLabel("AIS runs"), self.runs_spin, QLabel("Temperatures"), self.betas_spin, self.log_z_button):
            row3.addWidget(w)
        row3.addStretch(1)
        pictures = QGridLayout()
        pictures.addWidget(self.chains, 0, 0)
        pictures.addWidget(self.filters, 0, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addLayout(row1)
        layout.addLayout(row2)
        layout.addLayout(row3)
        layout.addWidget(self.job)
        layout.addWidget(self.log_z_label)
        layout.addLayout(pictures, 1)

        self.run_button.clicked.connect(lambda: self.run_requested.emit(self.n_spin.value(), self.sweeps_spin.value()))
        self.stop_button.clicked.connect(self.stop_requested)
        self.complete_button.clicked.connect(lambda: self.complete_requested.emit(
            self.index_spin.value(), self.mask_combo.currentText(), self.n_spin.value(), self.sweeps_spin.value()))
        self.filters_button.clicked.connect(self.filters_requested)
        self.log_z_button.clicked.connect(lambda: self.log_z_requested.emit(self.runs_spin.value(),
                                                                            self.betas_spin.value()))
        self.set_enabled("Build a model first", 0)

    def set_enabled(self, reason: str, n_test: int) -> None:
        """Enable the tab (``reason`` "") or say why it is off."""
        on = not reason
        self.note.setText(reason)
        self.note.setVisible(bool(reason))
        for w in (self.n_spin, self.sweeps_spin, self.filters_button, self.runs_spin, self.betas_spin,
                  self.log_z_button, self.mask_combo):
            w.setEnabled(on)
        self.index_spin.setRange(0, max(0, n_test - 1))
        self.index_spin.setEnabled(on and n_test > 0)
        self.complete_button.setEnabled(on and n_test > 0)
        self.set_running(False)

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
