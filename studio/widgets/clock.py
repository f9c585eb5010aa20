"""When a live measurement was last taken and when the next is due, so a slow panel never looks current.

The worker measures coverage and disentanglement on its low-priority metrics thread every so many
seconds of training; on a busy CPU a measurement can wait. The clock under each panel says how old
the latest one is and whether the next is due or overdue, updated every second.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QWidget

from engines.shared.protocol import METRIC_COST_FACTOR


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def clock_text(interval: float, training: bool, now: float, last_time: float | None, last_step: int | None,
               waited: float, step: int | None = None, cost: float = 0.0) -> str:
    """The clock's line.

    Parameters
    ----------
    interval : float
        Seconds of training between measurements; 0 is off.
    training : bool
        Whether the model is training now (measurements fall due only then).
    now, last_time : float
        ``time.monotonic()`` now and at the latest measurement (None: none yet).
    last_step, step : int or None
        The step of the latest measurement, and the model's step now.
    waited : float
        Seconds of training since the latest measurement (or since the model was built).
    cost : float
        Wall seconds the latest measurement took: the worker spaces measurements by at least
        :data:`~engines.shared.protocol.METRIC_COST_FACTOR` times it, and the line says so.
    """
    if interval <= 0:
        return "measurements off"
    parts = []
    if last_time is not None:
        behind = (f", {step - last_step:,} steps behind" if step is not None and last_step is not None
                  and step > last_step else "")
        parts.append(f"last at step {last_step:,}, {_ago(now - last_time)} ago{behind}")
    else:
        parts.append("none yet")
    spacing = max(interval, METRIC_COST_FACTOR * cost)
    left = spacing - waited
    if spacing > interval:
        parts.append(f"every {_ago(spacing)}: {METRIC_COST_FACTOR:g}x its {cost:.1f} s cost")
    if not training:
        parts.append("next after " + (f"{_ago(left)} more training" if left > 0 else "training resumes"))
    elif left >= 0:
        parts.append(f"next in {_ago(left)}")
    else:
        parts.append(f"next overdue by {_ago(-left)} (the worker measures when training leaves it the CPU)")
    return "; ".join(parts)


class MeasureClock(QLabel):
    """A one-line label: the latest measurement's age and step, and when the next is due (:func:`clock_text`).

    Parameters
    ----------
    interval : float
        The schedule in seconds of training (0: off); :meth:`set_interval` changes it.
    """

    def __init__(self, interval: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setStyleSheet("color: #9e9e9e")
        self.setToolTip("When the latest measurement was taken, and when the next is due "
                        "(the schedule counts seconds of training)")
        self.interval, self.training = float(interval), False
        self.last_time: float | None = None
        self.last_step: int | None = None
        self.step: int | None = None
        self.cost = 0.0  # wall seconds of the latest measurement
        self._waited = 0.0  # training seconds before the current run, since the latest measurement
        self._run_start: float | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self.refresh()

    def waited(self, now: float | None = None) -> float:
        """Seconds of training since the latest measurement (or the model's build)."""
        now = time.monotonic() if now is None else now
        return self._waited + (now - self._run_start if self._run_start is not None else 0.0)

    def set_interval(self, seconds: float) -> None:
        """A new schedule (seconds of training; 0: off)."""
        self.interval = float(seconds)
        self.refresh()

    def set_training(self, training: bool) -> None:
        """Training started or stopped: the wait for the next measurement runs only while it trains."""
        now = time.monotonic()
        if training and self._run_start is None:
            self._run_start = now
        elif not training and self._run_start is not None:
            self._waited += now - self._run_start
            self._run_start = None
        self.training = bool(training)
        self.refresh()

    def set_step(self, step: int) -> None:
        """The model's step now (to say how far behind the latest measurement is)."""
        self.step = int(step)

    def measured(self, step: int, seconds: float = 0.0) -> None:
        """A measurement arrived, taken at ``step``, that took ``seconds`` of wall time."""
        now = time.monotonic()
        self.cost = max(0.0, float(seconds))
        self.last_time, self.last_step = now, int(step)
        self._waited = 0.0
        self._run_start = now if self.training else None
        self.refresh()

    def reset(self) -> None:
        """A new model: nothing measured, no training yet."""
        self.last_time = self.last_step = self.step = None
        self.cost = self._waited = 0.0
        self._run_start = time.monotonic() if self.training else None
        self.refresh()

    def refresh(self) -> None:
        """Redraw the line (every second by the timer)."""
        now = time.monotonic()
        self.setText(clock_text(self.interval, self.training, now, self.last_time, self.last_step,
                                self.waited(now), self.step, self.cost))
