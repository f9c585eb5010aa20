"""The checks of an export's JSON sidecar (the format is in :mod:`engines.lib.export`'s docstring).

A sidecar is untrusted input (a user may hand us one): :func:`validate` checks every field's type and
range and fills in the defaults, before anything is decoded; each error is an ExportError naming the
sidecar and the field.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engines.lib.latent import METHODS
from engines.shared.errors import ExportError
from engines.shared.media import SUFFIXES
from engines.shared.protocol import MAX_FRAMES, MAX_REQUEST, MAX_STEPS

SIDECAR_VERSION = 1
KINDS = ("interpolation", "traversal", "morph", "samples")
#: Most bytes the frames of one export may need at their written size (RGB, 8 bits).
MAX_EXPORT_BYTES = 4 << 30
DEFAULT_SETTINGS = {"fps": 12, "size": None, "resample": "nearest", "labels": False}


def _vec(v: Any, what: str, where: str) -> list[float]:
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise ExportError(f"{where}: {what} must be a list of numbers") from None
    if a.ndim != 1 or a.size < 1 or not np.isfinite(a).all():
        raise ExportError(f"{where}: {what} must be a non-empty list of finite numbers, not of shape {a.shape}")
    return [float(x) for x in a]


def _mat(v: Any, what: str, where: str, least: int = 1) -> list[list[float]]:
    if not isinstance(v, (list, tuple, np.ndarray, torch.Tensor)) or len(v) < least:
        raise ExportError(f"{where}: {what} must be a list of at least {least} latent vectors")
    rows = [_vec(r, f"{what}[{i}]", where) for i, r in enumerate(v)]
    if len({len(r) for r in rows}) != 1:
        raise ExportError(f"{where}: the vectors of {what} differ in length")
    return rows


def _int(v: Any, what: str, where: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= int(v) <= hi:
        raise ExportError(f"{where}: {what} must be an integer in [{lo}, {hi}], not {v!r}")
    return int(v)


def _num(v: Any, what: str, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
        raise ExportError(f"{where}: {what} must be a finite number, not {v!r}")
    return float(v)


def _check_latents(kind: str, lat: Any, where: str) -> dict:
    """The kind's latents with defaults filled in, as plain JSON values; ExportError otherwise."""
    if not isinstance(lat, dict):
        raise ExportError(f"{where}: 'latents' must be an object")
    if kind == "interpolation":
        keys = _mat(lat.get("keyframes"), "keyframes", where, least=2)
        method = lat.get("method", "lerp")
        if method not in METHODS:
            raise ExportError(f"{where}: unknown method {method!r}; use one of {', '.join(METHODS)}")
        frames = _int(lat.get("frames"), "frames", where, len(keys), MAX_FRAMES)
        return {"keyframes": keys, "method": method, "frames": frames,
                "constant_speed": bool(lat.get("constant_speed", False))}
    if kind == "traversal":
        z = None if lat.get("z") is None else _vec(lat["z"], "z", where)
        index = None if lat.get("index") is None else _int(lat["index"], "index", where, 0, 10**9)
        dims = lat.get("dims")
        if dims is not None:
            if not isinstance(dims, (list, tuple)) or not dims:
                raise ExportError(f"{where}: dims must be a non-empty list of integers or null")
            dims = [_int(d, "dims[]", where, 0, 10**6) for d in dims]
        steps = _int(lat.get("steps", 9), "steps", where, 1, MAX_STEPS)
        low, high = _num(lat.get("low", -3.0), "low", where), _num(lat.get("high", 3.0), "high", where)
        if max(abs(low), abs(high)) > 1e3:
            raise ExportError(f"{where}: low and high must lie within +-1000")
        out = {"z": z, "index": index, "dims": dims, "steps": steps, "low": low, "high": high}
        if lat.get("directions") is not None:
            out["directions"] = _mat(lat["directions"], "directions", where)
            names = lat.get("names") or [f"direction {i + 1}" for i in range(len(out["directions"]))]
            if (not isinstance(names, list) or len(names) != len(out["directions"])
                    or not all(isinstance(n, str) and len(n) <= 200 for n in names)):
                raise ExportError(f"{where}: names must be one string per direction")
            out["names"] = names
        return out
    if kind == "morph":
        z_a, z_b = _vec(lat.get("z_a"), "z_a", where), _vec(lat.get("z_b"), "z_b", where)
        s = _vec(lat.get("strengths"), "strengths", where)
        if not len(z_a) == len(z_b) == len(s):
            raise ExportError(f"{where}: z_a, z_b and strengths must have the same length")
        if not all(0.0 <= x <= 1.0 for x in s):
            raise ExportError(f"{where}: strengths must lie in [0, 1]")
        out: dict[str, Any] = {"z_a": z_a, "z_b": z_b, "strengths": s,
                               "frames": _int(lat.get("frames", 1), "frames", where, 1, MAX_FRAMES)}
        if lat.get("grid") is not None:
            g = lat["grid"]
            if not isinstance(g, dict):
                raise ExportError(f"{where}: grid must be an object with contents and styles")
            grid = {"contents": _mat(g.get("contents"), "grid.contents", where),
                    "styles": _mat(g.get("styles"), "grid.styles", where)}
            if {len(grid["contents"][0]), len(grid["styles"][0])} != {len(s)}:
                raise ExportError(f"{where}: the grid's vectors must have {len(s)} dimensions")
            if len(grid["contents"]) * len(grid["styles"]) * out["frames"] > MAX_REQUEST:
                raise ExportError(f"{where}: the morph grid has more than {MAX_REQUEST} cells")
            out["grid"] = grid
        return out
    if kind == "samples":
        return {"seed": _int(lat.get("seed", 0), "seed", where, 0, 2**63 - 1),
                "n": _int(lat.get("n"), "n", where, 1, MAX_REQUEST)}
    raise ExportError(f"{where}: unknown kind {kind!r}; use one of {', '.join(KINDS)}")


def _check_settings(settings: Any, where: str) -> dict:
    if not isinstance(settings, dict):
        raise ExportError(f"{where}: 'settings' must be an object")
    s = {**DEFAULT_SETTINGS, **settings}
    s["fps"] = _num(s["fps"], "settings.fps", where)
    if not 0.1 <= s["fps"] <= 120:
        raise ExportError(f"{where}: settings.fps must lie in [0.1, 120], not {s['fps']}")
    if s["size"] is not None:
        s["size"] = _int(s["size"], "settings.size", where, 8, 4096)
    if s["resample"] not in ("nearest", "lanczos"):
        raise ExportError(f"{where}: settings.resample must be 'nearest' or 'lanczos', not {s['resample']!r}")
    if not isinstance(s["labels"], bool):
        raise ExportError(f"{where}: settings.labels must be true or false")
    return s


def _check_output(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise ExportError(f"{where}: 'output' must be a file name in the sidecar's folder, not {name!r}")
    if Path(name).suffix.lower() not in SUFFIXES:
        raise ExportError(f"{where}: output {name!r} must end in one of {', '.join(SUFFIXES)}")
    return name


def validate(d: Any, where: str) -> dict:
    """The sidecar ``d`` checked, with defaults filled in (``where`` names it in errors); ExportError otherwise."""
    if not isinstance(d, dict):
        raise ExportError(f"{where}: a sidecar is a JSON object")
    if d.get("latent_studio_sidecar") != SIDECAR_VERSION:
        raise ExportError(f"{where}: not a Latent Studio sidecar of version {SIDECAR_VERSION} "
                          f"(latent_studio_sidecar = {d.get('latent_studio_sidecar')!r})")
    kind = d.get("kind")
    if kind not in KINDS:
        raise ExportError(f"{where}: unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    ck = d.get("checkpoint")
    if not isinstance(ck, dict) or not isinstance(ck.get("path"), str) or not ck["path"]:
        raise ExportError(f"{where}: 'checkpoint' must be an object with a path and a sha256")
    sha = ck.get("sha256")
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ExportError(f"{where}: checkpoint.sha256 must be 64 lowercase hex digits")
    out = dict(d)
    out["output"] = _check_output(d.get("output"), where)
    out["checkpoint"] = {"path": ck["path"], "sha256": sha}
    out["latents"] = _check_latents(kind, d.get("latents"), where)
    out["settings"] = _check_settings(d.get("settings", {}), where)
    if not isinstance(out.get("device", "cpu"), str):
        raise ExportError(f"{where}: 'device' must be a string")
    _check_budget(kind, out, where)
    return out


def _frame_count(kind: str, lat: dict) -> int:
    """Pictures the export writes: animation frames, or PNG cells."""
    if kind == "interpolation":
        return lat["frames"]
    if kind == "traversal":
        rows = len(lat["directions"]) if lat.get("directions") else len(lat["dims"] or [1])
        return lat["steps"] * rows
    if kind == "morph":
        cells = len(lat["grid"]["contents"]) * len(lat["grid"]["styles"]) if "grid" in lat else 1
        return lat["frames"] * cells
    return lat.get("n", 1)


def _check_budget(kind: str, d: dict, where: str) -> None:
    """Refuse an export whose frames at the asked size would need more than :data:`MAX_EXPORT_BYTES` (issue 12:
    1,024 frames at 4,096 px is 48 GiB). An MP4 is streamed to ffmpeg a few frames at a time and a GIF keeps one
    byte a pixel; a PNG strip is one picture of them all, three bytes a pixel."""
    size = d["settings"]["size"] or 256
    suffix = Path(str(d.get("output", ""))).suffix.lower()
    per_pixel = {".mp4": 0, ".gif": 1}.get(suffix, 3)
    need = _frame_count(kind, d["latents"]) * size * size * per_pixel
    if need > MAX_EXPORT_BYTES:
        raise ExportError(f"{where}: {_frame_count(kind, d['latents'])} pictures at {size} px would need "
                          f"{need / 2**30:.1f} GiB; the limit is {MAX_EXPORT_BYTES / 2**30:.0f} GiB (fewer frames or a "
                          f"smaller size)")
