"""A training time-lapse: the fixed-z sample grids the window receives, kept and exported as GIF or MP4.

While a model trains, the worker decodes the same 64 prior draws every second or so
(:class:`~engines.shared.protocol.Samples` with request id -1). :class:`TimeLapse` keeps those grids
(:class:`~studio.features.timelapse.state.Frames`) and writes them with :mod:`engines.shared.media`
on the export thread.
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from engines.shared import media, protocol
from studio.features.timelapse.state import EXPORT_SIZE, MAX_FRAMES, Frames, write_timelapse
from studio.services import Services


class TimeLapse(QObject):
    """The frames of a training time-lapse, kept from the client's sample grids.

    Parameters
    ----------
    services : Services
    cap : int
        Most frames kept.

    Signals
    -------
    changed(int)
        The number of frames kept, after each change.
    """

    changed = Signal(int)

    def __init__(self, services: Services, cap: int = MAX_FRAMES, parent: QObject | None = None) -> None:
        super().__init__(parent or services)
        self.services = services
        self.state = Frames(cap)
        self.modes: np.ndarray | None = None
        self.model = ""
        services.client.samples.connect(self.add)
        services.client.ready.connect(self._on_ready)

    def __len__(self) -> int:
        return len(self.state)

    @property
    def stride(self) -> int:
        """See :class:`Frames`."""
        return self.state.stride

    @property
    def frames(self) -> list[np.ndarray]:
        """The frames kept, oldest first (see :class:`Frames`)."""
        return self.state.frames

    @property
    def steps(self) -> list[int]:
        """Training step of each frame kept."""
        return self.state.steps

    def reset(self) -> None:
        """Forget every frame (a new model)."""
        self.state.reset()
        self.changed.emit(0)

    def _on_ready(self, ready: protocol.Ready) -> None:
        info = ready.data
        self.modes = np.asarray(info.modes, np.float64) if info.modes else None
        self.model = f"{ready.model} on {ready.data_summary or info.spec}"
        self.reset()

    def add(self, event: protocol.Samples) -> bool:
        """Keep the grid of ``event`` if it is a fixed-z grid (request id -1) due by the stride; True if kept."""
        if event.request_id != -1 or event.images is None:
            return False
        kept = self.state.add(event.images, event.step)
        if kept:
            self.changed.emit(len(self.state))
        return kept

    def array(self) -> np.ndarray:
        """:meth:`Frames.array`."""
        return self.state.array()

    def export(self, path: str | Path, fps: float = 12.0, size: int | None = EXPORT_SIZE) -> Future:
        """Write the time-lapse to ``path`` (.gif or .mp4) and its sidecar on the export thread.

        Raises
        ------
        ValueError
            If there is no frame yet or the suffix is not .gif, .mp4 or .png.
        """
        if Path(path).suffix.lower() not in media.SUFFIXES:
            raise ValueError(f"{path}: export a time-lapse to .gif or .mp4")
        frames, steps, modes = self.array(), list(self.state.steps), self.modes
        meta = {"model": self.model, "frames": len(steps)}
        return self.services.write(frames, path, lambda x, p: write_timelapse(x, p, fps, steps, meta, size, modes))

    def ask_export(self, parent: QWidget | None = None) -> None:
        """Ask for a file name (GIF or MP4) and export."""
        path, _ = QFileDialog.getSaveFileName(parent, "Export training time-lapse", "timelapse.gif",
                                              "GIF (*.gif);;MP4 video (*.mp4)")
        if not path:
            return
        try:
            self.export(path)
        except ValueError as exc:
            self.services.notify("", status=str(exc))
