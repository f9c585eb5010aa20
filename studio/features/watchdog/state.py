"""The watchdog feature's Qt-free part: what a :class:`~engines.shared.protocol.WatchdogTripped` says, in words
and actions."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

#: What each cause is called in the banner.
CAUSES = {"nan": "NaN or inf", "spike": "a spike", "collapse": "a mode collapse"}


@dataclass
class Trip:
    """One trip as the window shows it.

    Attributes
    ----------
    step, rolled_back_to : int
    cause, message : str
    actions : list of (str, str, float)
        Buttons: (label, hyperparameter name, value); each sets the value and resumes training.
    advice : list of str
        What cannot be changed live (build the model again).
    auto : bool
        The worker halved the learning rates and trained on by itself.
    """

    step: int
    rolled_back_to: int
    cause: str
    message: str
    actions: list[tuple[str, str, float]] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    auto: bool = False

    @classmethod
    def from_event(cls, event) -> Trip:  # noqa: ANN001 - a protocol.WatchdogTripped
        actions, advice = [], []
        for row in event.suggestions or []:
            try:
                label, name, value = str(row[0]), str(row[1]), float(row[2])
            except (TypeError, ValueError, IndexError):
                continue
            (actions.append((label, name, value)) if name else advice.append(label))
        return cls(int(event.step), int(event.rolled_back_to), str(event.cause), str(event.message), actions, advice,
                   bool(event.auto))

    def headline(self) -> str:
        """One line for the Messages panel."""
        then = "halved the learning rate and trains on" if self.auto else "paused"
        return (f"Watchdog: {self.message}; rolled back to step {self.rolled_back_to:,} and {then}")

    def html(self) -> str:
        """The banner's rich text (every worker string escaped)."""
        cause = CAUSES.get(self.cause, self.cause)
        then = ("The learning rate was halved and training goes on." if self.auto
                else "Training is paused: change something below, or resume as it is.")
        text = (f"<b>Watchdog caught {html.escape(cause)}:</b> {html.escape(self.message)}. "
                f"Rolled back to step {self.rolled_back_to:,}. {then}")
        if self.advice and not self.auto:
            text += " Also: " + "; ".join(html.escape(a) for a in self.advice) + "."
        return text

    def marker(self) -> str:
        """The loss plot's marker text at the rollback step."""
        return f"rollback ({self.cause} at {self.step:,})"
