"""Messages of the trust features (re-exported by :mod:`engines.shared.protocol`): the watchdog and the timeline.

- SetWatchdog turns the training watchdog on or off and chooses what it does after a rollback; the
  worker answers a trip with :class:`WatchdogTripped` (:mod:`engines.worker.watchdog`).
- The timeline (:mod:`engines.worker.timeline`): the worker sends :class:`TimelineChanged` after Ready and
  after each snapshot; SetTimeline sets the spacing and the disk budget; ScrubTimeline is answered by
  :class:`TimelineFrame` (the newest request only); a branch is a LoadCheckpoint of a snapshot's file.

numpy and the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engines.shared.codec import Command, Event


def _arr(default: Any = None) -> Any:
    return field(default=default, compare=False)


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


@dataclass(frozen=True)
class SetTimeline(Command):
    """Keep a weight snapshot every ``every`` steps, within ``max_mb`` megabytes of disk for the run."""

    every: int = 250
    max_mb: int = 512


@dataclass(frozen=True)
class TimelineChanged(Event):
    """The run's snapshots: ``steps`` (K,) int64 ascending, ``nbytes`` used of ``max_bytes``, one every
    ``every`` steps (sparser where thinned to the budget), in ``folder`` (``step-<step>.safetensors`` each)."""

    steps: np.ndarray | None = _arr()
    nbytes: int = 0
    max_bytes: int = 0
    every: int = 0
    folder: str = ""


@dataclass(frozen=True)
class ScrubTimeline(Command):
    """Decode the run's fixed z grid and ``z`` (D,) float32 (the Explore point; None: the grid only) by the
    model as it was at snapshot ``step``; answered by :class:`TimelineFrame` (only the newest request)."""

    request_id: int = 0
    step: int = 0
    z: np.ndarray | None = _arr()


@dataclass(frozen=True)
class TimelineFrame(Event):
    """The model at snapshot ``step``: ``grid`` (N, C, H, W) in [0, 1] (or (N, 2) points) from the run's fixed
    z (seeded draws for a model without a latent) and ``image`` (C, H, W) decoded from the asked z, or None."""

    request_id: int = 0
    step: int = 0
    grid: np.ndarray | None = _arr()
    image: np.ndarray | None = _arr()
