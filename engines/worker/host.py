"""The worker's host thread: decode, encode, sample and data examples from a weight snapshot.

Interactive requests must never wait for a training step (DESIGN.md, "Two processes, one
protocol"). The trainer therefore never lends the live model: it copies its weights every ~0.2 s
into a :class:`Snapshot` (a second engine of the same class on the same device, in eval mode,
without gradients), and the :class:`Host` thread answers from that copy. Only the newest pending
:class:`~engines.shared.protocol.Decode` of each ``view`` is served ("latest wins", as napari's
asynchronous slicer does); older pending ones are dropped unanswered.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from engines.shared import protocol as P
from engines.shared.errors import ConfigError, DataError, LatentStudioError
from engines.lib.latent import METHODS, interpolate_spec, traversal_latents
from engines.shared.latent_np import prior_centre
from engines.shared.protocol import MAX_FRAMES, MAX_REQUEST, MAX_STEPS

#: Number of latents of the fixed sample grid that shows training progress.
GRID_SIZE = 64

#: Latents of the grid decoded at a time: interactive requests are served between two chunks.
GRID_CHUNK = 8
#: Images of the grid of a model that samples pixel by pixel (one pass per pixel: fewer, one at a time).
SEQUENTIAL_GRID = 16
#: Latents of a traversal decoded in one batch.
TRAVERSE_CHUNK = 64
#: Latents of an interpolation path decoded in one batch.
INTERPOLATE_CHUNK = 64


def error_event(exc: BaseException, command: str) -> P.Error:
    """An :class:`~engines.shared.protocol.Error` for ``exc``: the user-facing message and the traceback.

    Project errors (:class:`LatentStudioError`) carry a message written for the user; any other
    exception is a bug, reported with its type name.
    """
    message = str(exc) if isinstance(exc, LatentStudioError) else f"{type(exc).__name__}: {exc}"
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return P.Error(message=message or type(exc).__name__, traceback=tb, command=command)


def to_numpy(x: torch.Tensor) -> np.ndarray:
    """A CPU float32 numpy array of ``x`` (one copy at most; never a CUDA tensor across processes)."""
    x = x.detach()
    if x.dtype != torch.float32:
        x = x.float()
    return x.cpu().numpy()


class Snapshot:
    """A copy of an engine's weights that the host thread reads while the trainer trains.

    Parameters
    ----------
    engine : Engine
        The live engine. The copy is built with ``type(engine)(engine.config, engine.data)`` (the
        Engine contract's constructor) on the same device, then put in eval mode without gradients.
    step : int
        Training step of the weights copied.

    Attributes
    ----------
    model : Engine
        The copy. Use it only while holding :attr:`lock`.
    lock : threading.Lock
        Held by the host for one request and by the trainer for one refresh (well under a
        millisecond for the models of this studio).
    step : int
        Step of the weights currently in :attr:`model`.
    """

    def __init__(self, engine: Any, step: int = 0) -> None:
        model = type(engine)(engine.config, engine.data)
        model.name = engine.name
        model.to(engine.device)
        model.eval()
        model.requires_grad_(False)
        self.model = model
        self.lock = threading.Lock()
        self.step = step
        self.ready_event: Any = None  # CUDA event recorded after the last refresh
        self.refresh(engine, step)

    def refresh(self, engine: Any, step: int, blocking: bool = True) -> bool:
        """Copy the live weights (and hyperparameter values) into the snapshot.

        Call this from the thread that trains ``engine``, between steps. With ``blocking`` False
        the refresh is skipped (returns False) while the host is using the snapshot, so the trainer
        never waits for a request.
        """
        if not self.lock.acquire(blocking=blocking):
            return False
        try:
            with torch.no_grad():
                self.model.load_state_dict(engine.state_dict())
            self._sync_hyper(engine)
            self.step = step
            if self.model.device.type == "cuda":
                self.ready_event = torch.cuda.Event()
                self.ready_event.record()
        finally:
            self.lock.release()
        return True

    def sync_hyper(self, engine: Any) -> None:
        """Give the snapshot the live hyperparameter values (a temperature matters to sampling)."""
        with self.lock:
            self._sync_hyper(engine)

    def _sync_hyper(self, engine: Any) -> None:
        for name, hp in engine.hyper.items():
            mine = self.model.hyper.get(name)
            if mine is None or mine.value != hp.value:
                self.model.set_hyper(name, hp.value)


@dataclass
class Hosted:
    """What the host serves: the snapshot, the data set (None if it could not be loaded) and the grid z.

    Attributes
    ----------
    snapshot : Snapshot
    dataset : Dataset or None
    fixed_z : Tensor or None
        (64, D) prior draws on the model's device, decoded for the sample grid (``Samples``
        with request id -1); None where the family has no latent to decode.
    seed : int
        Seed of the grid's samples when ``fixed_z`` is None.
    grid_ok : bool
        False once a grid failed: the failure is reported once, not every second.
    """

    snapshot: Snapshot
    dataset: Any
    fixed_z: torch.Tensor | None
    seed: int = 0
    grid_ok: bool = True


@dataclass
class _GridJob:
    """A sample grid being decoded chunk by chunk (see :data:`GRID_CHUNK`)."""

    hosted: Hosted
    step: int = -1
    parts: list = field(default_factory=list)
    done: int = 0
    seconds: float = 0.0


class Host:
    """The host thread: serves requests from a :class:`Snapshot`, latest Decode of each view first.

    Parameters
    ----------
    send : callable
        Sends one event to the window (thread-safe).

    Notes
    -----
    The thread sleeps on a :class:`threading.Condition` while nothing is pending. On CUDA it runs
    on its own stream, so a decode is not queued behind the trainer's kernels. The sample grid
    (64 decodes, 80 ms for a 64x64 conv decoder on one CPU core) is decoded in chunks, and pending
    requests are served first, so a slider never waits for a whole grid.

    Attributes
    ----------
    grid_seconds : float
        Compute time of the last complete grid, s; the trainer spaces grids by it.
    """

    def __init__(self, send: Callable[[P.Event], None]) -> None:
        self._send = send
        self._cv = threading.Condition()
        self._pending: OrderedDict[Any, Any] = OrderedDict()
        self._received: dict[int, float] = {}  # Decode request id -> time.monotonic() it was queued
        self._seq = itertools.count()
        self._hosted: Hosted | None = None
        self._grid_wanted = False
        self._job: _GridJob | None = None
        self.grid_seconds = 0.0
        self._closed = False
        self._stream: Any = None
        #: more request types served from the snapshot: type -> handler(hosted, request) -> Event
        self.handlers: dict[type, Callable[[Hosted, Any], P.Event]] = {}
        self._thread = threading.Thread(target=self._run, name="host", daemon=True)
        self._thread.start()

    # -- called from other threads -------------------------------------------------------------
    def attach(self, hosted: Hosted | None) -> None:
        """Serve ``hosted`` from now on (None: nothing); requests pending for the old model are dropped."""
        with self._cv:
            self._hosted = hosted
            self._pending.clear()
            self._grid_wanted, self._job = False, None
            device = None if hosted is None else hosted.snapshot.model.device
            self._stream = (torch.cuda.Stream(device, priority=-1)  # high priority: ahead of training kernels
                            if device is not None and device.type == "cuda" else None)

    def submit(self, command: P.Command) -> None:
        """Queue a Decode, Encode, Sample, GetExamples, Traverse or Interpolate.

        A pending Decode of the same view, a pending Traverse or a pending Interpolate is replaced
        (latest wins).
        """
        if isinstance(command, P.Decode):
            key: Any = ("Decode", command.view)
            self._received[command.request_id] = time.monotonic()
        elif isinstance(command, P.Traverse):
            key = ("Traverse",)
        elif isinstance(command, P.Interpolate):
            key = ("Interpolate",)
        else:
            key = ("request", next(self._seq))
        with self._cv:
            self._pending[key] = command
            self._cv.notify()

    def request_grid(self) -> None:
        """Ask for one decode of the fixed grid z from the current snapshot.

        A grid in progress is finished first; requests made meanwhile make one more grid.
        """
        with self._cv:
            if self._hosted is not None and self._hosted.grid_ok:
                self._grid_wanted = True
                self._cv.notify()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread after the request in progress."""
        with self._cv:
            self._closed = True
            self._pending.clear()
            self._cv.notify()
        self._thread.join(timeout)

    # -- the thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cv:
                while not (self._pending or self._job or self._grid_wanted or self._closed):
                    self._cv.wait()
                if self._closed:
                    return
                hosted, stream, job = self._hosted, self._stream, self._job
                request: Any = None
                if self._pending:  # interactive requests before the grid
                    _, request = self._pending.popitem(last=False)
                elif job is None:  # a grid is wanted (only ever while a model is hosted)
                    job = self._job = _GridJob(hosted)
                    self._grid_wanted = False
            name = type(request).__name__ if request is not None else "Samples"
            event: P.Event | None
            try:
                if hosted is None:
                    raise ConfigError("no model is loaded: configure a model or load a checkpoint first")
                with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
                    event = self._serve(hosted, request, stream) if request is not None else self._grid_chunk(job, stream)
            except Exception as exc:  # noqa: BLE001 - every failure becomes an Error event
                event = error_event(exc, name)
                if request is None and job is not None:
                    job.hosted.grid_ok = False
                    self._finish_job(job)
            if event is not None:
                self._send(event)

    def _finish_job(self, job: _GridJob | None) -> bool:
        """Forget ``job``; False if it was already dropped (a new model was attached meanwhile)."""
        with self._cv:
            current = self._job is job
            if current:
                self._job = None
        return current

    def _grid_chunk(self, job: _GridJob | None, stream: Any) -> P.Samples | None:
        """Decode the next chunk of the grid; the Samples event once the grid is complete."""
        if job is None:
            return None
        hosted = job.hosted
        snap = hosted.snapshot
        t0 = time.perf_counter()
        with snap.lock, torch.inference_mode():
            self._wait_for_weights(snap, stream)
            if job.step < 0:
                job.step = snap.step
            model = snap.model
            if hosted.fixed_z is None:  # no latent to decode: seeded samples, one image per chunk
                sequential = model.capabilities.sampling == "autoregressive"
                count = 1 if sequential else GRID_SIZE
                gen = torch.Generator(device=model.device).manual_seed(hosted.seed * GRID_SIZE + job.done)
                job.parts.append(to_numpy(model.sample(count, generator=gen)))
                job.done += count
            else:
                z = hosted.fixed_z[job.done : job.done + GRID_CHUNK]
                job.parts.append(to_numpy(model.decode(z)))
                job.done += len(z)
        job.seconds += time.perf_counter() - t0
        if hosted.fixed_z is not None:
            total = len(hosted.fixed_z)
        else:
            total = SEQUENTIAL_GRID if model.capabilities.sampling == "autoregressive" else GRID_SIZE
        if job.done < total:
            return None
        if not self._finish_job(job):
            return None
        self.grid_seconds = job.seconds
        return P.Samples(request_id=-1, step=job.step, images=np.concatenate(job.parts))

    @staticmethod
    def _wait_for_weights(snap: Snapshot, stream: Any) -> None:
        """On CUDA: make the host stream wait until the trainer's last copy into the snapshot is done."""
        if stream is not None and snap.ready_event is not None:
            stream.wait_event(snap.ready_event)

    def _serve(self, hosted: Hosted, request: Any, stream: Any) -> P.Event:
        started = time.monotonic()
        if isinstance(request, P.GetExamples):  # data only: no need for the model
            idx = split_indices(hosted.dataset, list(request.indices), request.split)
            return P.Examples(request_id=request.request_id, indices=list(request.indices),
                              images=np.ascontiguousarray(hosted.dataset.get(idx), dtype=np.float32),
                              labels=_labels(hosted.dataset, idx))
        if type(request) in self.handlers:
            return self.handlers[type(request)](hosted, request)
        x = self._encode_input(hosted, request) if isinstance(request, P.Encode) else None
        if isinstance(request, P.Traverse):
            return self._traverse(hosted, request, stream)
        if isinstance(request, P.Interpolate):
            return self._interpolate(hosted, request, stream)
        snap = hosted.snapshot
        with snap.lock, torch.inference_mode():
            self._wait_for_weights(snap, stream)
            model = snap.model
            device = model.device
            if isinstance(request, P.Decode):
                locked = time.monotonic()
                z = _latents(request.z, model.latent.dim).to(device, non_blocking=True)
                images = to_numpy(model.decode(z))
                times = {"received": self._received.pop(request.request_id, started), "started": started,
                         "locked": locked, "decoded": time.monotonic()}
                if len(self._received) > 64:  # requests replaced unserved never come back for theirs
                    self._received.clear()
                return P.Decoded(request_id=request.request_id, view=request.view, step=snap.step,
                                 images=images, timings=times)
            if isinstance(request, P.Sample):
                _check_count(request.n, "Sample.n")
                gen = torch.Generator(device=device).manual_seed(int(request.seed))
                return P.Samples(request_id=request.request_id, step=snap.step,
                                 images=to_numpy(model.sample(int(request.n), generator=gen)))
            if x is not None:
                model.capabilities.require("encoder", model.name)
                z = model.encode(torch.from_numpy(x).to(device, non_blocking=True))
                return P.Encoded(request_id=request.request_id, view=request.view, z=to_numpy(z), images=x)
        raise ConfigError(f"the host does not serve {type(request).__name__}")

    def _traverse(self, hosted: Hosted, request: P.Traverse, stream: Any) -> P.Traversed:
        """Sweep each requested dimension of a base z over ``steps`` values in [low, high] and decode.

        The base z is ``request.z``, else the posterior mean of held-out example ``request.index``,
        else the prior centre (:func:`prior_centre`). All R x S latents are decoded in batches of
        :data:`TRAVERSE_CHUNK`.
        """
        latent = hosted.snapshot.model.latent
        dims, values = _traverse_plan(request, latent)
        x = None
        if request.z is None and request.index is not None:
            if isinstance(request.index, bool) or not isinstance(request.index, (int, np.integer)):
                raise ConfigError(f"Traverse: index must be an integer, not {request.index!r}")
            idx = split_indices(hosted.dataset, [int(request.index)], "test")
            x = np.ascontiguousarray(hosted.dataset.get(idx), dtype=np.float32)
        snap = hosted.snapshot
        with snap.lock, torch.inference_mode():
            self._wait_for_weights(snap, stream)
            model = snap.model
            device = model.device
            if request.z is not None:
                base = _latents(request.z, latent.dim, "Traverse")
                if base.shape[0] != 1:
                    raise ConfigError(f"Traverse: z must have shape (1, {latent.dim}), not {tuple(base.shape)}")
                base = base.to(device)
            elif x is not None:
                if not model.capabilities.has_encoder:
                    raise ConfigError(f"{model.name} has no encoder: it cannot traverse around an example")
                base = model.encode(torch.from_numpy(x).to(device)).float()
            else:
                base = torch.from_numpy(prior_centre(latent)).to(device)
            grid = traversal_latents(base, dims, torch.from_numpy(values).to(device))
            parts = [model.decode(grid[i : i + TRAVERSE_CHUNK]) for i in range(0, len(grid), TRAVERSE_CHUNK)]
            images = to_numpy(torch.cat(parts)) if parts else np.zeros((0,), np.float32)
            step = snap.step
        images = images.reshape((len(dims), len(values)) + images.shape[1:])
        return P.Traversed(request_id=request.request_id, step=step, dims=dims, values=values,
                           z=to_numpy(base), images=images)

    def _interpolate(self, hosted: Hosted, request: P.Interpolate, stream: Any) -> P.Interpolated:
        """Decode the path through ``request.keyframes`` (:func:`engines.lib.latent.interpolate_spec`).

        The (F, D) path keeps every categorical one-hot block a valid mixture; it is decoded in
        batches of :data:`INTERPOLATE_CHUNK`. Bad input raises ConfigError (K < 2, frames outside
        [K, :data:`MAX_FRAMES`], unknown method, wrong D, non-finite keyframes).
        """
        latent = hosted.snapshot.model.latent
        keys = _keyframes(request, latent.dim)
        snap = hosted.snapshot
        with snap.lock, torch.inference_mode():
            self._wait_for_weights(snap, stream)
            model = snap.model
            z = interpolate_spec(latent, keys, int(request.frames), request.method,
                                 bool(request.constant_speed)).to(torch.float32).to(model.device)
            parts = [model.decode(z[i : i + INTERPOLATE_CHUNK]) for i in range(0, len(z), INTERPOLATE_CHUNK)]
            images = to_numpy(torch.cat(parts))
            step = snap.step
        return P.Interpolated(request_id=request.request_id, step=step, z=to_numpy(z), images=images)

    @staticmethod
    def _encode_input(hosted: Hosted, request: P.Encode) -> np.ndarray:
        shape = tuple(hosted.snapshot.model.data.shape)
        if request.images is not None:
            x = np.asarray(request.images)
            if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape:
                want = "x".join(map(str, shape))
                raise ConfigError(f"Encode: images of shape {tuple(x.shape)} do not match the model's N x {want}")
            _check_count(x.shape[0], "Encode.images")
            return np.ascontiguousarray(x, dtype=np.float32)
        if request.indices is None:
            raise ConfigError("Encode needs images or indices")
        idx = split_indices(hosted.dataset, list(request.indices), request.split)
        return np.ascontiguousarray(hosted.dataset.get(idx), dtype=np.float32)



def _traverse_plan(request: P.Traverse, latent: Any) -> tuple[list[int], np.ndarray]:
    """Checked rows (dimension indices) and column values (S,) float32 of a Traverse; ConfigError otherwise."""
    steps = request.steps
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= int(steps) <= MAX_STEPS:
        raise ConfigError(f"Traverse: steps must be an integer in [1, {MAX_STEPS}], not {steps!r}")
    try:
        low, high = float(request.low), float(request.high)
    except (TypeError, ValueError):
        raise ConfigError(f"Traverse: low and high must be numbers, not {request.low!r}, {request.high!r}") from None
    if not (np.isfinite(low) and np.isfinite(high)) or max(abs(low), abs(high)) > 1e3:
        raise ConfigError(f"Traverse: low and high must be finite numbers within +-1000, not {low}, {high}")
    if request.dims is None:
        dims = latent.continuous
    else:
        dims = list(request.dims)
        bad = [d for d in dims if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or not 0 <= d < latent.dim]
        if bad:
            raise ConfigError(f"Traverse: dims must be integers in [0, {latent.dim}), not {bad[:5]!r}")
        dims = [int(d) for d in dims]
    if not dims:
        raise ConfigError("Traverse: no dimension to traverse (the model has only categorical codes; pass dims)")
    if len(dims) * int(steps) > MAX_REQUEST:
        raise ConfigError(f"Traverse: {len(dims)} rows x {steps} steps exceeds {MAX_REQUEST} images")
    return dims, np.linspace(low, high, int(steps), dtype=np.float32)



def _labels(dataset: Any, idx: np.ndarray) -> np.ndarray | None:
    y = dataset.labels(idx)
    return None if y is None else np.asarray(y, dtype=np.int64)


def _check_count(n: Any, what: str) -> None:
    if not isinstance(n, (int, np.integer)) or not 1 <= int(n) <= MAX_REQUEST:
        raise ConfigError(f"{what} must be an integer in [1, {MAX_REQUEST}], not {n!r}")


def _latents(z: np.ndarray | None, dim: int, what: str = "Decode") -> torch.Tensor:
    """z (N, dim) as a float32 tensor on the CPU, or ConfigError naming the wrong shape."""
    if z is None or z.ndim != 2 or z.shape[1] != dim or z.dtype.kind not in "fiu" or not np.isfinite(z).all():
        got = None if z is None else f"{z.dtype} {tuple(z.shape)}"
        raise ConfigError(f"{what}: z must be a finite float array of shape (N, {dim}), not {got}")
    _check_count(z.shape[0], f"{what}: number of latents")
    return torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))


def _keyframes(request: P.Interpolate, dim: int) -> torch.Tensor:
    """Checked (K, dim) float32 keyframes of an Interpolate; ConfigError naming what is wrong."""
    k = request.keyframes
    if k is None or k.ndim != 2 or k.shape[1] != dim or k.dtype.kind not in "fiu" or not np.isfinite(k).all():
        got = None if k is None else f"{k.dtype} {tuple(k.shape)}"
        raise ConfigError(f"Interpolate: keyframes must be a finite float array of shape (K, {dim}), not {got}")
    if k.shape[0] < 2:
        raise ConfigError(f"Interpolate: a path needs at least 2 keyframes, not {k.shape[0]}")
    frames = request.frames
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or not k.shape[0] <= frames <= MAX_FRAMES:
        raise ConfigError(f"Interpolate: frames must be an integer in [{k.shape[0]}, {MAX_FRAMES}], not {frames!r}")
    if request.method not in METHODS:
        raise ConfigError(f"Interpolate: unknown method {request.method!r}; use one of {', '.join(METHODS)}")
    return torch.from_numpy(np.ascontiguousarray(k, dtype=np.float32))


def split_indices(dataset: Any, indices: list, split: str) -> np.ndarray:
    """Indices into ``dataset`` of positions ``indices`` in its ``split``; DataError when out of range."""
    if dataset is None:
        raise DataError("no data set is loaded (the checkpoint's data could not be found): examples are unavailable")
    if split not in ("train", "test"):
        raise ConfigError(f"split must be 'train' or 'test', not {split!r}")
    pool = dataset.train_indices if split == "train" else dataset.test_indices
    _check_count(len(indices), f"number of {split} indices")
    try:
        pos = np.asarray(indices, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"indices must be integers, not {indices[:5]!r}") from None
    if pos.ndim != 1 or pos.min() < 0 or pos.max() >= len(pool):
        raise DataError(
            f"{dataset.info.spec}: indices must lie in [0, {len(pool)}) of the {split} split, not {pos.min()}..{pos.max()}"
        )
    return pool[pos]
