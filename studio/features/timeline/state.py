"""The timeline feature's Qt-free part: the run's snapshots and where the user stands among them."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class TimelineState:
    """The snapshots the worker keeps (:class:`~engines.shared.protocol.TimelineChanged`) and the scrubbed one.

    The slider has one position per snapshot and a last one for "now" (live): :attr:`index` is a
    snapshot's position, or ``len(steps)`` when live.

    Examples
    --------
    >>> t = TimelineState()
    >>> t.update(np.array([250, 500]), nbytes=3 * 2**20, max_bytes=512 * 2**20, every=250, folder="/r/timeline")
    >>> t.live, t.step_at(0), t.label()
    (True, 250, 'live · 2 snapshots, every 250 steps · 3.0 of 512 MB on disk')
    """

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.nbytes = self.max_bytes = self.every = 0
        self.folder = ""
        self.index = 0

    @property
    def live(self) -> bool:
        return self.index >= len(self.steps)

    def update(self, steps: np.ndarray | None, nbytes: int, max_bytes: int, every: int, folder: str) -> None:
        """New snapshots; a scrubbed position stays on its step when that snapshot is still kept, else goes live."""
        was = None if self.live else self.steps[self.index]
        self.steps = [] if steps is None else [int(s) for s in np.asarray(steps).reshape(-1)]
        self.nbytes, self.max_bytes, self.every, self.folder = int(nbytes), int(max_bytes), int(every), str(folder)
        self.index = self.steps.index(was) if was in self.steps else len(self.steps)

    def step_at(self, index: int) -> int | None:
        """The step of snapshot ``index``; None for the live position."""
        return self.steps[index] if 0 <= index < len(self.steps) else None

    def path_at(self, step: int) -> Path:
        """The snapshot file of ``step`` (what "Branch from here" opens)."""
        return Path(self.folder) / f"step-{int(step):09d}.safetensors"

    def label(self) -> str:
        """Where the slider stands and what the timeline holds, in one line."""
        held = (f"{len(self.steps)} snapshot{'s' if len(self.steps) != 1 else ''}, every {self.every:,} steps · "
                f"{self.nbytes / 2**20:.1f} of {self.max_bytes / 2**20:.0f} MB on disk")
        if self.live:
            return f"live · {held}"
        return f"step {self.steps[self.index]:,} (snapshot {self.index + 1} of {len(self.steps)}) · {held}"
