"""Exact resume: everything the next training step depends on besides the weights and optimisers.

A checkpoint written with a :class:`ResumeState` continues bit for bit (on the same device, with the
same number of CPU threads): the random generators (torch CPU and every CUDA device, numpy's global
generator, Python's ``random``), the data stream's place in its epoch
(:meth:`engines.lib.training.BatchStream.state_dict`), the step, the run's settings (seed, batch size,
the steps it planned), and the live hyperparameters' change history, ``[step, name, value]`` rows, so
that the plots can mark them again. The weights and the optimisers' state are the checkpoint's own
(:mod:`engines.lib.checkpoint`).

Tensors travel in the safetensors file under ``resume.<name>``; the rest is JSON in the manifest
under ``"resume"``. Nothing is unpickled: numpy's and Python's generator states are plain integers.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from engines.shared.errors import CheckpointError

#: The prefix of resume tensors in a checkpoint file.
PREFIX = "resume."
#: Largest change history kept (rows), oldest dropped first.
MAX_HISTORY = 10_000


@dataclass
class ResumeState:
    """What a checkpoint needs beyond weights and optimisers to continue exactly.

    Attributes
    ----------
    tensors : dict of str to Tensor
        CPU tensors: ``rng.torch`` (uint8), ``rng.cuda.<i>`` (uint8, one per CUDA device), ``rng.numpy``
        (624,) int64 (the MT19937 key), ``stream.generator`` (uint8).
    meta : dict
        JSON: ``rng`` (numpy's position and cached Gaussian; Python's state), ``stream`` (position in the
        epoch, epoch, examples seen, split size, batch size), ``run`` (seed, batch size, planned steps, ...)
        and ``hyper_history``.
    """

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def hyper_history(self) -> list[tuple[int, str, float]]:
        """The live hyperparameter changes, ``(step, name, value)`` in order."""
        return [(int(s), str(n), float(v)) for s, n, v in self.meta.get("hyper_history", [])]

    @property
    def run(self) -> dict[str, Any]:
        """The run's settings saved with it (seed, batch size, planned steps, ...)."""
        return dict(self.meta.get("run") or {})


def capture(stream: Any | None = None, run: dict[str, Any] | None = None,
            hyper_history: list[tuple[int, str, float]] | None = None) -> ResumeState:
    """The generators' states now, ``stream``'s place and the run's settings, as a :class:`ResumeState`.

    Call it between two steps, from the thread that trains (the CUDA states are read per device).

    Parameters
    ----------
    stream : BatchStream or None
    run : dict or None
        JSON-able settings the run continues with (seed, batch size, planned steps, ...).
    hyper_history : list of (int, str, float) or None
        Live hyperparameter changes so far; the last :data:`MAX_HISTORY` are kept.
    """
    tensors: dict[str, torch.Tensor] = {"rng.torch": torch.get_rng_state().clone()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state.clone()
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np.asarray(key, dtype=np.int64).copy())
    version, internal, gauss_next = random.getstate()
    meta: dict[str, Any] = {
        "rng": {"numpy": {"kind": str(kind), "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
                "python": {"version": int(version), "state": [int(v) for v in internal],
                           "gauss_next": None if gauss_next is None else float(gauss_next)}},
        "run": dict(run or {}),
        "hyper_history": [[int(s), str(n), float(v)] for s, n, v in (hyper_history or [])[-MAX_HISTORY:]],
    }
    if stream is not None:
        stream_tensors, meta["stream"] = stream.state_dict()
        tensors.update({f"stream.{k}": v for k, v in stream_tensors.items()})
    return ResumeState(tensors, meta)


def restore_rng(state: ResumeState, where: str = "checkpoint") -> None:
    """Set torch's, CUDA's (where the devices are), numpy's and Python's generators from ``state``.

    Raises
    ------
    CheckpointError
        A state is missing or malformed (named with ``where``, the file).
    """
    t, meta = state.tensors, state.meta.get("rng")
    try:
        torch_state = t["rng.torch"]
        key = t["rng.numpy"].numpy()
        np_meta, py_meta = meta["numpy"], meta["python"]
        if torch_state.dtype != torch.uint8 or key.shape != (624,) or key.min() < 0 or key.max() >= 2**32:
            raise ValueError("a generator state has the wrong type or size")
        internal = tuple(int(v) for v in py_meta["state"])
        gauss_next = py_meta["gauss_next"]
        if len(internal) != 625 or not all(0 <= v < 2**32 for v in internal[:624]):
            raise ValueError("Python's generator state has the wrong size")
        gauss = float(np_meta["gauss"])
        if not math.isfinite(gauss):
            raise ValueError("numpy's cached Gaussian is not finite")
        torch.set_rng_state(torch_state.clone())
        np.random.set_state((str(np_meta["kind"]), key.astype(np.uint32), int(np_meta["pos"]),
                             int(np_meta["has_gauss"]), gauss))
        random.setstate((int(py_meta["version"]), internal, None if gauss_next is None else float(gauss_next)))
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise CheckpointError(f"{where}: the saved random generator states are malformed ({exc})") from exc
    if torch.cuda.is_available():
        states = [t[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count()) if f"rng.cuda.{i}" in t]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)


def restore_stream(state: ResumeState, stream: Any, where: str = "checkpoint") -> None:
    """Put ``stream`` (a BatchStream) where it stood when ``state`` was captured.

    Raises
    ------
    CheckpointError
        No stream state saved, or it does not fit this stream (another split or batch size).
    """
    from engines.shared.errors import LatentStudioError

    meta = state.meta.get("stream")
    tensors = {k[len("stream."):]: v for k, v in state.tensors.items() if k.startswith("stream.")}
    if not isinstance(meta, dict) or not tensors:
        raise CheckpointError(f"{where}: the checkpoint holds no data stream state")
    try:
        stream.load_state_dict(tensors, meta)
    except LatentStudioError as exc:
        raise CheckpointError(f"{where}: {exc}") from exc
