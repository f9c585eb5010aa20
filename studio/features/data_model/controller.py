"""The Data & Model panel's controller: builds a model from the form, shows what was built."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QObject

from engines.shared import protocol
from studio.features.data_model.state import build_reason
from studio.features.data_model.view import DataModelPanel
from studio.services import Services


class DataModelController(QObject):
    """Drives a :class:`DataModelPanel`: "Build model" sends its :class:`~engines.shared.protocol.Configure`.

    Parameters
    ----------
    services : Services
    """

    def __init__(self, services: Services, parent: QObject | None = None) -> None:
        super().__init__(parent or services)
        self.services = services
        self.view = DataModelPanel()
        c = services.client
        c.ready.connect(self.view.set_ready)
        c.state_changed.connect(self._on_state)
        self.view.build_requested.connect(self.configure)
        self._on_state(c.state)

    def configure(self, command: protocol.Configure | None = None, **overrides) -> protocol.Configure:
        """Build a model: send ``command`` (default: the form's), with field ``overrides``; the command sent."""
        command = command if command is not None else self.view.configure_command()
        if overrides:
            command = replace(command, **overrides)
        self.services.notify(f"Building {command.model} on {command.data} (latent {command.latent_dim}, "
                             f"image size {command.image_size or 'native'}, batch {command.batch_size})", status="")
        self.services.send(command)
        return command

    def _on_state(self, state: str) -> None:
        why = build_reason(state)
        self.view.set_can_build(not why, why)
