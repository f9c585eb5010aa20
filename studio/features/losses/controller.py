"""The Losses panel's controller: every StepMetrics into the history, a marker at every hyperparameter change."""

from __future__ import annotations

from PySide6.QtCore import QObject

from engines.shared import protocol
from studio.features.losses.view import LossPlotPanel
from studio.services import Services
from studio.state import LossHistory
from studio.widgets.basic import FpsCounter


class LossesController(QObject):
    """Drives a :class:`LossPlotPanel` over ``history``.

    Parameters
    ----------
    services : Services
    history : LossHistory
        The window's loss history (other features read it too).
    fps : FpsCounter, optional
    """

    def __init__(self, services: Services, history: LossHistory, fps: FpsCounter | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent or services)
        self.services, self.history = services, history
        self.view = LossPlotPanel(history, fps=fps)
        self.view.hold = services.interacting  # a slider is moving: redraw at most once a second
        services.model_changed.connect(self._on_model)
        services.client.metrics.connect(self.view.add_metrics)
        services.client.hyper_changed.connect(self._on_hyper_changed)

    def _on_model(self, ready: protocol.Ready, fresh: bool) -> None:
        if fresh:
            self.view.clear()
        else:
            self.view.truncate(ready.step)

    def _on_hyper_changed(self, event: protocol.HyperparameterChanged) -> None:
        self.view.add_marker(event.step, f"{event.name}={event.value:.3g}")
