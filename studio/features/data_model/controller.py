"""The Data & Model panel's controller: builds a model from the form, shows what was built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QMessageBox

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
        self.view.build_requested.connect(self.ask_build)
        self.view.build_button.setFocusPolicy(Qt.FocusPolicy.TabFocus)  # disabled by its click: no focus jump
        #: The open "discard the trained model?" question, if any (window-modal, answered asynchronously).
        self.confirm: QMessageBox | None = None
        self._on_state(c.state)

    def ask_build(self, command: protocol.Configure) -> None:
        """"Build model" pressed: build at once, or first ask before discarding a model that has trained."""
        self.confirm_discard(lambda: self.configure(command), "Building a new one")

    def confirm_discard(self, action: Callable[[], object], doing: str = "Building a new one") -> None:
        """Run ``action`` at once, or, when the model has trained at least one step, after the user agrees.

        The question is window-modal and answered asynchronously (it never blocks the event loop); the
        last autosave and saved checkpoints stay on disk either way.
        """
        client = self.services.client
        if client.step <= 0 or not self.services.has_model():
            action()
            return
        if self.confirm is not None:
            self.confirm.close()
        box = QMessageBox(QMessageBox.Icon.Warning, "Discard the trained model?",
                          f"The current model has trained for {client.step:,} steps. {doing} discards it; "
                          "save a checkpoint first to keep it.",
                          QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
                          self.view.window())
        box.button(QMessageBox.StandardButton.Discard).setText("Discard it")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)

        def answered(button) -> None:  # noqa: ANN001 - the QAbstractButton clicked
            self.confirm = None
            if box.standardButton(button) == QMessageBox.StandardButton.Discard:
                action()

        box.buttonClicked.connect(answered)
        self.confirm = box
        box.open()

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
