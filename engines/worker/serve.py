"""The worker process: trains and hosts one model for the window, over a pickle-free link.

Started by :class:`engines.shared.link.WorkerLink` as::

    LATENT_STUDIO_AUTHKEY=<hex> python -m engines.cli.worker --connect HOST:PORT [--threads N] [--device D]

it connects back with :func:`multiprocessing.connection.Client`, sends
:class:`~engines.shared.protocol.Started`, then serves :mod:`engines.shared.protocol` commands until
:class:`~engines.shared.protocol.Shutdown` or until the window goes away (end of file on the
connection): the worker never lingers as an orphan. Four threads share the work
(DESIGN.md, "Two processes, one protocol"):

- the main thread reads commands, configures models and loads checkpoints;
- the trainer thread (:mod:`engines.worker.trainer`) trains, streams metrics and the sample grid,
  refreshes the weight snapshot and autosaves;
- the host thread (:mod:`engines.worker.host`) answers Decode, Encode, Sample, GetExamples,
  Traverse, Interpolate, PixelSurprise and Score from the snapshot, newest Decode of each view (and newest Traverse,
  newest Interpolate) first;
- the metrics thread (:mod:`engines.worker.live_metrics`, low priority) measures mode coverage and
  disentanglement on its own copy of the snapshot while training runs;
- the job thread (:mod:`engines.worker.jobs`) runs long requests one at a time, with progress and
  cancel: Export, Encode for a model without an encoder (projection), and DrawPixels (pixel-by-pixel
  drawing, :mod:`engines.worker.pixels`).

Every failure becomes an :class:`~engines.shared.protocol.Error` event and the worker keeps serving.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engines.shared import protocol as P
from engines.shared.errors import ConfigError, DataError, LatentStudioError, ProtocolError
from engines.worker.host import GRID_SIZE, Host, Hosted, Snapshot, error_event
from engines.worker.jobs import Jobs, PrivateCopies, deliver_export, run_export, run_projection
from engines.worker.live_metrics import LiveMetrics
from engines.worker.pixels import pixel_surprise, run_draw
from engines.worker.directions import run_directions, run_map, run_nearest
from engines.worker.energy import run_chains, run_codebook, run_filters, run_inspect_hidden, run_log_z
from engines.worker.scoring import score
from engines.shared.registry import create_engine, model_names
from engines.shared.runs import claim_run_name, new_run_name, runs_dir
from engines.worker.trainer import Session, Trainer, autosave_path
from engines.worker.trust import Trust

#: Most rows of a resumed run's curves sent to the window (evenly thinned beyond it).
HISTORY_ROWS = 2_000
#: Seconds the worker waits for a training session to end before it reconfigures or exits.
STOP_TIMEOUT = 60.0


def _run_name_of(checkpoint: Path, engine: str, data_spec: str) -> str:
    """The run an opened checkpoint trains on in: its own folder when it is one of ``runs/``, else a new one."""
    try:
        folder = checkpoint.resolve().parent
        if folder.parent == runs_dir().resolve():
            return folder.name
    except OSError:
        pass
    return claim_run_name(new_run_name(engine, data_spec))


def history_events(session: Session, csv_path: Path) -> list[P.Event]:
    """A resumed run's curves before its step (one StepMetrics, at most :data:`HISTORY_ROWS` rows, evenly
    thinned; a Warned if the file cannot be read) and its hyperparameter changes, for the window's plots."""
    from engines.shared.runs import read_metrics_csv

    events: list[P.Event] = []
    if csv_path.is_file():
        try:
            steps, terms = read_metrics_csv(csv_path)
        except LatentStudioError as exc:
            events.append(P.Warned(category="resume", message=f"the run's curves were not restored: {exc}"))
            steps, terms = [], {}
        keep = [i for i, st in enumerate(steps) if st < session.step]  # the steps before the next one
        if len(keep) > HISTORY_ROWS:
            keep = [keep[int(j)] for j in np.linspace(0, len(keep) - 1, HISTORY_ROWS)]
        if keep and terms:
            values = np.asarray([[terms[k][i] for k in terms] for i in keep], dtype=np.float32)
            events.append(P.StepMetrics(steps=np.asarray([steps[i] for i in keep], dtype=np.int64),
                                        names=list(terms), values=values))
    events += [P.HyperparameterChanged(name=name, value=value, step=step) for step, name, value in session.hyper_history]
    return events


class Worker:
    """Serves the commands of one window on ``conn``.

    Parameters
    ----------
    conn : multiprocessing.connection.Connection
        Carries :mod:`engines.shared.protocol` frames only (``send_bytes``/``recv_bytes``).
    device : torch.device
        Where models train and are hosted.
    threads : int
        Torch CPU threads (reported in Started).

    Notes
    -----
    What each command is answered with:

    - Configure, LoadCheckpoint: Progress (task "model", done 0..3 of 3), then Ready and a first
      Samples grid (request id -1). A running session is stopped (Stopped) only once the new model
      is built, so a Configure that fails leaves training alone.
    - Train: TrainingState "training", then StepMetrics (every ~100 ms), Samples -1 (every ~1 s
      or more on a slow device), CheckpointSaved autosave (every ~60 s and at the end), and last
      Stopped(step, reason). A Train while training changes the step budget.
    - Pause / Resume: TrainingState "paused" / "training" when it takes effect; Pause, Resume or
      Stop with nothing training: TrainingState "idle".
    - SetHyperparameter: HyperparameterChanged (applied between two steps while training).
    - SaveCheckpoint: CheckpointSaved (autosave False).
    - SetMetricSchedule: no reply; from then on CoverageMeasured every ``coverage_every`` and
      DisentanglementMeasured every ``disentanglement_every`` seconds of training (0 = never;
      defaults 10 and 30), each once more when a session stops, from the metrics thread
      (:class:`~engines.worker.live_metrics.LiveMetrics`), which also sends Progress (task "coverage")
      while a coverage classifier trains.
    - Decode, Encode, Sample, GetExamples, Traverse, Interpolate: Decoded, Encoded, Samples,
      Examples, Traversed, Interpolated from the host thread; a Decode superseded by a newer one
      of its view, or a Traverse (Interpolate) superseded by a newer one, gets no answer.
    - Encode for a model without an encoder: Progress (task "project", its request id), then
      Encoded, from the job thread (projection on a private copy of the snapshot's weights).
    - Export: Progress (task "export", its request id, at most ~10 a second), then Exported, from
      the job thread; the weights are saved first to ``<out>.safetensors`` (``walk.gif.safetensors``), or the
      last checkpoint written for an export or SaveCheckpoint is reused when the weights have not
      changed since.
    - DrawPixels: PixelFrame events from the job thread (about ``frames`` of them, ``delay_ms`` apart),
      the last with ``final`` True, and a Progress (task "pixels") at the end; Cancel stops it.
    - PixelSurprise, Score: PixelSurprised, Scored from the host thread.
    - FindDirections, MapLatents, FindNearest: Progress (tasks "directions", "map", "nearest"), then
      DirectionsFound, LatentMapped, NearestFound, from the job thread.
    - RunChains, GetFilters, EstimateLogZ (a model with the "chains" / "filters" extras): ChainFrame events
      (the last with ``final``), Filters, and Progress (task "ais") then LogZEstimated, from the job thread;
      InspectHidden: HiddenInspected; GetCodebook (the "codebook" extra): Codebook.
    - Cancel: the job of that request id ends with Progress(message "cancelled") instead of its
      answer (no partial file is left); no reply when there is no such job.

    Any failure is an Error whose ``command`` is the command's type name, ``"frame"`` for a frame
    that does not decode, ``"Train"`` for a failed training step (then Stopped "error"),
    ``"Samples"`` for a failed sample grid (reported once), ``"autosave"`` and ``"metrics"`` for a
    failed live measurement (a failure that repeats is reported once).
    """

    def __init__(self, conn: Connection, device: torch.device, threads: int, lockstep: Any = None) -> None:
        self.conn = conn
        self.device = device
        self.threads = threads
        self.lockstep = lockstep  # other processes training data-parallel with this one (engines.worker.lockstep)
        self.session: Session | None = None
        self.trainer: Trainer | None = None
        self.connected = True
        self._send_lock = threading.Lock()
        self.host = Host(self.send)
        self.trust = Trust(self.send, device, self._in_trainer)
        self.live = LiveMetrics(lambda event: self.send(self.trust.measured(event)))
        self.jobs = Jobs(self.send)
        self._copies = PrivateCopies()
        self._last_saved: tuple[Any, int, Path] | None = None  # (session, step, path) of the last explicit save
        host = self.host.submit  # interactive requests: answered from the weight snapshot, latest wins
        #: command type -> handler; the only routing there is (a command not listed is an Error)
        self._handlers: dict[type, Callable[[Any], None]] = {
            P.Configure: self._configure,
            P.Train: self._train,
            P.Pause: self._pause,
            P.Resume: self._resume,
            P.Stop: self._stop,
            P.SetHyperparameter: self._set_hyper,
            P.SaveCheckpoint: self._save_checkpoint,
            P.LoadCheckpoint: self._load_checkpoint,
            P.SetMetricSchedule: self._set_metric_schedule,
            P.SetWatchdog: self.trust.set_watchdog,
            P.SetTimeline: self.trust.set_timeline,
            P.ScrubTimeline: self.trust.scrub,
            P.Cancel: lambda c: self.jobs.cancel(c.request_id),
            P.Export: self._export,
            P.Decode: self._decode,
            P.Encode: self._encode,
            P.Sample: host, P.GetExamples: host, P.Traverse: host, P.Interpolate: host,
            P.DrawPixels: self._draw_pixels, P.PixelSurprise: host, P.Score: host,
            P.FindDirections: lambda c: self._job(c, "directions", run_directions),
            P.MapLatents: lambda c: self._job(c, "map", run_map),
            P.FindNearest: lambda c: self._job(c, "nearest", run_nearest),
            P.RunChains: lambda c: self._job(c, "chains", run_chains),
            P.GetFilters: lambda c: self._job(c, "filters", run_filters),
            P.EstimateLogZ: lambda c: self._job(c, "ais", run_log_z),
            P.InspectHidden: lambda c: self._job(c, "hidden", run_inspect_hidden),
            P.GetCodebook: lambda c: self._job(c, "codebook", run_codebook),
        }
        self.host.handlers.update({P.PixelSurprise: pixel_surprise, P.Score: score})

    # -- the link ------------------------------------------------------------------------------
    def send(self, event: P.Event) -> None:
        """Send one event (thread-safe); a broken connection is remembered, not raised."""
        try:
            frame = P.encode(event)
        except ProtocolError as exc:  # a bug in an event; tell the window rather than lose it
            frame = P.encode(error_event(exc, type(event).__name__))
        try:
            with self._send_lock:
                self.conn.send_bytes(frame)
        except (OSError, EOFError, ValueError):
            self.connected = False

    def show_warning(self, message: Warning | str, category: type, filename: str, lineno: int,
                     file: Any = None, line: str | None = None) -> None:
        """``warnings.showwarning`` in the worker: a :class:`Warned` event for the window's Messages panel.

        The warnings filters still decide what is shown (by default once per place in the code).
        """
        self.send(P.Warned(category=getattr(category, "__name__", str(category)), message=str(message),
                           where=f"{os.path.basename(filename)}:{lineno}"))

    def serve(self) -> None:
        """Send Started, then handle commands until Shutdown or until the window goes away.

        While it serves, Python warnings go to the window (:meth:`show_warning`), not to the terminal.
        """
        warnings.showwarning = self.show_warning
        self.send(P.Started(pid=os.getpid(), device=str(self.device), threads=self.threads,
                            torch_version=torch.__version__, models=model_names()))
        try:
            while self.connected:
                try:
                    frame = self.conn.recv_bytes(P.MAX_FRAME_BYTES)
                except (OSError, EOFError):
                    break  # the window closed the connection or died
                try:
                    command = P.decode(frame)
                    if not isinstance(command, P.Command):
                        raise ProtocolError(f"the worker accepts commands, not {type(command).__name__}")
                except ProtocolError as exc:
                    self.send(error_event(exc, "frame"))
                    continue
                if isinstance(command, P.Shutdown):
                    break
                self.handle(command)
        finally:
            self.shutdown()

    def handle(self, command: P.Command) -> None:
        """Handle one command by the dispatch table; any exception becomes an Error event naming the command."""
        try:
            handler = self._handlers.get(type(command))
            if handler is None:
                raise ConfigError(f"this worker does not handle {type(command).__name__}")
            handler(command)
        except Exception as exc:  # noqa: BLE001 - the worker keeps serving after any failure
            self.send(error_event(exc, type(command).__name__))

    def _export(self, command: P.Export) -> None:
        self.jobs.submit(command.request_id, "Export", "export",
                         lambda job: (deliver_export if command.deliver else run_export)(
                             job, command, self._checkpoint_for, self.device))

    def _draw_pixels(self, command: P.DrawPixels) -> None:
        """Draw pixel by pixel on the job thread (frames streamed, Cancel to pause)."""
        session = self._session()
        hosted = Hosted(session.snapshot, session.dataset, None)
        self.jobs.submit(command.request_id, "DrawPixels", "pixels",
                         lambda job: run_draw(job, command, hosted, self._copies))

    def _job(self, command: P.Command, task: str, body) -> None:  # noqa: ANN001 - (job, command, hosted, copies) -> Event
        """Run ``body`` for ``command`` on the job thread, on the current snapshot (with Progress of ``task``)."""
        session = self._session()
        hosted = Hosted(session.snapshot, session.dataset, None)
        self.jobs.submit(command.request_id, type(command).__name__, task,
                         lambda job: body(job, command, hosted, self._copies))

    def _decode(self, command: P.Decode) -> None:
        self.live.interactive()  # a slider is moving: hold the next measurement back
        self.host.submit(command)

    def _encode(self, command: P.Encode) -> None:
        """Encode by the model's encoder on the host thread, or, for a model that declares none, by
        projection on the job thread (with Progress and Cancel)."""
        if self.session is not None and not self.session.engine.capabilities.has_encoder:
            hosted = Hosted(self.session.snapshot, self.session.dataset, None)
            self.jobs.submit(command.request_id, "Encode", "project",
                             lambda job: run_projection(job, command, hosted, self._copies))
        else:
            self.host.submit(command)

    def shutdown(self) -> None:
        """End training (autosaving), stop the host thread and close the connection."""
        self._end_training()
        if self.lockstep is not None:
            self.lockstep.pause()
        self.jobs.close()
        self.live.close()
        self.host.close()
        self.trust.close()
        try:
            self.conn.close()
        except OSError:
            pass

    # -- helpers -------------------------------------------------------------------------------
    def _session(self) -> Session:
        if self.session is None:
            raise ConfigError("no model is configured: send Configure or LoadCheckpoint first")
        return self.session

    def _training(self) -> Trainer | None:
        t = self.trainer
        return t if t is not None and t.is_active() else None

    def _end_training(self) -> None:
        """Stop the training session, if any, and wait until it has ended (it sends Stopped)."""
        t = self.trainer
        if t is not None:
            t.stop()
            t.join(STOP_TIMEOUT)
            self.trainer = None

    def _in_trainer(self, command: P.Command, action: Callable[[], None]) -> None:
        """Run ``action`` where it may touch the live model: between steps if training, else now."""
        name = type(command).__name__

        def guarded() -> None:
            try:
                action()
            except Exception as exc:  # noqa: BLE001
                self.send(error_event(exc, name))

        t = self._training()
        if t is None or not t.call_soon(guarded):
            guarded()

    def _progress(self, done: int, total: int, message: str) -> None:
        self.send(P.Progress(task="model", done=done, total=total, message=message))

    def _write_checkpoint(self, path: Path | str, autosave: bool, session: Session | None = None,
                          manifest_beside: bool = True) -> P.CheckpointSaved:
        """Save the live model of ``session`` (default: the current one) where it may be touched (:meth:`_in_trainer`)."""
        from engines.lib.checkpoint import save_checkpoint

        s = session or self._session()
        step = s.step
        out = save_checkpoint(s.engine, Path(path), step=step, data_spec=s.data_spec,
                              image_size=s.image_size, extra=s.manifest_extra(), manifest_beside=manifest_beside,
                              resume=s.capture_resume())
        if not autosave:  # autosaves are overwritten: an export never points at one
            self._last_saved = (s, step, Path(out))
        return P.CheckpointSaved(path=str(out), step=step, autosave=autosave)

    def _checkpoint_for(self, out: Path, cancel: threading.Event, reuse: bool = True) -> Path:
        """A checkpoint of the current weights for an export to ``out`` (called on the job thread).

        Returns the last checkpoint saved explicitly when the session and step are unchanged and
        the file is still there (``reuse``); else writes ``<out>.safetensors`` (its own file per export, so a
        later export never overwrites the weights an earlier sidecar names), between two
        steps when training (waits for the trainer, polling ``cancel``).

        Raises
        ------
        ConfigError
            No model is configured, or the export was cancelled while waiting (the job is then
            reported as cancelled).
        """
        s = self._session()
        last = self._last_saved
        if reuse and last is not None and last[0] is s and last[1] == s.step and last[2].is_file():
            return last[2]
        done, box = threading.Event(), {}

        def save() -> None:
            try:
                box["saved"] = self._write_checkpoint(out.with_name(out.name + ".safetensors"), False, s,
                                                      manifest_beside=False)  # out.json is the export's sidecar
            except Exception as exc:  # noqa: BLE001 - raised again on the job thread
                box["error"] = exc
            finally:
                done.set()

        t = self._training()
        if t is None or not t.call_soon(save):
            save()
        while not done.wait(0.05):
            if cancel.is_set():
                raise ConfigError("export cancelled while waiting for the trainer to save the weights")
        if "error" in box:
            raise box["error"]
        return Path(box["saved"].path)

    def _host_session(self, session: Session, checkpoint: str | None, summary: str) -> None:
        """Make ``session`` current: the host serves it, the window gets Ready and a first grid."""
        engine = session.engine
        fixed_z = None
        if engine.latent.dim > 0:  # the same 64 prior draws for the whole run (seeded by the config seed)
            try:
                gen = torch.Generator(device=engine.device).manual_seed(session.seed)
                fixed_z = engine.prior_sample(GRID_SIZE, gen).detach()
            except Exception:  # noqa: BLE001 - the grid then shows seeded samples instead
                fixed_z = None
            if engine.device.type == "cuda":
                torch.cuda.synchronize(engine.device)  # the host thread reads fixed_z on its own stream
        self.session = session
        self.host.attach(Hosted(session.snapshot, session.dataset, fixed_z, session.seed))
        self.live.attach(session)
        self.send(P.Ready(
            device=str(self.device) if self.lockstep is None else self.lockstep.label, model=engine.name, family=engine.family, data=engine.data,
            data_summary=summary, latent=engine.latent, hyper=list(engine.hyper.values()),
            capabilities=engine.capabilities, config=engine.config.to_json(), step=session.step,
            checkpoint=checkpoint,
        ))
        self.trust.attach(session, autosave_path(session).parent / "timeline", fixed_z)
        self.host.request_grid()

    # -- commands ------------------------------------------------------------------------------
    def _configure(self, cmd: P.Configure) -> None:
        from engines.data import load_dataset

        if not isinstance(cmd.options, dict):
            raise ConfigError(f"Configure.options must be a dict, not {type(cmd.options).__name__}")
        if not isinstance(cmd.batch_size, int) or cmd.batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, not {cmd.batch_size!r}")
        self._progress(0, 3, f"Loading data {cmd.data!r}")
        dataset = load_dataset(cmd.data, cmd.image_size)
        self._progress(1, 3, f"Building {cmd.model}")
        overrides = {**cmd.options, "latent_dim": cmd.latent_dim, "seed": cmd.seed}
        torch.manual_seed(cmd.seed)
        engine = create_engine(cmd.model, dataset.info, **overrides)
        self._progress(2, 3, f"Moving {cmd.model} to {self.device}")
        self._end_training()  # only now: a Configure that fails leaves the current run alone
        engine.to(self.device)
        session = Session(engine=engine, snapshot=Snapshot(engine, 0), dataset=dataset, data_spec=cmd.data,
                          image_size=cmd.image_size, seed=cmd.seed, batch_size=int(cmd.batch_size),
                          run_name=claim_run_name(new_run_name(cmd.model, cmd.data)))
        self._progress(3, 3, "Ready")
        self._host_session(session, None, dataset.summary())

    def _load_checkpoint(self, cmd: P.LoadCheckpoint) -> None:
        from engines.lib.checkpoint import load_checkpoint, read_resume_state
        from engines.data import load_dataset

        self._progress(0, 3, f"Loading checkpoint {cmd.path}")
        engine, manifest = load_checkpoint(cmd.path, device="cpu", with_optimizer=True)
        resume = read_resume_state(cmd.path)
        spec, image_size = manifest.get("data_spec"), manifest.get("image_size")
        extra = manifest.get("extra") or {}
        self._progress(1, 3, f"Loading data {spec!r}")
        dataset, summary = None, ""
        try:
            if not isinstance(spec, str) or not spec:
                raise DataError(f"{cmd.path}: the manifest names no data set")
            dataset = load_dataset(spec, image_size)
            if tuple(dataset.info.shape) != tuple(engine.data.shape):
                raise DataError(f"{spec}: examples of shape {dataset.info.shape}, but the model was trained "
                                f"on {tuple(engine.data.shape)}")
            summary = dataset.summary()
        except (LatentStudioError, OSError) as exc:
            dataset = None
            summary = f"{spec}: data unavailable ({exc}); the model can decode and sample, not train or encode examples"
        self._progress(2, 3, f"Moving {engine.name} to {self.device}")
        self._end_training()
        engine.to(self.device)
        step = int(manifest.get("step") or 0)
        session = Session(engine=engine, snapshot=Snapshot(engine, step), dataset=dataset,
                          data_spec=spec if isinstance(spec, str) else "", image_size=image_size,
                          seed=int(extra.get("seed", getattr(engine.config, "seed", 0))),
                          batch_size=int(extra.get("batch_size", 64)), step=step,
                          extra={k: v for k, v in extra.items() if k not in ("seed", "batch_size")},
                          run_name=_run_name_of(Path(cmd.path), engine.name, spec if isinstance(spec, str) else ""),
                          resume_state=resume, hyper_history=[] if resume is None else list(resume.hyper_history))
        folder = Path(cmd.path) if Path(cmd.path).is_dir() else Path(cmd.path).parent
        if cmd.resume:
            session.run_dir = folder
        self._progress(3, 3, "Ready")
        self._host_session(session, str(cmd.path), summary)
        if cmd.resume:
            for event in history_events(session, folder / "metrics.csv"):
                self.send(event)

    def _train(self, cmd: P.Train) -> None:
        from engines.lib.training import BatchStream

        s = self._session()
        if cmd.steps is not None and (not isinstance(cmd.steps, int) or cmd.steps < 1):
            raise ConfigError(f"Train.steps must be a positive integer or None, not {cmd.steps!r}")
        if s.dataset is None:
            raise DataError(f"{s.data_spec}: the data set is not loaded, so this model cannot train")
        end = None if cmd.steps is None else s.step + cmd.steps
        t = self._training()
        if t is not None and t.extend(end):
            self.send(P.TrainingState(state="training", step=s.step))
            return
        self._end_training()
        if s.batches is None:  # with other processes: every step draws all their examples, this one takes its share
            size = 1 if self.lockstep is None else self.lockstep.size
            s.batches = BatchStream(
                s.dataset, s.batch_size * size, s.seed, self.device, with_labels=s.engine.capabilities.conditional
            )
            warning = s.apply_resume()
            if warning:
                self.send(P.Warned(category="resume", message=warning))
        self.trainer = Trainer(s, self.send, self.host, lambda path, auto: self._write_checkpoint(path, auto, s), end,
                               live=self.live, trust=self.trust, lockstep=self.lockstep)
        self.send(P.TrainingState(state="training", step=s.step))
        self.trainer.start()

    def _pause(self, cmd: P.Pause) -> None:
        t = self._training()
        if t is None:
            self.send(P.TrainingState(state="idle", step=self.session.step if self.session else 0))
        else:
            t.pause()

    def _resume(self, cmd: P.Resume) -> None:
        t = self._training()
        if t is None:
            self.send(P.TrainingState(state="idle", step=self.session.step if self.session else 0))
        else:
            t.resume()

    def _stop(self, cmd: P.Stop) -> None:
        t = self._training()
        if t is None:
            self.send(P.TrainingState(state="idle", step=self.session.step if self.session else 0))
        else:
            t.stop()

    def _set_hyper(self, cmd: P.SetHyperparameter) -> None:
        s = self._session()

        def apply() -> None:
            value = s.engine.set_hyper(cmd.name, cmd.value)
            s.hyper_history.append((s.step, cmd.name, float(value)))
            s.snapshot.sync_hyper(s.engine)
            self.send(P.HyperparameterChanged(name=cmd.name, value=value, step=s.step))

        self._in_trainer(cmd, apply)

    def _set_metric_schedule(self, cmd: P.SetMetricSchedule) -> None:
        self.live.set_schedule(cmd.coverage_every, cmd.disentanglement_every)

    def _save_checkpoint(self, cmd: P.SaveCheckpoint) -> None:
        self._session()
        if not cmd.path:
            raise ConfigError("SaveCheckpoint needs a path")
        self._in_trainer(cmd, lambda: self.send(self._write_checkpoint(cmd.path, False)))


# ------------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------------


def parse_address(text: str) -> tuple[str, int]:
    """``"HOST:PORT"`` as a (host, port) tuple.

    Raises
    ------
    ConfigError
        If the port is missing or not an integer in [1, 65535].
    """
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"--connect wants HOST:PORT, not {text!r}")
    return host, int(port)
