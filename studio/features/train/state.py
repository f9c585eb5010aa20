"""The Train panel's Qt-free part: which buttons a worker state enables, and the progress text."""

from __future__ import annotations

#: The training buttons, in the order shown, with their labels.
BUTTONS = {"start": "Start", "pause": "Pause", "resume": "Resume", "stop": "Stop"}

#: Which buttons each client state enables.
ENABLED = {
    "ready": {"start"},
    "training": {"pause", "stop"},
    "paused": {"resume", "stop"},
}

#: The client states in which the live hyperparameters can be changed.
HYPER_STATES = ("ready", "training", "paused")


def enabled_buttons(state: str) -> dict[str, bool]:
    """Button name -> whether it is enabled in client ``state`` (see :data:`studio.client.STATES`)."""
    on = ENABLED.get(state, set())
    return {name: name in on for name in BUTTONS}


def hyper_enabled(state: str) -> bool:
    """Whether the live hyperparameter controls are usable in client ``state``."""
    return state in HYPER_STATES


def step_text(step: int) -> str:
    """The steps done, with thousands separators."""
    return f"{step:,}"


def speed_text(steps_per_sec: float, images_per_sec: float | None = None) -> str:
    """``"12.3 steps/s, 789 images/s"`` (the images only when known and non-zero)."""
    images = f", {images_per_sec:,.0f} images/s" if images_per_sec else ""
    return f"{steps_per_sec:.1f} steps/s{images}"


def device_text(device: str, threads: int) -> str:
    """The worker's device as shown: ``"cpu (4 threads)"`` or ``"cuda"``."""
    return f"{device} ({threads} threads)" if device == "cpu" else device


class TrainProgress:
    """The worker state and the progress the Train panel shows, Qt-free.

    Attributes
    ----------
    state : str
        The client state (``"stopped"`` until the worker says otherwise).
    step : int
        Steps done.
    steps_per_sec, images_per_sec : float or None
        The latest training speed (None before the first measurement).
    """

    def __init__(self) -> None:
        self.state = "stopped"
        self.step = 0
        self.steps_per_sec: float | None = None
        self.images_per_sec: float | None = None

    def set_state(self, state: str) -> dict[str, bool]:
        """Take a client state; the buttons it enables (:func:`enabled_buttons`)."""
        self.state = str(state)
        return enabled_buttons(self.state)

    def set_progress(self, step: int, steps_per_sec: float | None = None, images_per_sec: float | None = None) -> None:
        """Take the steps done and, when measured, the speed."""
        self.step = int(step)
        if steps_per_sec is not None:
            self.steps_per_sec, self.images_per_sec = steps_per_sec, images_per_sec

    def step_text(self) -> str:
        return step_text(self.step)

    def speed_text(self) -> str:
        """The speed shown ("" before the first measurement)."""
        return "" if self.steps_per_sec is None else speed_text(self.steps_per_sec, self.images_per_sec)
