"""Messages of the trust features (re-exported by :mod:`engines.shared.protocol`): the watchdog and the timeline.

- SetWatchdog turns the training watchdog on or off and chooses what it does after a rollback; the
  worker answers a trip with :class:`WatchdogTripped` (:mod:`engines.worker.watchdog`).

numpy and the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engines.shared.codec import Command, Event


@dataclass(frozen=True)
class SetWatchdog(Command):
    """Configure the training watchdog (it is on by default, pausing after a rollback).

    ``auto_resume``: after a rollback, halve every learning rate and train on instead of pausing.
    ``spike_factor``: a loss term or the gradient norm more than this many times its running average trips it
    (at least 2).
    """

    enabled: bool = True
    auto_resume: bool = False
    spike_factor: float = 1000.0


@dataclass(frozen=True)
class WatchdogTripped(Event):
    """Training went wrong at ``step`` and was rolled back to ``rolled_back_to``.

    ``cause`` is "nan" (NaN or inf in a loss term, a parameter or a gradient), "spike" (a loss term or the
    gradient norm far above its running average) or "collapse" (live coverage fell to half its best);
    ``message`` says which and how far; ``suggestions`` are ``[label, hyperparameter name or "", value]``
    rows (a name of "" is advice only); ``auto`` is True when the worker already halved the learning
    rates and trains on, False when it paused.
    """

    step: int = 0
    cause: str = ""
    message: str = ""
    rolled_back_to: int = 0
    suggestions: list = field(default_factory=list)
    auto: bool = False
