"""The worker's trust features, beside the serve loop: the watchdog's settings and what it hears from the
metrics thread, and the timeline of the hosted run (:mod:`engines.worker.watchdog`, :mod:`engines.worker.timeline`).

:class:`Trust` owns one :class:`~engines.worker.watchdog.Watchdog` for the worker's life, and a
:class:`~engines.worker.timeline.Timeline` per hosted run; the serve loop's dispatch table routes
SetWatchdog, SetTimeline and ScrubTimeline to its handlers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engines.shared import protocol as P
from engines.shared.errors import ConfigError
from engines.worker.timeline import EVERY, MAX_BYTES, Scrubber, Timeline
from engines.worker.watchdog import Watchdog, WatchdogSettings


class Trust:
    """The watchdog and the timeline of one worker.

    Parameters
    ----------
    send : callable
        Sends one event (thread-safe).
    device : torch.device
    in_trainer : callable
        ``in_trainer(command, action)`` runs ``action`` between two training steps (or now, when idle),
        reporting its errors as the command's.
    """

    def __init__(self, send: Callable[[P.Event], None], device: torch.device,
                 in_trainer: Callable[[P.Command, Callable[[], None]], None]) -> None:
        self.send, self._in_trainer = send, in_trainer
        self.watchdog = Watchdog()
        self.timeline: Timeline | None = None
        self._every, self._max_bytes = EVERY, MAX_BYTES
        self._fixed_z: np.ndarray | None = None
        self._scrubber = Scrubber(send, device)

    def attach(self, session: Any, folder: Path, fixed_z: torch.Tensor | None) -> None:
        """A new run is hosted: forget the old good states; its timeline lives in ``folder`` (listed and sent)."""
        self.watchdog.ring.clear()
        self.watchdog.reset()
        self._fixed_z = None if fixed_z is None else fixed_z.detach().to("cpu").numpy()
        self.timeline = Timeline(folder, self._every, self._max_bytes)
        self.send(self.timeline.event())

    def close(self) -> None:
        self._scrubber.close()

    # -- called from the trainer thread --------------------------------------------------------
    def keep_snapshot(self, session: Any) -> None:
        """Write the timeline's snapshot of ``session`` if one is due; a failure turns the timeline off."""
        timeline = self.timeline
        if timeline is None or not timeline.due(session.step):
            return
        try:
            timeline.save(session)
        except Exception as exc:  # noqa: BLE001 - a full disk must not stop training
            from engines.worker.host import error_event

            self.timeline = None
            self.send(error_event(exc, "timeline"))
            return
        self.send(timeline.event())

    # -- handlers ------------------------------------------------------------------------------
    def set_watchdog(self, cmd: P.SetWatchdog) -> None:
        if not isinstance(cmd.spike_factor, (int, float)) or not 2.0 <= float(cmd.spike_factor) <= 1e12:
            raise ConfigError(f"SetWatchdog.spike_factor must be a number from 2 to 1e12, not {cmd.spike_factor!r}")
        settings = WatchdogSettings(enabled=bool(cmd.enabled), auto_resume=bool(cmd.auto_resume),
                                    spike_factor=float(cmd.spike_factor))
        self._in_trainer(cmd, lambda: setattr(self.watchdog, "settings", settings))

    def set_timeline(self, cmd: P.SetTimeline) -> None:
        if not isinstance(cmd.every, int) or not isinstance(cmd.max_mb, int) or not 1 <= cmd.max_mb <= 2**24:
            raise ConfigError(f"SetTimeline wants whole steps and megabytes (1 to 16,777,216), not "
                              f"{cmd.every!r} and {cmd.max_mb!r}")
        every, max_bytes = cmd.every, cmd.max_mb * 2**20
        Timeline(Path("."), every, max_bytes)  # checks the ranges before anything changes

        def apply() -> None:
            self._every, self._max_bytes = every, max_bytes
            if self.timeline is not None:
                self.timeline.configure(every, max_bytes)
                self.send(self.timeline.event())

        self._in_trainer(cmd, apply)

    def scrub(self, cmd: P.ScrubTimeline) -> None:
        if self.timeline is None:
            raise ConfigError("no timeline: build or open a model and train it first")
        if not isinstance(cmd.step, int):
            raise ConfigError(f"ScrubTimeline.step must be an integer, not {cmd.step!r}")
        self._scrubber.submit(cmd, self.timeline.path_at(cmd.step), self._fixed_z)

    def measured(self, event: P.Event) -> P.Event:
        """A metrics-thread event on its way out: a coverage measurement is shown to the watchdog."""
        if isinstance(event, P.CoverageMeasured) and event.result is not None:
            covered = getattr(event.result, "modes_captured", getattr(event.result, "classes_covered_any", None))
            total = getattr(event.result, "modes_total", getattr(event.result, "classes_total", 0))
            if isinstance(covered, int):
                self.watchdog.report_coverage(event.step, covered, int(total or 0))
        return event
