"""The Train panel: start, pause, resume and stop training, and tune live hyperparameters."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractSpinBox, QDoubleSpinBox, QFormLayout, QGridLayout, QGroupBox, QLabel, QPushButton, QSpinBox,
    QVBoxLayout, QWidget,
)

from engines.shared import protocol
from engines.shared.spec import HyperParam
from studio.features.train.state import BUTTONS, ENABLED, TrainProgress, hyper_enabled
from studio.widgets.basic import LogSpinBox

#: Which buttons each client state enables (kept under its old name; see :data:`~studio.features.train.state.ENABLED`).
_ENABLED = ENABLED


class TrainPanel(QWidget):
    """Training buttons (enabled by state), one live control per hyperparameter, and speed labels.

    Hyperparameter controls are built from :attr:`Ready.hyper`, so the panel works for any model
    family: a log-scale spin box for ``log`` parameters (learning rates), an integer spin box for
    ``integer`` ones, a decimal spin box otherwise.

    Signals
    -------
    command(Command)
        :class:`Train`, :class:`Pause`, :class:`Resume`, :class:`Stop` or :class:`SetHyperparameter`.
    """

    command = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = TrainProgress()
        self.buttons = {name: QPushButton(label) for name, label in BUTTONS.items()}
        self.buttons["start"].clicked.connect(self._start)
        self.buttons["pause"].clicked.connect(lambda: self.command.emit(protocol.Pause()))
        self.buttons["resume"].clicked.connect(lambda: self.command.emit(protocol.Resume()))
        self.buttons["stop"].clicked.connect(lambda: self.command.emit(protocol.Stop()))
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(0, 10_000_000)
        self.steps_spin.setSingleStep(1000)
        self.steps_spin.setSpecialValueText("until stopped")
        self.steps_spin.setToolTip("Steps to train for when you press Start (0: until Stop)")
        grid = QGridLayout()
        for i, name in enumerate(BUTTONS):
            # two by two: the dock fits a laptop's side column; a click never takes the keyboard focus, so
            # a button disabled by its own click does not hand the focus (and a selection) to "Train for"
            grid.addWidget(self.buttons[name], i // 2, i % 2)
            self.buttons[name].setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.hyper_box = QGroupBox("Live hyperparameters")
        self.hyper_form = QFormLayout(self.hyper_box)
        self.hyper_controls: dict[str, QAbstractSpinBox] = {}
        self.hyper: dict[str, HyperParam] = {}
        self.labels = {k: QLabel("-") for k in ("step", "speed", "device")}
        info = QFormLayout()
        info.addRow("Step", self.labels["step"])
        info.addRow("Speed", self.labels["speed"])
        info.addRow("Device", self.labels["device"])
        form = QFormLayout()
        form.addRow("Train for", self.steps_spin)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addLayout(form)
        layout.addWidget(self.hyper_box)
        layout.addLayout(info)
        layout.addStretch(1)
        self.set_state("stopped")

    def _start(self) -> None:
        steps = self.steps_spin.value()
        self.command.emit(protocol.Train(steps=steps or None))

    def set_state(self, state: str) -> None:
        """Enable the buttons that make sense in a client state (see :data:`studio.client.STATES`)."""
        enabled = self.state.set_state(state)
        for name, button in self.buttons.items():
            button.setEnabled(enabled[name])
        self.hyper_box.setEnabled(hyper_enabled(state))

    # -- hyperparameters -------------------------------------------------------------------------
    def set_hyper(self, params: list[HyperParam]) -> None:
        """Rebuild the controls for a model's live hyperparameters."""
        while self.hyper_form.rowCount():
            self.hyper_form.removeRow(0)
        self.hyper_controls.clear()
        self.hyper = {p.name: p for p in params}
        for p in params:
            control = self._make_control(p)
            self.hyper_controls[p.name] = control
            label = QLabel(p.name)
            label.setToolTip(p.doc)
            self.hyper_form.addRow(label, control)
        if not params:
            self.hyper_form.addRow(QLabel("(none for this model)"))

    def _make_control(self, p: HyperParam) -> QAbstractSpinBox:
        control: QAbstractSpinBox
        if p.log and p.low > 0:
            control = LogSpinBox(p.low, p.high)
            control.setValue(p.value)
            control.valueChanged.connect(lambda v, n=p.name: self._send_hyper(n, v))
        elif p.integer:
            control = QSpinBox()
            control.setRange(int(math.ceil(p.low)), int(math.floor(min(p.high, 2**31 - 1))))
            control.setValue(int(round(p.value)))
            control.valueChanged.connect(lambda v, n=p.name: self._send_hyper(n, float(v)))
        else:
            control = QDoubleSpinBox()
            # three significant decimals of the range's scale (weight decay up to 0.01 shows 0.00020, not 0.000)
            control.setDecimals(3 if p.high >= 1 else min(8, 3 - math.floor(math.log10(p.high))) if p.high > 0 else 3)
            control.setRange(p.low, p.high)
            control.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)
            control.setValue(p.value)
            control.valueChanged.connect(lambda v, n=p.name: self._send_hyper(n, float(v)))
        control.setKeyboardTracking(False)  # send on Enter / arrows, not on every key
        control.setToolTip(f"{p.doc} [{p.low:g}, {p.high:g}]".strip())
        return control

    def _send_hyper(self, name: str, value: float) -> None:
        self.command.emit(protocol.SetHyperparameter(name=name, value=float(value)))

    def hyper_changed(self, event: protocol.HyperparameterChanged) -> None:
        """Show the value the worker took (without sending it back)."""
        control = self.hyper_controls.get(event.name)
        if control is None:
            return
        control.blockSignals(True)
        control.setValue(int(round(event.value)) if isinstance(control, QSpinBox) else event.value)
        control.blockSignals(False)

    # -- labels ----------------------------------------------------------------------------------
    def set_progress(self, step: int, steps_per_sec: float | None = None, images_per_sec: float | None = None) -> None:
        """Show the steps done and the training speed (steps/s, images/s)."""
        self.state.set_progress(step, steps_per_sec, images_per_sec)
        self.labels["step"].setText(self.state.step_text())
        if steps_per_sec is not None:
            self.labels["speed"].setText(self.state.speed_text())

    def clear_speed(self) -> None:
        """A new model: no speed measured yet ("-", not the previous model's)."""
        self.state.steps_per_sec = self.state.images_per_sec = None
        self.labels["speed"].setText("-")

    def set_device(self, device: str) -> None:
        """Show the worker's device, e.g. ``"cpu (1 threads)"`` or ``"cuda"``."""
        self.labels["device"].setText(device)
