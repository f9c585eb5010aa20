"""The training timeline: weight snapshots every N steps, on disk and bounded, to scrub back through and branch from.

Every ``every`` steps the trainer writes the live model as a full checkpoint, resume state included (so
a branch continues exactly), to ``<run folder>/timeline/step-<step>.safetensors``. When the snapshots
pass ``max_bytes`` the one closest to its neighbours goes (never the first or the last): the timeline
keeps covering the whole run ever more sparsely instead of forgetting its start.

Scrubbing (:class:`Scrubber`) decodes the run's fixed z grid and the Explore point by the model as it
was at a snapshot, on a thread of its own where only the newest request is served (a slider drag sends
many). "Branch from here" is a :class:`~engines.shared.protocol.LoadCheckpoint` of a snapshot: it opens
as a new run beside the old one.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engines.shared import protocol as P
from engines.shared.errors import ConfigError

#: Default steps between snapshots.
EVERY = 250
#: Default disk budget of one run's timeline, bytes.
MAX_BYTES = 512 * 2**20
#: Samples drawn for a model without a latent (pixel by pixel), per scrub.
SAMPLES_WITHOUT_LATENT = 16
_NAME = re.compile(r"^step-(\d{9})\.safetensors$")


class Timeline:
    """The snapshots of one run (module docstring).

    Parameters
    ----------
    folder : Path
        Where they go (made when the first is written); snapshots already there are listed.
    every : int
        Steps between snapshots, >= 1.
    max_bytes : int
        Disk budget; at least two snapshots are kept whatever their size.

    Raises
    ------
    ConfigError
        ``every`` or ``max_bytes`` out of range.
    """

    def __init__(self, folder: Path, every: int = EVERY, max_bytes: int = MAX_BYTES) -> None:
        self.folder = Path(folder)
        self.configure(every, max_bytes)
        self._entries: dict[int, tuple[Path, int]] = {}
        if self.folder.is_dir():
            for path in self.folder.iterdir():
                m = _NAME.match(path.name)
                if m and path.is_file():
                    self._entries[int(m.group(1))] = (path, path.stat().st_size)
        self._last = max(self._entries, default=-1)

    def configure(self, every: int, max_bytes: int) -> None:
        """Change the spacing and the budget (takes effect at the next snapshot)."""
        if not isinstance(every, int) or not 1 <= every <= 10**9:
            raise ConfigError(f"timeline: steps between snapshots must be from 1 to 1e9, not {every!r}")
        if not isinstance(max_bytes, int) or not 2**20 <= max_bytes <= 2**44:
            raise ConfigError(f"timeline: the disk budget must be from 1 MB to 16 TB, not {max_bytes!r} bytes")
        self.every, self.max_bytes = every, max_bytes

    @property
    def steps(self) -> list[int]:
        return sorted(self._entries)

    @property
    def nbytes(self) -> int:
        return sum(size for _, size in self._entries.values())

    def path_at(self, step: int) -> Path:
        """The snapshot file of ``step``.

        Raises
        ------
        ConfigError
            No snapshot at that step (it may have been thinned out).
        """
        entry = self._entries.get(int(step))
        if entry is None or not entry[0].is_file():
            raise ConfigError(f"timeline: no snapshot at step {step:,} (the timeline has {len(self._entries)})")
        return entry[0]

    def due(self, step: int) -> bool:
        """Whether the model at ``step`` (steps done) should be kept."""
        return step > 0 and step not in self._entries and (self._last < 0 or step - self._last >= self.every
                                                            or step < self._last)

    def save(self, session: Any) -> Path:
        """Write ``session``'s model as the snapshot of its step, then thin to the budget; the file."""
        from engines.lib.checkpoint import save_checkpoint

        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"step-{session.step:09d}.safetensors"
        save_checkpoint(session.engine, path, step=session.step, data_spec=session.data_spec,
                        image_size=session.image_size, extra=session.manifest_extra(), manifest_beside=False,
                        resume=session.capture_resume())
        for later in [s for s in self._entries if s > session.step]:  # a rollback's future
            self._drop(later)
        self._entries[session.step] = (path, path.stat().st_size)
        self._last = session.step
        self._thin()
        return path

    def _drop(self, step: int) -> None:
        path, _ = self._entries.pop(step)
        path.unlink(missing_ok=True)

    def _thin(self) -> None:
        while len(self._entries) > 2 and self.nbytes > self.max_bytes:
            steps = self.steps
            gaps = [steps[i + 1] - steps[i - 1] for i in range(1, len(steps) - 1)]
            self._drop(steps[1 + int(np.argmin(gaps))])

    def event(self) -> P.TimelineChanged:
        """What the window shows: the steps kept, the bytes used and the budget."""
        return P.TimelineChanged(steps=np.asarray(self.steps, np.int64), nbytes=int(self.nbytes),
                                 max_bytes=int(self.max_bytes), every=int(self.every), folder=str(self.folder))


class Scrubber:
    """Serves :class:`~engines.shared.protocol.ScrubTimeline` on a thread of its own, newest request only.

    Parameters
    ----------
    send : callable
        Sends one event (thread-safe).
    device : torch.device
        Where snapshots are decoded.
    """

    def __init__(self, send: Callable[[P.Event], None], device: torch.device) -> None:
        self._send, self._device = send, device
        self._cv = threading.Condition()
        self._pending: tuple[P.ScrubTimeline, Path, np.ndarray | None] | None = None
        self._closed = False
        self._cache: tuple[Path, Any] | None = None  # the last snapshot loaded
        self._thread = threading.Thread(target=self._run, name="timeline", daemon=True)
        self._thread.start()

    def submit(self, cmd: P.ScrubTimeline, path: Path, fixed_z: np.ndarray | None) -> None:
        """Decode ``fixed_z`` (the run's grid) and ``cmd.z`` at the snapshot ``path``; replaces a waiting request."""
        with self._cv:
            self._pending = (cmd, path, fixed_z)
            self._cv.notify_all()

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    def _run(self) -> None:
        from engines.worker.host import error_event

        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._pending is not None or self._closed)
                if self._closed:
                    return
                job, self._pending = self._pending, None
            try:
                self._send(self._frame(*job))
            except Exception as exc:  # noqa: BLE001 - a bad request must not end the thread
                self._send(error_event(exc, "ScrubTimeline"))

    def _frame(self, cmd: P.ScrubTimeline, path: Path, fixed_z: np.ndarray | None) -> P.TimelineFrame:
        from engines.lib.checkpoint import load_checkpoint
        from engines.worker.host import to_numpy

        if self._cache is None or self._cache[0] != path:
            engine, _ = load_checkpoint(path, device=self._device, with_optimizer=False)
            engine.eval()
            self._cache = (path, engine)
        engine = self._cache[1]
        image = None
        with torch.inference_mode():
            if engine.latent.dim > 0 and fixed_z is not None:
                grid = to_numpy(engine.decode(torch.as_tensor(fixed_z, device=self._device)))
                z = None if cmd.z is None else np.asarray(cmd.z, np.float32).reshape(1, -1)
                if z is not None and z.shape[1] == engine.latent.dim and np.isfinite(z).all():
                    image = to_numpy(engine.decode(torch.from_numpy(z).to(self._device)))[0]
            else:  # drawn pixel by pixel: the same seeded draws at every snapshot
                gen = torch.Generator(device=self._device).manual_seed(0)
                grid = to_numpy(engine.sample(SAMPLES_WITHOUT_LATENT, generator=gen))
        return P.TimelineFrame(request_id=cmd.request_id, step=int(cmd.step), grid=grid.astype(np.float32),
                               image=None if image is None else image.astype(np.float32))
