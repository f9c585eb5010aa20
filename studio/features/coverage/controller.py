"""The Coverage panel's controller: live mode-coverage measurements, collapse and discriminator warnings."""

from __future__ import annotations

from PySide6.QtCore import QObject

from engines.shared import protocol
from studio.features.coverage.view import CoveragePanel
from studio.services import Services
from studio.state import LossHistory


class CoverageController(QObject):
    """Drives a :class:`CoveragePanel`.

    Parameters
    ----------
    services : Services
    history : LossHistory
        Read after every StepMetrics for the discriminator warnings of a model with a critic.
    """

    def __init__(self, services: Services, history: LossHistory, parent: QObject | None = None) -> None:
        super().__init__(parent or services)
        self.services, self.history = services, history
        self.view = CoveragePanel()
        services.model_changed.connect(self._on_model)
        services.client.coverage.connect(self.view.add_coverage)
        c = services.client  # the clock under the panel: the latest measurement's age, the next one's due time
        c.coverage.connect(lambda event: self.view.clock.measured(event.step, event.ms / 1000.0))
        c.state_changed.connect(lambda state: self.view.clock.set_training(state == "training"))
        c.metrics.connect(lambda _e: self.view.clock.set_step(c.step))
        services.client.metrics.connect(lambda _e: self.view.check_losses(self.history))
        self.view.warning.connect(lambda message: services.notify(message, "warning"))

    def _on_model(self, ready: protocol.Ready, fresh: bool) -> None:
        if fresh:
            self.view.clear()
            self.view.clock.reset()
        self.view.set_data(ready.data, ready.capabilities)
