"""The Train panel's controller: start, pause, resume, stop; live hyperparameters; progress."""

from __future__ import annotations

from PySide6.QtCore import QObject

from engines.shared import protocol
from studio.features.train.state import device_text
from studio.features.train.view import TrainPanel
from studio.services import Services


class TrainController(QObject):
    """Drives a :class:`TrainPanel`: its commands go to the worker, the worker's state and rates come back.

    Parameters
    ----------
    services : Services
    """

    def __init__(self, services: Services, parent: QObject | None = None) -> None:
        super().__init__(parent or services)
        self.services = services
        self.view = TrainPanel()
        c = services.client
        c.state_changed.connect(self.view.set_state)
        c.started.connect(self._on_started)
        c.ready.connect(self._on_ready)
        c.metrics.connect(self._on_metrics)
        c.hyper_changed.connect(self._on_hyper_changed)
        self.view.command.connect(services.send)
        self.view.set_state(c.state)

    def train(self, steps: int | None = None) -> bool:
        """Start (or extend) training for ``steps`` steps; None trains until Stop."""
        return self.services.send(protocol.Train(steps=steps))

    def _on_started(self, event: protocol.Started) -> None:
        self.view.set_device(device_text(event.device, event.threads))

    def _on_ready(self, ready: protocol.Ready) -> None:
        self.view.set_hyper(list(ready.hyper))
        self.view.clear_speed()
        self.view.set_progress(ready.step)

    def _on_metrics(self, event: protocol.StepMetrics) -> None:
        step = int(event.steps[-1]) + 1 if event.steps is not None and len(event.steps) else self.services.client.step
        self.view.set_progress(step, event.steps_per_sec, event.images_per_sec)

    def _on_hyper_changed(self, event: protocol.HyperparameterChanged) -> None:
        self.view.hyper_changed(event)
        self.services.notify(f"{event.name} = {event.value:g} from step {event.step:,}", status="")
