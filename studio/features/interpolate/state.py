"""The Interpolate tab's Qt-free part: the path's latents as files, and the export suffixes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

#: Export suffix of each kind of the view's export buttons.
SUFFIXES = {"gif": ".gif", "mp4": ".mp4", "strip": ".png"}


def write_path_latents(z: np.ndarray, path: str | Path, meta: dict) -> Path:
    """Write the path's latents as ``<stem>.npy`` (F, D) float32 and ``<stem>.json`` (z and ``meta``).

    Parameters
    ----------
    z : (F, D) float array
    path : path
        Either file name (.npy or .json); both are written beside each other.
    meta : dict
        JSON-able description of the path (keyframes, method, frames, ...), stored beside ``z``.

    Returns
    -------
    Path
        The .npy file.

    Raises
    ------
    ValueError
        If ``z`` is not a finite 2-D array. OSError if a file cannot be written.
    """
    z = np.asarray(z, np.float32)
    if z.ndim != 2 or not np.isfinite(z).all():
        raise ValueError(f"latents must be a finite (F, D) array, not of shape {z.shape}")
    base = Path(path)
    base = base.with_suffix("") if base.suffix.lower() in (".npy", ".json") else base
    npy, js = base.with_name(base.name + ".npy"), base.with_name(base.name + ".json")
    np.save(npy, z, allow_pickle=False)
    js.write_text(json.dumps({**meta, "z": z.astype(float).tolist()}, indent=1, allow_nan=False), encoding="utf-8")
    return npy
