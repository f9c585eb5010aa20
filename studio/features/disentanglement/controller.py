"""The Disentanglement panel's controller: live MIG, FactorVAE, DCI and SAP, and the MI heat map."""

from __future__ import annotations

from PySide6.QtCore import QObject

from engines.shared import protocol
from studio.features.disentanglement.view import DisentanglementPanel
from studio.services import Services


class DisentanglementController(QObject):
    """Drives a :class:`DisentanglementPanel`.

    Parameters
    ----------
    services : Services
    """

    def __init__(self, services: Services, parent: QObject | None = None) -> None:
        super().__init__(parent or services)
        self.services = services
        self.view = DisentanglementPanel()
        services.model_changed.connect(self._on_model)
        services.client.disentanglement.connect(self.view.add_disentanglement)
        c = services.client  # the clock under the panel: the latest measurement's age, the next one's due time
        c.disentanglement.connect(lambda event: self.view.clock.measured(event.step, event.seconds))
        c.state_changed.connect(lambda state: self.view.clock.set_training(state == "training"))
        c.metrics.connect(lambda _e: self.view.clock.set_step(c.step))

    def _on_model(self, ready: protocol.Ready, fresh: bool) -> None:
        if fresh:
            self.view.clear()
            self.view.clock.reset()
        self.view.set_data(ready.data, ready.latent.names)
