"""The timeline bar under the loss plot: a slider back through the run's snapshots, Live, and Branch from here."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QWidget

from studio.features.timeline.state import TimelineState


class TimelineBar(QWidget):
    """A slider over the snapshots (the last position is now), its label, and two buttons.

    Signals
    -------
    moved(int)
        The slider's new position (a snapshot's index, or ``len(steps)`` for live).
    branch_requested()
    """

    moved = Signal(int)
    branch_requested = Signal()

    def __init__(self, state: TimelineState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setToolTip("Go back through the run: the samples, the Explore image and every plot show the model "
                               "as it was at that snapshot")
        self.slider.valueChanged.connect(self.moved)
        self.label = QLabel()
        self.live_button = QPushButton("Live")
        self.live_button.setToolTip("Back to the model as it is now")
        self.live_button.clicked.connect(lambda: self.slider.setValue(self.slider.maximum()))
        self.branch_button = QPushButton("Branch from here")
        self.branch_button.setToolTip("Continue training from this snapshot as a new run, beside this one")
        self.branch_button.clicked.connect(self.branch_requested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Timeline"))
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.label)
        layout.addWidget(self.live_button)
        layout.addWidget(self.branch_button)
        self.refresh()

    def refresh(self) -> None:
        """Show the state: the slider's range and position, the label, what the buttons can do."""
        n = len(self.state.steps)
        self.slider.blockSignals(True)
        self.slider.setRange(0, n)
        self.slider.setValue(self.state.index)
        self.slider.blockSignals(False)
        self.slider.setEnabled(n > 0)
        self.label.setText(self.state.label() if n or self.state.folder else "no snapshots yet")
        self.live_button.setEnabled(not self.state.live)
        self.branch_button.setEnabled(not self.state.live)
