"""The watchdog banner: what went wrong, where training went back to, and one button per fix."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from studio.features.watchdog.state import Trip


class WatchdogBanner(QFrame):
    """An amber strip over the central tabs after a rollback (never a modal dialog).

    Signals
    -------
    fix_chosen(str name, float value)
        Set hyperparameter ``name`` to ``value`` and resume ("" name: resume as it is).
    """

    fix_chosen = Signal(str, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("watchdog")
        self.setStyleSheet("#watchdog { background: #4a3a12; border-radius: 4px; } #watchdog QLabel { color: #ffe9b0; }")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.buttons_row = QHBoxLayout()
        self.buttons_row.setContentsMargins(0, 0, 0, 0)
        self.buttons: list[QPushButton] = []
        self.dismiss_button = QPushButton("Dismiss")
        self.dismiss_button.setToolTip("Hide this note (training stays as it is)")
        self.dismiss_button.clicked.connect(self.hide)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.label)
        layout.addLayout(self.buttons_row)
        self.trip: Trip | None = None
        self.hide()

    def show_trip(self, trip: Trip) -> None:
        """Show ``trip``: its text and, when training paused, a button per fix and "Resume as it is"."""
        self.trip = trip
        self.label.setText(trip.html())
        for b in self.buttons:
            self.buttons_row.removeWidget(b)
            b.deleteLater()
        self.buttons = []
        if not trip.auto:
            for label, name, value in trip.actions:
                self._add(f"{label[:1].upper()}{label[1:]} and resume", name, value, f"Set {name} to {value:.3g}, then resume")
            self._add("Resume as it is", "", 0.0, "Resume from the rolled-back state without changing anything")
        self.buttons_row.addStretch(1)
        self.buttons_row.addWidget(self.dismiss_button)
        self.show()

    def _add(self, text: str, name: str, value: float, tip: str) -> None:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.clicked.connect(lambda _=False: self._chosen(name, value))
        self.buttons_row.addWidget(button)
        self.buttons.append(button)

    def _chosen(self, name: str, value: float) -> None:
        self.hide()
        self.fix_chosen.emit(name, value)
