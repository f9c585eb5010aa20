"""The training time-lapse's Qt-free part: the frames kept from the fixed-z sample grids, and their file.

Frames are uint8 grids, at most :data:`MAX_FRAMES`: grid n is kept while n is a multiple of the
stride; when full, the stride doubles and the frames off it are dropped, so the frames stay evenly
spread over training. The sidecar has kind ``"timelapse"`` and says that it cannot be re-rendered:
the past weights are gone.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import numpy as np

from engines.shared import media
from engines.shared.imaging import tile

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


class Frames:
    """The kept frames of a time-lapse.

    Parameters
    ----------
    cap : int
        Most frames kept.

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

    def __init__(self, cap: int = MAX_FRAMES) -> None:
        self.cap = max(2, int(cap))
        self.reset()

    def __len__(self) -> int:
        return len(self.frames)

    def reset(self) -> None:
        """Forget every frame (a new model)."""
        self.frames: list[np.ndarray] = []
        self.steps: list[int] = []
        self.stride, self._seen, self._index = 1, 0, []

    def add(self, images: np.ndarray, step: int) -> bool:
        """Keep a fixed-z grid (N, C, H, W) or (N, 2) of ``step`` if it is due by the stride; True if kept.

        A grid of the step already last replaces it; a grid of another shape (another model)
        starts over.
        """
        frame = grid_frame(images)
        if self.frames and self.frames[-1].shape != frame.shape:
            self.reset()
        if self.steps and self.steps[-1] == step:
            self.frames[-1] = frame
            return True
        n = self._seen
        self._seen += 1
        if n % self.stride:
            return False
        self.frames.append(frame)
        self.steps.append(int(step))
        self._index.append(n)
        while len(self.frames) > self.cap:  # thin evenly: double the stride, drop the frames off it
            self.stride *= 2
            keep = [i for i, k in enumerate(self._index) if k % self.stride == 0]
            self.frames = [self.frames[i] for i in keep]
            self.steps = [self.steps[i] for i in keep]
            self._index = [self._index[i] for i in keep]
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
