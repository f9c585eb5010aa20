"""A training time-lapse: the fixed-z sample grids the window receives, kept and exported as GIF or MP4.

While a model trains, the worker decodes the same 64 prior draws every second or so
(:class:`~engines.shared.protocol.Samples` with request id -1). :class:`TimeLapse` keeps those grids as
frames (uint8, at most :data:`MAX_FRAMES`: grid n is kept while n is a multiple of the stride;
when full, the stride doubles and the frames off it are dropped, so the frames stay evenly spread
over training) and writes
them with :mod:`engines.shared.media` on the window's export thread. Its sidecar has kind ``"timelapse"``
and says that it cannot be re-rendered: the past weights are gone.
"""

from __future__ import annotations

import datetime as _dt
import json
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog

from engines.shared import media
from engines.shared import protocol
from engines.shared.imaging import tile

if TYPE_CHECKING:
    from studio.shell.window import MainWindow

#: Most frames kept (memory: a 64-image 8x8 grey grid is 5 kB a frame, a 64x64 RGB one 0.8 MB).
MAX_FRAMES = 240
#: Longest side of exported frames, px (nearest-neighbour upscaling by an integer factor).
EXPORT_SIZE = 512


def grid_frame(images: np.ndarray) -> np.ndarray:
    """One time-lapse frame from a sample grid.

    Parameters
    ----------
    images : (N, C, H, W) float array in [0, 1], or (N, 2) points

    Returns
    -------
    ndarray
        (C, H', W') uint8, the images tiled in a square; or (N, 2) float32 points.

    Raises
    ------
    ValueError
        Any other shape.
    """
    x = np.asarray(images, np.float32)
    if x.ndim == 2 and x.shape[1] == 2:
        return x.copy()
    if x.ndim != 4 or x.shape[1] not in (1, 3) or not len(x):
        raise ValueError(f"expected a grid of shape (N, 1|3, H, W) or (N, 2), not {x.shape}")
    return np.round(np.clip(tile(x), 0.0, 1.0) * 255).astype(np.uint8)


def write_timelapse(frames: np.ndarray, path: str | Path, fps: float, steps: list[int], meta: dict,
                    size: int | None = EXPORT_SIZE, modes: np.ndarray | None = None) -> Path:
    """Write the time-lapse (:func:`engines.shared.media.write_animation`, by suffix) and its sidecar.

    Parameters
    ----------
    frames : (F, C, H, W) float in [0, 1], or (F, N, 2) points
    path : path
        ``.gif`` or ``.mp4`` (``.png``: a strip of the frames).
    fps : float
    steps : list of int
        Training step of each frame, labelled under it.
    meta : dict
        JSON-able additions to the sidecar (model, data).
    size : int or None
        Longest side of a frame, px.
    modes : (M, 2) or None
        Mode centres drawn on point frames.

    Returns
    -------
    Path
        The file written; the sidecar is ``<path>.json`` with kind ``"timelapse"`` and
        ``"renderable": false``.

    Raises
    ------
    ValueError
        No frames, or frames and steps that do not match. OSError if a file cannot be written.
    """
    if len(frames) == 0 or len(frames) != len(steps):
        raise ValueError(f"a time-lapse needs frames, one per step ({len(frames)} frames, {len(steps)} steps)")
    path = Path(path)
    out = media.write_animation(frames, path, fps, size, "nearest", modes, labels=[f"step {s}" for s in steps])
    sidecar = {
        "latent_studio_sidecar": 1, "kind": "timelapse", "output": path.name, "renderable": False,
        "note": "the fixed-z sample grids seen while training; it cannot be re-rendered (past weights are gone)",
        "steps": [int(s) for s in steps], **meta,
        "settings": {"fps": fps, "size": size, "resample": "nearest", "labels": True},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    path.with_name(path.name + ".json").write_text(json.dumps(sidecar, indent=1, allow_nan=False), encoding="utf-8")
    return Path(out)


class TimeLapse(QObject):
    """The frames of a training time-lapse, kept from the window's client's sample grids.

    Parameters
    ----------
    window : MainWindow
        Gives the client (its ``samples`` and ``ready`` signals), the export thread
        (``window._write_png``) and the status bar.
    cap : int
        Most frames kept.

    Signals
    -------
    changed(int)
        The number of frames kept, after each change.

    Attributes
    ----------
    frames : list of ndarray
        (C, H, W) uint8 grids, or (N, 2) float32 points, oldest first.
    steps : list of int
        Training step of each frame.
    stride : int
        Grid n (counted from 0 since the last reset) is kept while n % stride == 0; the stride
        doubles each time the cap is reached.
    """

    changed = Signal(int)

    def __init__(self, window: MainWindow, cap: int = MAX_FRAMES) -> None:
        super().__init__(window)
        self.window, self.cap = window, max(2, int(cap))
        self.frames: list[np.ndarray] = []
        self.steps: list[int] = []
        self.stride, self._seen, self._index = 1, 0, []
        self.modes: np.ndarray | None = None
        self.model = ""
        window.client.samples.connect(self.add)
        window.client.ready.connect(self._on_ready)

    def __len__(self) -> int:
        return len(self.frames)

    def reset(self) -> None:
        """Forget every frame (a new model)."""
        self.frames, self.steps = [], []
        self.stride, self._seen, self._index = 1, 0, []
        self.changed.emit(0)

    def _on_ready(self, ready: protocol.Ready) -> None:
        info = ready.data
        self.modes = np.asarray(info.modes, np.float64) if info.modes else None
        self.model = f"{ready.model} on {ready.data_summary or info.spec}"
        self.reset()

    def add(self, event: protocol.Samples) -> bool:
        """Keep the grid of ``event`` if it is a fixed-z grid (request id -1) due by the stride; True if kept.

        A grid of the step already last replaces it; a grid of another shape (another model)
        starts over.
        """
        if event.request_id != -1 or event.images is None:
            return False
        frame = grid_frame(event.images)
        if self.frames and self.frames[-1].shape != frame.shape:
            self.reset()
        if self.steps and self.steps[-1] == event.step:
            self.frames[-1] = frame
            self.changed.emit(len(self.frames))
            return True
        n = self._seen
        self._seen += 1
        if n % self.stride:
            return False
        self.frames.append(frame)
        self.steps.append(int(event.step))
        self._index.append(n)
        while len(self.frames) > self.cap:  # thin evenly: double the stride, drop the frames off it
            self.stride *= 2
            keep = [i for i, k in enumerate(self._index) if k % self.stride == 0]
            self.frames = [self.frames[i] for i in keep]
            self.steps = [self.steps[i] for i in keep]
            self._index = [self._index[i] for i in keep]
        self.changed.emit(len(self.frames))
        return True

    def array(self) -> np.ndarray:
        """The frames as (F, C, H, W) float32 in [0, 1], or (F, N, 2) points.

        Raises
        ------
        ValueError
            If there is no frame yet.
        """
        if not self.frames:
            raise ValueError("no training time-lapse yet: train a model first")
        x = np.stack(self.frames)
        return x if x.dtype == np.float32 else x.astype(np.float32) / 255.0

    def export(self, path: str | Path, fps: float = 12.0, size: int | None = EXPORT_SIZE) -> Future:
        """Write the time-lapse to ``path`` (.gif or .mp4) and its sidecar on the window's export thread.

        Raises
        ------
        ValueError
            If there is no frame yet or the suffix is not .gif, .mp4 or .png.
        """
        if Path(path).suffix.lower() not in media.SUFFIXES:
            raise ValueError(f"{path}: export a time-lapse to .gif or .mp4")
        frames, steps, modes = self.array(), list(self.steps), self.modes
        meta = {"model": self.model, "frames": len(steps)}
        return self.window._write_png(frames, path, writer=lambda x, p: write_timelapse(x, p, fps, steps, meta,
                                                                                          size, modes))

    def ask_export(self) -> None:
        """Ask for a file name (GIF or MP4) and export."""
        path, _ = QFileDialog.getSaveFileName(self.window, "Export training time-lapse", "timelapse.gif",
                                              "GIF (*.gif);;MP4 video (*.mp4)")
        if not path:
            return
        try:
            self.export(path)
        except ValueError as exc:
            self.window.statusBar().showMessage(str(exc), 5000)
