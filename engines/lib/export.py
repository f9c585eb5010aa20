"""Exports that reproduce themselves: render latents with an engine, write the file and a JSON sidecar.

A sidecar (``X.gif.json`` beside ``X.gif``) records the checkpoint's SHA-256, the resolved latents
and the settings, so :func:`render` re-renders the same file headless (``latent-studio render``),
byte for byte for PNG and GIF on the same device (the decode is batched identically and the
writers in :mod:`engines.shared.media` are deterministic). Sidecar format, version :data:`SIDECAR_VERSION`::

    {"latent_studio_sidecar": 1, "kind": "interpolation" | "traversal" | "morph" | "samples",
     "output": "<file name in the sidecar's folder>",
     "checkpoint": {"path": "<relative to the sidecar's folder, or absolute>", "sha256": "<hex>"},
     "latents": {...}, "settings": {"fps": 12, "size": null, "resample": "nearest", "labels": false},
     "created": "<ISO time>", "device": "cpu"}

``latents`` by kind (D = the engine's ``latent.dim``):

- interpolation: ``{"keyframes": [[D floats], ...] (K >= 2), "method": "lerp"|"slerp"|"spline",
  "frames": F, "constant_speed": bool}``, the path of :func:`engines.lib.latent.interpolate_spec`;
- traversal: ``{"z": [D] or null, "index": int or null, "dims": [ints] or null, "steps": S, "low",
  "high"}``: base z, else held-out example ``index`` encoded, else the prior centre; rows are
  :func:`engines.lib.latent.traversal_latents`. PNG: one row per dimension; GIF/MP4: S frames, each
  all dimensions at one value. With ``"directions": [[D floats], ...]`` and ``"names"`` the rows sweep
  ``z + value * direction`` instead (each direction scaled to its slider unit: a direction set's
  vector times its scale);
- morph: ``{"z_a": [D], "z_b": [D], "strengths": [D in 0..1]}`` and optionally ``"grid":
  {"contents": [[D]...], "styles": [[D]...]}`` (rows keep content, columns take style) and
  ``"frames": F`` (a ramp of the strengths from 0 to the given ones; default 1, the result only),
  through :func:`engines.lib.latent.morph`;
- samples: ``{"seed": int, "n": int}``: ``engine.sample(n, torch.Generator().manual_seed(seed))``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engines.shared.errors import ExportCancelled, ExportError
from engines.shared.latent_np import prior_centre
from engines.shared.protocol import MAX_REQUEST
from engines.shared.imaging import tile
from engines.lib.latent import interpolate_spec, morph, traversal_latents
from engines.shared.media import write_animation
from engines.shared.media import write_latents as media_write_latents
from engines.lib.sidecar import DEFAULT_SETTINGS, KINDS, SIDECAR_VERSION  # noqa: F401 - re-exported
from engines.lib.sidecar import validate as _validate

#: Latents decoded in one batch (the same in export and render, so both decode identically).
DECODE_CHUNK = 64
#: Largest sidecar read, bytes.
MAX_SIDECAR_BYTES = 64 << 20

Progress = Callable[[int, int], None]


# -- files ---------------------------------------------------------------------------------------
def sidecar_path(out: str | Path) -> Path:
    """The sidecar of an output file: ``X.gif`` -> ``X.gif.json``."""
    out = Path(out)
    return out.with_name(out.name + ".json")


def checkpoint_file(path: str | Path) -> Path:
    """A run folder's ``model.safetensors``, or ``path`` itself when it is a file."""
    path = Path(path)
    return path / "model.safetensors" if path.is_dir() else path


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file (a run folder means its ``model.safetensors``).

    Raises
    ------
    ExportError
        The file is missing or unreadable; the message names it.
    """
    path = checkpoint_file(path)
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as exc:
        raise ExportError(f"{path}: cannot read the checkpoint ({exc.strerror or exc})") from exc
    return h.hexdigest()


def write_latents(z: np.ndarray | torch.Tensor, path: str | Path) -> Path:
    """:func:`engines.shared.media.write_latents` for a tensor or array z (F, D): ``.npy`` or ``.json``."""
    if isinstance(z, torch.Tensor):
        z = z.detach().float().cpu().numpy()
    return media_write_latents(z, path)


# -- validation ------------------------------------------------------------------------------------
def make_sidecar(kind: str, out: str | Path, checkpoint: str | Path, latents: dict, settings: dict,
                 device: str = "cpu") -> dict:
    """The sidecar dict of an export to ``out`` (not written; see :func:`export`).

    Parameters
    ----------
    kind : {"interpolation", "traversal", "morph", "samples"}
    out : path
        The output file (.gif, .mp4 or .png); the sidecar goes beside it.
    checkpoint : path
        The checkpoint (or run folder) the frames come from; hashed here, stored relative to
        ``out``'s folder.
    latents, settings : dict
        As in the module docstring; missing settings take :data:`DEFAULT_SETTINGS`.
    device : str
        Device the frames are decoded on, recorded so :func:`render` can use the same one.

    Raises
    ------
    ExportError
        Bad kind, latents, settings or output name, or an unreadable checkpoint.
    """
    out = Path(out)
    ck = checkpoint_file(checkpoint)
    sha = file_sha256(ck)
    try:
        rel = os.path.relpath(ck.resolve(), out.parent.resolve())
    except ValueError:  # another drive on Windows
        rel = str(ck.resolve())
    d = {"latent_studio_sidecar": SIDECAR_VERSION, "kind": kind, "output": out.name,
         "checkpoint": {"path": rel, "sha256": sha}, "latents": latents, "settings": settings,
         "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "device": str(device)}
    return _validate(d, str(sidecar_path(out)))


def read_sidecar(path: str | Path) -> dict:
    """Read and validate a sidecar file; returns it with defaults filled in.

    Raises
    ------
    ExportError
        A missing, oversized or non-JSON file, or any field that is missing or invalid; the
        message names the file and the field.
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_SIDECAR_BYTES:
            raise ExportError(f"{path}: too large for a sidecar (over {MAX_SIDECAR_BYTES >> 20} MiB)")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExportError(f"{path}: no such sidecar file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path}: cannot read ({exc})") from exc
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExportError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return _validate(d, str(path))


def _write_sidecar(d: dict, path: Path) -> Path:
    try:
        path.write_text(json.dumps(d, indent=2, allow_nan=False), encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    return path


# -- rendering -------------------------------------------------------------------------------------
def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise ExportCancelled("export cancelled")


def _held_out(engine: Any, index: int) -> torch.Tensor:
    """Held-out example ``index`` of the engine's data set, (1, C, H, W) or (1, 2) float32."""
    from engines.data import load_dataset

    size = engine.data.shape[-1] if engine.data.kind == "image" else None
    dataset = load_dataset(engine.data.spec, size)
    pool = dataset.test_indices
    if not 0 <= index < len(pool):
        raise ExportError(f"{engine.data.spec}: held-out index {index} is outside [0, {len(pool)})")
    return torch.as_tensor(np.asarray(dataset.get(pool[index : index + 1]), np.float32))


def _latents(engine: Any, kind: str, lat: dict, where: str) -> tuple[torch.Tensor, int, int]:
    """(L, D) float32 latents on the engine's device, the number of frame steps T and cells per step.

    Rows are step-major: step t holds rows t * cells ... (t + 1) * cells - 1 (traversal: R dims).
    """
    spec, dev, dim = engine.latent, engine.device, engine.latent.dim

    def vecs(rows: list) -> torch.Tensor:
        z = torch.tensor(rows, dtype=torch.float32)
        if z.shape[-1] != dim:
            raise ExportError(f"{where}: latents have {z.shape[-1]} dimensions; the model's latent space has {dim}")
        return z

    if kind == "interpolation":
        z = interpolate_spec(spec, vecs(lat["keyframes"]), lat["frames"], lat["method"], lat["constant_speed"])
        return z.to(torch.float32).to(dev), lat["frames"], 1
    if kind == "traversal":
        dims = lat["dims"] if lat["dims"] is not None else spec.continuous
        if lat.get("directions") is not None:
            dims = list(range(len(lat["directions"])))
        elif not dims or max(dims) >= dim:
            raise ExportError(f"{where}: dims must be indices in [0, {dim}), not {dims}")
        if len(dims) * lat["steps"] > MAX_REQUEST:
            raise ExportError(f"{where}: {len(dims)} dims x {lat['steps']} steps exceeds {MAX_REQUEST} images")
        if lat["z"] is not None:
            base = vecs([lat["z"]])
        elif lat["index"] is not None:
            if not engine.capabilities.has_encoder:
                raise ExportError(f"{where}: {engine.name} has no encoder to traverse around example {lat['index']}")
            with torch.inference_mode():
                base = engine.encode(_held_out(engine, lat["index"]).to(dev)).float().cpu()
        else:
            base = torch.from_numpy(prior_centre(spec))
        values = torch.from_numpy(np.linspace(lat["low"], lat["high"], lat["steps"], dtype=np.float32))
        if lat.get("directions") is not None:  # row r: base + value * direction r (scaled to its unit)
            z = (base.reshape(1, 1, -1) + values.reshape(1, -1, 1) * vecs(lat["directions"])[:, None]).reshape(-1, dim)
        else:
            z = traversal_latents(base, dims, values)  # (R*S, D), row-major by dimension
        r, s = len(dims), lat["steps"]
        return z.reshape(r, s, dim).transpose(0, 1).reshape(r * s, dim).contiguous().to(dev), s, r
    if kind == "morph":
        s = vecs([lat["strengths"]])[0]
        ramp = [1.0] if lat["frames"] == 1 else np.linspace(0.0, 1.0, lat["frames"]).tolist()
        if "grid" in lat:
            contents, styles = vecs(lat["grid"]["contents"]), vecs(lat["grid"]["styles"])
            a = contents[:, None].expand(-1, len(styles), -1).reshape(-1, dim)
            b = styles[None].expand(len(contents), -1, -1).reshape(-1, dim)
        else:
            a, b = vecs([lat["z_a"]]), vecs([lat["z_b"]])
        z = torch.cat([morph(a, b, s * t) for t in ramp])
        return z.to(dev), len(ramp), len(a)
    if kind == "samples":
        gen = torch.Generator(device=dev).manual_seed(lat["seed"])
        return engine.prior_sample(lat["n"], gen).float(), lat["n"], 1
    raise ExportError(f"{where}: unknown kind {kind!r}")


def latents_for(engine: Any, sidecar: dict) -> np.ndarray:
    """The (L, D) float32 latents a sidecar decodes (for :func:`write_latents`), step-major.

    Raises
    ------
    ExportError
        Latents that do not fit the engine's latent space, or a bad sidecar.
    """
    d = _validate(sidecar, "sidecar")
    return _latents(engine, d["kind"], d["latents"], d["output"])[0].cpu().numpy()


def _decode(engine: Any, z: torch.Tensor, progress: Progress | None, cancel: threading.Event | None,
            total: int) -> np.ndarray:
    parts = []
    engine.eval()
    with torch.inference_mode():
        for i in range(0, len(z), DECODE_CHUNK):
            _check(cancel)
            parts.append(engine.decode(z[i : i + DECODE_CHUNK]).float().cpu().numpy())
            if progress is not None:
                progress(min(len(z), i + DECODE_CHUNK), total)
    return np.concatenate(parts).astype(np.float32)


def _layout(engine: Any, d: dict, x: np.ndarray, steps: int, cells: int, animated: bool
            ) -> tuple[np.ndarray, int | None, list[str]]:
    """Decoded x (L, ...) to written frames, the PNG columns and one label per frame."""
    kind, lat = d["kind"], d["latents"]
    points = engine.data.kind == "points" or x.ndim == 2
    names = list(engine.latent.names)
    values = np.linspace(lat.get("low", 0), lat.get("high", 0), lat.get("steps", 1), dtype=np.float32)
    dims = lat.get("dims") or engine.latent.continuous
    if lat.get("directions") is not None:
        names, dims = lat["names"], list(range(len(lat["names"])))
    ncols = {"traversal": steps, "samples": math.ceil(math.sqrt(steps))}.get(kind)
    if kind == "morph" and cells > 1:
        ncols = len(lat["grid"]["styles"])
    if points:
        pts = x.reshape(steps, cells, 2)
        if not animated:
            return pts.reshape(1, -1, 2), None, ["all"]
        if kind == "interpolation":  # the trail so far, NaN-padded so every frame has F points
            trail = np.full((steps, steps, 2), np.nan, np.float32)
            for t in range(steps):
                trail[t, : t + 1] = pts[: t + 1, 0]
            pts = trail
        if kind == "samples":
            return pts.reshape(1, -1, 2), None, ["samples"]
        labels = [f"{v:+.2f}" for v in values] if kind == "traversal" else [str(t) for t in range(steps)]
        return pts, None, labels
    if kind == "traversal":
        if animated:
            frames = np.stack([tile(x[t * cells : (t + 1) * cells], ncols=math.ceil(math.sqrt(cells)))
                               for t in range(steps)])
            return frames, None, [f"{v:+.2f}" for v in values]
        by_dim = x.reshape(steps, cells, *x.shape[1:]).swapaxes(0, 1).reshape(x.shape)
        return by_dim, steps, [f"{names[r]} {v:+.1f}" for r in dims for v in values]
    if kind == "samples":
        return x, (None if animated else ncols), [str(i) for i in range(len(x))]
    if kind == "morph" and cells > 1 and animated:
        frames = np.stack([tile(x[t * cells : (t + 1) * cells], ncols=ncols) for t in range(steps)])
        return frames, None, [str(t) for t in range(steps)]
    return x, ncols, [str(i) for i in range(len(x))]


def frames_for(engine: Any, sidecar: dict, progress: Progress | None = None,
               cancel: threading.Event | None = None, suffix: str | None = None) -> np.ndarray:
    """Decode a sidecar's latents into the frames written for its output.

    Parameters
    ----------
    engine : Engine
        The model; put in eval mode.
    sidecar : dict
        A sidecar (:func:`make_sidecar`, :func:`read_sidecar`).
    progress : callable (done, total) or None
        Called after each batch of :data:`DECODE_CHUNK` latents; total is the latents + 1 (the write).
    cancel : threading.Event or None
        Checked before each batch; when set, raises ExportCancelled.
    suffix : str or None
        Output type the frames are for (default: the sidecar's output's): ``.png`` gives cells of a
        strip or grid, ``.gif`` and ``.mp4`` animation frames (see the module docstring).

    Returns
    -------
    ndarray
        (F, C, H, W) float32 in [0, 1], or (F, N, 2) points (NaN-padded) for a 2-D data model.

    Raises
    ------
    ExportError
        A bad sidecar, or latents that do not fit the engine. ExportCancelled if ``cancel`` is set.
    """
    return _frames(engine, sidecar, progress, cancel, suffix)[0]


def _frames(engine: Any, sidecar: dict, progress: Progress | None, cancel: threading.Event | None,
            suffix: str | None) -> tuple[np.ndarray, int | None, list[str], int]:
    d = _validate(sidecar, "sidecar")
    suffix = (suffix or Path(d["output"]).suffix).lower()
    z, steps, cells = _latents(engine, d["kind"], d["latents"], d["output"])
    x = _decode(engine, z, progress, cancel, len(z) + 1)
    return (*_layout(engine, d, x, steps, cells, suffix != ".png"), len(z) + 1)


def _write(engine: Any, d: dict, out: Path, progress: Progress | None, cancel: threading.Event | None) -> Path:
    frames, ncols, labels, total = _frames(engine, d, progress, cancel, out.suffix)
    s = d["settings"]
    modes = np.asarray(engine.data.modes, np.float64) if getattr(engine.data, "modes", None) else None
    path = write_animation(frames, out, s["fps"], s["size"], s["resample"], modes,
                           labels if s["labels"] else None, ncols, cancel=cancel)
    if progress is not None:
        progress(total, total)
    return path


def export(engine: Any, kind: str, out: str | Path, checkpoint: str | Path, latents: dict, settings: dict,
           progress: Progress | None = None, cancel: threading.Event | None = None) -> Path:
    """Render frames with ``engine``, write ``out`` (by suffix: .png, .gif, .mp4) and its sidecar.

    Parameters
    ----------
    engine : Engine
        The model whose weights are the ones saved in ``checkpoint``.
    kind, latents, settings
        As in the module docstring.
    out : path
        Output file; its folder must exist.
    checkpoint : path
        Checkpoint file or run folder, hashed into the sidecar.
    progress, cancel
        As :func:`frames_for`; a cancelled export leaves no output and no sidecar.

    Returns
    -------
    Path
        The sidecar written (``out`` + ``.json``).

    Raises
    ------
    ExportError
        Bad arguments, an unreadable checkpoint, or a file that cannot be written.
        ExportCancelled if ``cancel`` is set.
    """
    out = Path(out)
    d = make_sidecar(kind, out, checkpoint, latents, settings, device=str(engine.device))
    _write(engine, d, out, progress, cancel)
    return _write_sidecar(d, sidecar_path(out))


def _device(requested: str | None, recorded: str) -> str:
    if requested is not None:
        return str(requested)
    kind = recorded.split(":")[0]
    if kind == "cuda" and torch.cuda.is_available():
        return recorded
    if kind == "mps" and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return recorded
    return "cpu"


def render(sidecar: str | Path, out: str | Path | None = None, device: str | None = None,
           progress: Progress | None = None, cancel: threading.Event | None = None) -> Path:
    """Re-render an export from its sidecar, headless.

    Loads the checkpoint the sidecar names (after checking its SHA-256), decodes the stored
    latents in the same batches as the export, and writes the file: byte-identical to the
    original for PNG and GIF on the same device.

    Parameters
    ----------
    sidecar : path
        The ``.json`` sidecar.
    out : path or None
        Output file; default the sidecar's own output (overwritten). Another path also gets its
        own sidecar; its suffix picks the format.
    device : str or None
        Torch device; default the one recorded in the sidecar where available here, else "cpu".
    progress, cancel
        As :func:`frames_for`.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ExportError
        A bad sidecar, a missing checkpoint, or a checkpoint whose SHA-256 differs from the one
        recorded (the message names the checkpoint).
    CheckpointError
        A checkpoint that cannot be loaded. ExportCancelled if ``cancel`` is set.
    """
    from engines.lib.checkpoint import load_checkpoint

    sidecar = Path(sidecar)
    d = read_sidecar(sidecar)
    ck = Path(d["checkpoint"]["path"])
    ck = ck if ck.is_absolute() else sidecar.parent / ck
    if not ck.is_file():
        raise ExportError(f"{ck}: the checkpoint named by {sidecar} does not exist")
    sha = file_sha256(ck)
    if sha != d["checkpoint"]["sha256"]:
        raise ExportError(f"{ck}: SHA-256 {sha[:12]}... does not match {d['checkpoint']['sha256'][:12]}... "
                          f"recorded in {sidecar}: the checkpoint has changed since the export")
    engine, _ = load_checkpoint(ck, device=_device(device, d.get("device", "cpu")), with_optimizer=False)
    default = sidecar.parent / d["output"]
    target = Path(out) if out is not None else default
    _write(engine, d, target, progress, cancel)
    if target.resolve() != default.resolve():
        _write_sidecar(make_sidecar(d["kind"], target, ck, d["latents"], d["settings"], str(engine.device)),
                       sidecar_path(target))
    return target

