"""Checkpoints: safetensors weights plus a JSON manifest. Never pickle, never ``torch.load``.

A checkpoint is one ``.safetensors`` file holding

- the engine's ``state_dict`` tensors under their own names;
- each optimiser's per-parameter state tensors under ``optim.<name>.state.<param index>.<key>``
  (e.g. ``optim.adam.state.3.exp_avg``);
- for exact resume, the random generators' and the data stream's state under ``resume.<name>``
  (:mod:`engines.lib.resume`);
- the manifest, a JSON object, in the safetensors metadata under ``"latent_studio"``: format,
  engine name and family, config, data info and spec, image size, step, live hyperparameter
  values, the optimisers' ``param_groups`` (learning rates, betas, ...) and non-tensor state,
  library versions, creation time, the caller's ``extra``, the resume state's JSON part under
  ``"resume"``, and ``"sha256"``: a SHA-256 of every tensor's name, dtype, shape and bytes, checked on
  load (flipped bytes are refused, not trained on).

The same manifest is written beside it as ``<name>.json`` for people and tools; loading reads only
the embedded copy. Every file is treated as untrusted: the header is checked by hand before
safetensors reads it, and every failure is a :class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import torch
from safetensors.torch import load_file, save_file

import engines
from engines.shared import registry
from engines.shared.datainfo import DataInfo
from engines.lib.resume import PREFIX as _RESUME
from engines.lib.resume import ResumeState
from engines.shared.errors import CheckpointError, LatentStudioError

FORMAT = "latent-studio-checkpoint"
FORMAT_VERSION = 1
METADATA_KEY = "latent_studio"
MODEL_FILE = "model.safetensors"
#: Largest safetensors JSON header accepted (the safetensors library's own limit).
MAX_HEADER = 100_000_000
_OPTIM = "optim."
_REQUIRED = ("format", "format_version", "engine", "config", "data", "step")


def _tensor_path(path: str | os.PathLike) -> Path:
    """A run folder means its ``model.safetensors``."""
    p = Path(path)
    return p / MODEL_FILE if p.is_dir() else p


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` on a temporary file in ``path``'s folder, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 (hex) of CPU ``tensors``: each name, dtype, shape and raw bytes, in name order."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key]
        h.update(f"{key}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _versions() -> dict[str, str]:
    return {
        "latent-studio": engines.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "safetensors": getattr(safetensors, "__version__", "unknown"),
    }


def save_checkpoint(
    engine: Any,
    path: str | os.PathLike,
    *,
    step: int,
    data_spec: str,
    image_size: int | None = None,
    extra: dict | None = None,
    manifest_beside: bool = True,
    resume: ResumeState | None = None,
) -> Path:
    """Write ``engine`` (weights, optimiser state, manifest) to ``path``, atomically.

    Parameters
    ----------
    engine : Engine
        Made by :func:`engines.shared.registry.create_engine` (so ``engine.name`` is set), on any device.
    path : path
        The ``.safetensors`` file to write, or an existing folder (then ``model.safetensors`` in
        it). The manifest also goes to the same name with the suffix ``.json``, unless
        ``manifest_beside`` is False (an export's weights ``walk.gif.safetensors``: ``walk.gif.json``
        is the export's own sidecar).
    step : int
        Training steps done.
    data_spec : str
        The data spec the engine trained on, e.g. ``"digits"``.
    image_size : int or None
        Side of the images in pixels, where the data are images.
    extra : dict or None
        JSON-able additions to the manifest (under ``"extra"``).
    resume : ResumeState or None
        The generators' and data stream's state (:func:`engines.lib.resume.capture`), for an exact resume.

    Returns
    -------
    Path
        The ``.safetensors`` file written.

    Raises
    ------
    CheckpointError
        The engine has no registry name, or the file cannot be written.
    """
    path = _tensor_path(path)
    if not engine.name:
        raise CheckpointError(f"{path}: the engine has no registry name (make it with registry.create_engine)")
    tensors: dict[str, torch.Tensor] = {
        k: v.detach().to("cpu").contiguous() for k, v in engine.state_dict().items()
    }
    optimizers: dict[str, Any] = {}
    for opt_name, opt in engine.optimizer_states().items():
        sd = opt.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for idx, state in sd["state"].items():
            for key, value in state.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"{_OPTIM}{opt_name}.state.{idx}.{key}"] = value.detach().to("cpu").contiguous().clone()
                else:
                    scalars.setdefault(str(idx), {})[key] = _jsonable(value)
        optimizers[opt_name] = {"param_groups": _jsonable(sd["param_groups"]), "state_scalars": scalars}
    if resume is not None:
        tensors.update({_RESUME + k: v.detach().to("cpu").contiguous() for k, v in resume.tensors.items()})
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "engine": engine.name,
        "family": engine.family,
        "config": engine.config.to_json(),
        "data": engine.data.to_json(),
        "data_spec": data_spec,
        "image_size": image_size,
        "step": int(step),
        "hyper": {k: hp.value for k, hp in engine.hyper.items()},
        "latent": engine.latent.to_json(),
        "optimizers": optimizers,
        "versions": _versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "extra": extra or {},
        "sha256": tensor_digest(tensors),
    }
    if resume is not None:
        manifest["resume"] = resume.meta
    try:
        text = json.dumps(manifest, allow_nan=False)
        pretty = json.dumps(manifest, indent=1, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: the manifest is not JSON-able ({exc}); check `extra`") from exc
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={METADATA_KEY: text}))
        if manifest_beside:
            atomic_write(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(pretty, encoding="utf-8"))
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: cannot write the checkpoint: {exc}") from exc
    return path


def _read_header(path: Path) -> dict:
    """The safetensors JSON header of ``path``, checked against the file size by hand."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: not a safetensors file ({size} bytes, too short for a header)")
        (n,) = struct.unpack("<Q", head)
        if n < 2 or n > MAX_HEADER:
            raise CheckpointError(f"{path}: not a safetensors file (header length {n} is implausible)")
        if 8 + n > size:
            raise CheckpointError(f"{path}: truncated file: the header needs {8 + n} bytes, the file has {size}")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise CheckpointError(f"{path}: corrupt safetensors header (nested absurdly deep)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not a safetensors file or corrupt header ({exc})") from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (not a JSON object)")
    end = 0
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        try:
            lo, hi = (int(v) for v in entry["data_offsets"])
        except (TypeError, KeyError, ValueError) as exc:
            raise CheckpointError(f"{path}: corrupt safetensors header at tensor {key!r}") from exc
        end = max(end, hi)
    if 8 + n + end > size:
        raise CheckpointError(f"{path}: truncated file: the header declares {8 + n + end} bytes, the file has {size}")
    return header


def _parse_manifest(path: Path, text: Any) -> dict:
    if not isinstance(text, str):
        raise CheckpointError(f"{path}: no Latent Studio manifest in the file (metadata key {METADATA_KEY!r} missing)")
    try:
        manifest = json.loads(text)
    except RecursionError:
        raise CheckpointError(f"{path}: the manifest is nested absurdly deep") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: the manifest is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{path}: the manifest is not a JSON object")
    if manifest.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a Latent Studio checkpoint (format {manifest.get('format')!r})")
    missing = [k for k in _REQUIRED if k not in manifest]
    if missing:
        raise CheckpointError(f"{path}: the manifest lacks {', '.join(missing)}")
    version = manifest["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r} is newer than this program reads ({FORMAT_VERSION})"
        )
    for key in ("config", "data"):
        if not isinstance(manifest[key], dict):
            raise CheckpointError(f"{path}: the manifest's {key!r} is not a JSON object")
    if not isinstance(manifest["step"], int) or manifest["step"] < 0:
        raise CheckpointError(f"{path}: the manifest's step {manifest['step']!r} is not a step count")
    return manifest


def read_manifest(path: str | os.PathLike) -> dict:
    """The manifest of a checkpoint: a ``.safetensors`` file (embedded copy), a run folder, or a
    ``.json`` manifest written beside one.

    Raises
    ------
    CheckpointError
        Missing or unreadable file, not a safetensors file, truncated, no or bad manifest.
    """
    p = _tensor_path(path)
    if p.suffix == ".json":
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise CheckpointError(f"{p}: no such manifest file") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{p}: cannot read the manifest: {exc}") from exc
        return _parse_manifest(p, text)
    header = _read_header(p)
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise CheckpointError(f"{p}: corrupt safetensors metadata")
    return _parse_manifest(p, meta.get(METADATA_KEY))


def config_from_manifest(name: str, config: dict) -> dict:
    """A manifest's config, with the settings a model gained since the checkpoint was written filled in as the
    older model behaved (its config class's ``absent_means``, e.g. a VQ-VAE saved before it had a prior:
    ``prior=False``), so that older checkpoints still load.

    Raises
    ------
    ConfigError
        An unknown model name.
    """
    legacy = getattr(registry.engine_class(name).config_class, "absent_means", {})
    if not isinstance(config, dict):
        return config
    return {**{k: v for k, v in legacy.items() if k not in config}, **config}


def load_checkpoint(
    path: str | os.PathLike, device: torch.device | str = "cpu", with_optimizer: bool = True
) -> tuple[Any, dict]:
    """Rebuild an engine from a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : path
        A ``.safetensors`` file, or a run folder holding ``model.safetensors``.
    device : torch.device or str
        Where the engine (and its optimiser state) goes.
    with_optimizer : bool
        Restore the optimisers' state too (to resume training); otherwise they start fresh.

    Returns
    -------
    engine : Engine
        With weights, live hyperparameters and (optionally) optimiser state restored.
    manifest : dict
        The manifest; ``manifest["step"]`` is the step to resume from.

    Raises
    ------
    CheckpointError
        Missing file, not a safetensors file or a corrupt header, truncated file, missing or bad
        manifest, unknown engine, or tensors whose keys or shapes do not fit the engine (the
        message names the key).
    """
    p = _tensor_path(path)
    manifest = read_manifest(p)
    try:
        data = DataInfo.from_json(manifest["data"])
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{p}: the manifest's data description is invalid ({exc})") from exc
    name = manifest["engine"]
    if not isinstance(name, str) or name not in registry.MODELS:
        raise CheckpointError(f"{p}: unknown engine {name!r}; known models: {', '.join(registry.MODELS)}")
    try:
        engine = registry.create_engine(name, data, **config_from_manifest(name, manifest["config"]))
    except (LatentStudioError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{p}: cannot build engine {name!r} from the manifest: {exc}") from exc
    try:
        tensors = load_file(str(p), device="cpu")
    except Exception as exc:  # safetensors raises its own SafetensorError (an Exception subclass)
        raise CheckpointError(f"{p}: cannot read the tensors: {exc}") from exc
    model = {k: v for k, v in tensors.items() if not k.startswith((_OPTIM, _RESUME))}
    expected = engine.state_dict()
    missing = sorted(set(expected) - set(model))
    unexpected = sorted(set(model) - set(expected))
    if missing:
        raise CheckpointError(f"{p}: tensor {missing[0]!r} of {name} is missing ({len(missing)} missing in all)")
    if unexpected:
        raise CheckpointError(f"{p}: unexpected tensor {unexpected[0]!r} for {name} ({len(unexpected)} in all)")
    for key, want in expected.items():
        if tuple(model[key].shape) != tuple(want.shape):
            raise CheckpointError(
                f"{p}: tensor {key!r} has shape {tuple(model[key].shape)}, {name} expects {tuple(want.shape)}"
            )
    for key, value in model.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{p}: tensor {key!r} holds NaN or inf: the weights diverged or the file is damaged")
    engine.load_state_dict(model, strict=True)
    engine.to(device)
    if with_optimizer:
        _load_optimizers(p, engine, manifest, tensors)
    _check_digest(p, manifest, tensors)  # after the checks that name a misplaced tensor
    for hname, value in (manifest.get("hyper") or {}).items():
        if hname in engine.hyper:
            try:
                engine.set_hyper(hname, value)
            except (LatentStudioError, TypeError, ValueError) as exc:
                raise CheckpointError(f"{p}: hyperparameter {hname}: {exc}") from exc
    return engine, manifest


def _check_digest(p: Path, manifest: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Compare the tensors with the manifest's SHA-256 (checkpoints written before it was added have none)."""
    want = manifest.get("sha256")
    if want is None:
        return
    if not isinstance(want, str) or tensor_digest(tensors) != want:
        raise CheckpointError(f"{p}: the tensor data do not match the manifest's SHA-256: "
                              "the file was changed or damaged after it was written")


def read_resume_state(path: str | os.PathLike) -> ResumeState | None:
    """The :class:`ResumeState` saved in a checkpoint (None for one written without it).

    Raises
    ------
    CheckpointError
        As :func:`read_manifest`; or the resume part is malformed or does not match the SHA-256.
    """
    p = _tensor_path(path)
    manifest = read_manifest(p)
    meta = manifest.get("resume")
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{p}: the manifest's resume entry is not a JSON object")
    try:
        tensors = load_file(str(p), device="cpu")
    except Exception as exc:  # safetensors' own SafetensorError
        raise CheckpointError(f"{p}: cannot read the tensors: {exc}") from exc
    _check_digest(p, manifest, tensors)
    return ResumeState({k[len(_RESUME):]: v for k, v in tensors.items() if k.startswith(_RESUME)}, meta)


def _load_optimizers(p: Path, engine: Any, manifest: dict, tensors: dict[str, torch.Tensor]) -> None:
    saved = manifest.get("optimizers") or {}
    if not isinstance(saved, dict):
        raise CheckpointError(f"{p}: the manifest's optimizers entry is not a JSON object")
    for opt_name, opt in engine.optimizer_states().items():
        entry = saved.get(opt_name)
        if not isinstance(entry, dict) or not isinstance(entry.get("param_groups"), list):
            raise CheckpointError(f"{p}: no state for optimiser {opt_name!r} in the manifest")
        groups = []
        for g in entry["param_groups"]:
            if not isinstance(g, dict) or not isinstance(g.get("params"), list):
                raise CheckpointError(f"{p}: bad param_groups for optimiser {opt_name!r}")
            groups.append({k: (tuple(v) if isinstance(v, list) and k != "params" else v) for k, v in g.items()})
        prefix = f"{_OPTIM}{opt_name}.state."
        state: dict[int, dict[str, Any]] = {}
        for key, tensor in tensors.items():
            if key.startswith(prefix):
                idx, _, field = key[len(prefix) :].partition(".")
                if not idx.isdigit() or not field:
                    raise CheckpointError(f"{p}: bad optimiser tensor name {key!r}")
                state.setdefault(int(idx), {})[field] = tensor
        for idx, values in (entry.get("state_scalars") or {}).items():
            if not str(idx).isdigit() or not isinstance(values, dict):
                raise CheckpointError(f"{p}: bad optimiser state for {opt_name!r}")
            state.setdefault(int(idx), {}).update(values)
        current = opt.state_dict()
        n_params = sum(len(g["params"]) for g in current["param_groups"])
        for idx in state:
            if idx >= n_params:
                raise CheckpointError(f"{p}: optimiser {opt_name!r} state for parameter {idx}, but it has {n_params}")
        params = [q for g in opt.param_groups for q in g["params"]]
        for idx, values in state.items():
            for field, value in values.items():
                if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != params[idx].shape:
                    raise CheckpointError(
                        f"{p}: tensor {prefix + str(idx) + '.' + field!r} has shape {tuple(value.shape)}, "
                        f"the parameter has {tuple(params[idx].shape)}"
                    )
        try:
            opt.load_state_dict({"state": state, "param_groups": groups})
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"{p}: cannot restore optimiser {opt_name!r}: {exc}") from exc
