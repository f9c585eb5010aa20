"""The watchdog feature: the banner after a rollback, its fixes sent to the worker, and the watchdog's settings.

The worker rolls training back to its last good state when a loss, parameter or gradient goes NaN or
spikes, or coverage collapses (:mod:`engines.worker.watchdog`), and says so with
:class:`~engines.shared.protocol.WatchdogTripped`; this controller shows it, marks the loss plot (through
``marker``, which the shell connects) and sends the fix the user picks.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from engines.shared import protocol
from studio.features.watchdog.state import Trip
from studio.features.watchdog.view import WatchdogBanner
from studio.services import Services


class WatchdogController(QObject):
    """Drives a :class:`WatchdogBanner`.

    Signals
    -------
    marker(int step, str text)
        A rollback to mark on the loss plot.
    tripped(object)
        The :class:`~studio.features.watchdog.state.Trip`, for the Messages panel.
    """

    marker = Signal(int, str)
    tripped = Signal(object)

    def __init__(self, services: Services, parent: QObject | None = None) -> None:
        super().__init__(parent or services)
        self.services = services
        self.view = WatchdogBanner()
        self.enabled, self.auto_resume = True, False
        self.trips: list[Trip] = []
        self.view.fix_chosen.connect(self.apply_fix)
        services.client.event_received.connect(self._on_event)
        services.model_changed.connect(lambda *_: self.view.hide())
        services.client.started.connect(self._on_started)

    def _on_started(self, _event: protocol.Started) -> None:
        if (self.enabled, self.auto_resume) != (True, False):  # a restarted worker starts with the defaults
            self.configure()

    def _on_event(self, event: protocol.Event) -> None:
        if not isinstance(event, protocol.WatchdogTripped):
            return
        trip = Trip.from_event(event)
        self.trips.append(trip)
        self.view.show_trip(trip)
        self.marker.emit(trip.rolled_back_to, trip.marker())
        self.tripped.emit(trip)

    def apply_fix(self, name: str, value: float) -> None:
        """Set hyperparameter ``name`` to ``value`` ("" for none), then resume training."""
        if name:
            self.services.send(protocol.SetHyperparameter(name=name, value=float(value)))
        self.services.send(protocol.Resume())

    def configure(self, enabled: bool | None = None, auto_resume: bool | None = None) -> bool:
        """Turn the watchdog on or off, and choose whether it resumes by itself with the learning rate halved."""
        if enabled is not None:
            self.enabled = bool(enabled)
        if auto_resume is not None:
            self.auto_resume = bool(auto_resume)
        return self.services.send(protocol.SetWatchdog(enabled=self.enabled, auto_resume=self.auto_resume))
