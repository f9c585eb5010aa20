"""The worker's job thread: long requests (exports, GAN projection) with progress and cancel.

Long work must neither hold the host thread (slider decodes keep flowing, DESIGN.md "Two
processes, one protocol") nor the trainer. :class:`Jobs` runs one job at a time, first come first
served, on its own thread; each job has the ``request_id`` of its command, sends
:class:`~engines.shared.protocol.Progress` (throttled where it is produced, as Orange3's
``concurrent.py`` does: at most ~10 a second) and stops when a :class:`~engines.shared.protocol.Cancel`
of its id arrives. A cancelled job ends with a Progress whose message is ``"cancelled"`` and
leaves no partial output file (:mod:`engines.lib.export` removes it).

The job bodies:

- :func:`run_export`: saves the weights beside the output (through the worker, which knows when
  the live model may be touched), reloads that checkpoint and renders with
  :func:`engines.lib.export.export`, so ``latent-studio render SIDECAR`` starts from the very same
  weights; answered by :class:`~engines.shared.protocol.Exported`.
- :func:`run_projection`: an Encode for a model without an encoder (GANs): optimise z through the
  decoder (:func:`engines.lib.projection.project`; Zhu et al. 2016, Creswell & Bharath 2018) on a
  private copy of the snapshot's weights; answered by :class:`~engines.shared.protocol.Encoded`.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engines.shared import protocol as P
from engines.shared.errors import ConfigError
from engines.worker.host import Host, Hosted, Snapshot, error_event, to_numpy

#: Least seconds between two Progress events of one job (the last one is always sent).
PROGRESS_INTERVAL = 0.1
#: Most Adam steps one projecting Encode may ask for.
MAX_PROJECT_STEPS = 20000
#: Suffixes an Export may write.
EXPORT_SUFFIXES = (".gif", ".mp4", ".png")
#: The message of the Progress that ends a cancelled job.
CANCELLED = "cancelled"


@dataclass
class Job:
    """One queued or running job.

    Attributes
    ----------
    request_id : int
        Id of the command (Export, Encode) it answers.
    command : str
        The command's type name, used as the ``command`` of an Error.
    task : str
        The ``task`` of its Progress events ("export", "project").
    body : callable (Job) -> Event or None
        The work; returns the answer to send.
    cancel : threading.Event
        Set by :meth:`Jobs.cancel`; the body polls it.
    """

    request_id: int
    command: str
    task: str
    body: Callable[[Job], P.Event | None]
    cancel: threading.Event = field(default_factory=threading.Event)
    send: Callable[[P.Event], None] | None = None
    _last: float = 0.0
    _done: int = 0
    _total: int = 0

    def progress(self, done: int, total: int, message: str = "") -> None:
        """Send Progress(done of total) unless one went out less than :data:`PROGRESS_INTERVAL` s ago.

        The last unit (``done >= total``) is always sent.
        """
        self._done, self._total = int(done), int(total)
        now = time.monotonic()
        if self.send is None or (now - self._last < PROGRESS_INTERVAL and done < total):
            return
        self._last = now
        self.send(P.Progress(task=self.task, done=int(done), total=int(total), message=message,
                             request_id=self.request_id))

    def cancelled(self) -> P.Progress:
        """The Progress that ends a cancelled job."""
        return P.Progress(task=self.task, done=self._done, total=self._total, message=CANCELLED,
                          request_id=self.request_id)


class Jobs:
    """The job thread: runs queued :class:`Job` s one at a time; :meth:`cancel` stops one by id.

    Parameters
    ----------
    send : callable
        Sends one event to the window (thread-safe).

    Notes
    -----
    Any exception of a job becomes an Error naming its command, except when the job was cancelled:
    then the job ends with Progress(message "cancelled") and sends nothing else. A job that finished
    before its Cancel reached it sends its answer as usual (its files are complete).
    """

    def __init__(self, send: Callable[[P.Event], None]) -> None:
        self._send = send
        self._cv = threading.Condition()
        self._queue: deque[Job] = deque()
        self._running: Job | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="jobs", daemon=True)
        self._thread.start()

    def submit(self, request_id: int, command: str, task: str, body: Callable[[Job], P.Event | None]) -> Job:
        """Queue ``body`` as the job of ``request_id``; returns the job."""
        job = Job(int(request_id), command, task, body, send=self._send)
        with self._cv:
            self._queue.append(job)
            self._cv.notify()
        return job

    def cancel(self, request_id: int) -> bool:
        """Cancel the queued or running job of ``request_id``; False if there is none."""
        with self._cv:
            running = self._running
            if running is not None and running.request_id == request_id:
                running.cancel.set()
                return True
            for job in list(self._queue):
                if job.request_id == request_id:
                    self._queue.remove(job)
                    job.cancel.set()
                    self._send(job.cancelled())
                    return True
        return False

    def busy(self) -> bool:
        """Whether a job is queued or running."""
        with self._cv:
            return self._running is not None or bool(self._queue)

    def close(self, timeout: float = 5.0) -> None:
        """Cancel every job and stop the thread."""
        with self._cv:
            self._closed = True
            if self._running is not None:
                self._running.cancel.set()
            self._queue.clear()
            self._cv.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not (self._queue or self._closed):
                    self._cv.wait()
                if self._closed:
                    return
                job = self._running = self._queue.popleft()
            try:
                event = job.body(job)
                if event is None and job.cancel.is_set():
                    event = job.cancelled()  # a job that finished before the cancel reached it still answers
            except Exception as exc:  # noqa: BLE001 - every failure becomes an event
                event = job.cancelled() if job.cancel.is_set() else error_event(exc, job.command)
            finally:
                with self._cv:
                    self._running = None
            if event is not None:
                self._send(event)


# ------------------------------------------------------------------------------------------------
# Job bodies
# ------------------------------------------------------------------------------------------------


def export_target(out: str) -> Path:
    """The checked output path of an Export: absolute, with a suffix of :data:`EXPORT_SUFFIXES`.

    Raises
    ------
    ConfigError
        An empty path, an unknown suffix, or a folder that does not exist.
    """
    if not isinstance(out, str) or not out:
        raise ConfigError("Export needs an output path (out)")
    path = Path(out).expanduser().absolute()
    if path.suffix.lower() not in EXPORT_SUFFIXES:
        raise ConfigError(f"{path}: cannot export to {path.suffix or 'a file without suffix'}; "
                          f"use one of {', '.join(EXPORT_SUFFIXES)}")
    if not path.parent.is_dir():
        raise ConfigError(f"{path}: the folder {path.parent} does not exist")
    return path


def run_export(job: Job, cmd: P.Export, checkpoint_for: Callable[[Path, threading.Event], Path],
               device: torch.device) -> P.Exported:
    """Save the weights, then render and write ``cmd.out`` and its sidecar.

    Parameters
    ----------
    job : Job
    cmd : Export
    checkpoint_for : callable (out, cancel) -> Path
        Saves the current weights beside ``out`` (or returns the last checkpoint written when the
        weights have not changed since); waits for the trainer where it must.
    device : torch.device
        Where the checkpoint is reloaded to render.

    Returns
    -------
    Exported
        Path of the file, of its sidecar, frames written (animation frames; cells of a PNG strip)
        and wall seconds.

    Raises
    ------
    ConfigError, ExportError, CheckpointError
        A bad output path, kind or settings; a checkpoint that cannot be written or read back.
    """
    from engines.lib import export as X
    from engines.lib.checkpoint import load_checkpoint

    t0 = time.perf_counter()
    out = export_target(cmd.out)
    if not isinstance(cmd.latents, dict) or not isinstance(cmd.settings, dict):
        raise ConfigError("Export: latents and settings must be dicts")
    job.progress(0, 0, "saving the weights")
    own = out.with_name(out.name + ".safetensors")
    fresh = not own.exists()  # the checkpoint this export writes, unless an earlier one is reused
    checkpoint = checkpoint_for(out, job.cancel)
    try:
        engine, _ = load_checkpoint(checkpoint, device=device, with_optimizer=False)
        engine.eval()
        sidecar = X.export(engine, cmd.kind, out, checkpoint, dict(cmd.latents), dict(cmd.settings),
                           progress=job.progress, cancel=job.cancel)
    except BaseException:
        if fresh and Path(checkpoint).resolve() == own.resolve():  # a failed or cancelled export leaves no file
            own.unlink(missing_ok=True)
        raise
    if out.suffix.lower() == ".png":  # one picture: the cells of the strip (progress counts the latents + the write)
        frames = max(0, job._total - 1)
    else:
        from engines.shared.media import read_frame_count

        frames = read_frame_count(out)
    return P.Exported(request_id=cmd.request_id, path=str(out), sidecar=str(sidecar), frames=frames,
                      seconds=time.perf_counter() - t0)


#: Largest delivered export, bytes (the file, its sidecar and its weights together).
MAX_DELIVERED = 256 * 2**20


def deliver_export(job: Job, cmd: P.Export, checkpoint_for: Callable[..., Path], device: torch.device) -> P.Exported:
    """Render ``cmd`` in a temporary folder and answer with the files' bytes, for a window on another machine.

    The weights are always written beside the file (never an earlier checkpoint elsewhere), so the
    sidecar names them by a path relative to itself and re-renders where the window writes the three.

    Raises
    ------
    ExportError
        The files together pass :data:`MAX_DELIVERED` bytes; and whatever :func:`run_export` raises.
    """
    import shutil
    import tempfile

    from engines.shared.errors import ExportError

    name = Path(str(cmd.out)).name
    if not name or name in (".", ".."):
        raise ConfigError(f"Export: no file name in {cmd.out!r}")
    folder = Path(tempfile.mkdtemp(prefix="latent-studio-export-"))
    try:
        local = dataclasses.replace(cmd, out=str(folder / name), deliver=False)
        done = run_export(job, local, lambda out, cancel: checkpoint_for(out, cancel, reuse=False), device)
        files = [folder / name, folder / (name + ".json"), folder / (name + ".safetensors")]
        files = [f for f in files if f.is_file()]
        sizes = [f.stat().st_size for f in files]
        if sum(sizes) > MAX_DELIVERED:
            raise ExportError(f"{name}: {sum(sizes) / 2**20:.0f} MB is too much to send back; export to a smaller "
                              f"size or fewer frames (at most {MAX_DELIVERED // 2**20} MB)")
        blob = np.frombuffer(b"".join(f.read_bytes() for f in files), np.uint8)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return P.Exported(request_id=cmd.request_id, path=str(cmd.out), sidecar=str(cmd.out) + ".json",
                      frames=done.frames, seconds=done.seconds, names=[f.name for f in files], sizes=sizes,
                      blob=blob)


class PrivateCopies:
    """A private copy of a snapshot's weights for a job, rebuilt only when the snapshot's step changed."""

    def __init__(self) -> None:
        self._key: tuple[int, int] | None = None
        self._model: Any = None

    def get(self, snap: Snapshot) -> Any:
        """An engine with the snapshot's weights and hyperparameters, in eval mode, not shared."""
        with snap.lock:
            key = (id(snap), snap.step)
            if key != self._key:
                src = snap.model
                if self._key is None or self._key[0] != key[0]:  # another snapshot: a new model
                    self._model = type(src)(src.config, src.data)
                    self._model.name = src.name
                    self._model.to(src.device)
                    self._model.eval()
                with torch.no_grad():
                    self._model.load_state_dict(src.state_dict())
                for name, hp in src.hyper.items():
                    if name in self._model.hyper and self._model.hyper[name].value != hp.value:
                        self._model.set_hyper(name, hp.value)
                self._key = key
            return self._model


def run_projection(job: Job, cmd: P.Encode, hosted: Hosted, copies: PrivateCopies) -> P.Encoded | None:
    """Encode by projection: optimise z so that the decoder reconstructs the images.

    Parameters
    ----------
    job : Job
    cmd : Encode
        Images (N, C, H, W) in [0, 1] or data-set indices; ``project_steps`` Adam steps.
    hosted : Hosted
        The snapshot and data set being served.
    copies : PrivateCopies
        Where the private copy of the weights is kept between projections.

    Returns
    -------
    Encoded or None
        ``z`` (N, D) float32, the visited z of lowest pixel MSE per image, and the images;
        None when cancelled (the job then ends with Progress "cancelled").

    Raises
    ------
    ConfigError, DataError
        Bad images, indices or step count; a decoder that is not differentiable.
    """
    from engines.lib.projection import project

    steps = cmd.project_steps
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= MAX_PROJECT_STEPS:
        raise ConfigError(f"Encode: project_steps must be an integer in [0, {MAX_PROJECT_STEPS}], not {steps!r}")
    x = Host._encode_input(hosted, cmd)
    model = copies.get(hosted.snapshot)
    job.progress(0, steps, "projecting")
    z, losses = project(model, torch.from_numpy(x), steps=steps,
                        callback=lambda k, loss: job.progress(k, steps, f"pixel MSE {loss:.4g}"),
                        should_stop=job.cancel.is_set)
    if job.cancel.is_set():
        return None
    return P.Encoded(request_id=cmd.request_id, view=cmd.view, z=to_numpy(z), images=np.ascontiguousarray(x))
