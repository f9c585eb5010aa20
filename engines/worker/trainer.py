"""The worker's trainer thread: steps, batched metrics, the sample grid, snapshots and autosaves.

One :class:`Trainer` runs one training session (from :class:`~engines.shared.protocol.Train` until the
step budget is spent, :class:`~engines.shared.protocol.Stop` or an error). The loop does engineering
only (Lightning's split): the engine's ``training_step`` does the research. Per step it costs one
attribute test, one clock read and one list append; everything else (StepMetrics every ~100 ms,
snapshot refresh every ~0.2 s, the sample grid every ~1 s, the held-out log-likelihood of a fixed
probe every ~5 s for a model that declares one (:class:`engines.metrics.likelihood.HeldOutProbe`,
logged as the loss term ``held_out_nll`` or ``held_out_neg_elbo``), the effect of each binary unit on the decoded
image every ~5 s for a model whose latent is binary units (:class:`engines.metrics.unit_effect.UnitEffectProbe`,
sent as ``StepMetrics.unit_effect``), autosave 10 s in, then every ~60 s) is checked when the metrics are
flushed. Commands that touch the live model (hyperparameters, checkpoints) run in this thread between two
steps via :meth:`Trainer.call_soon`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engines.metrics.likelihood import HeldOutProbe
from engines.metrics.unit_effect import UnitEffectProbe
from engines.shared import protocol as P
from engines.lib.distributed import shard
from engines.worker.host import Host, Snapshot, error_event, to_numpy
from engines.worker.watchdog import GOOD_EVERY

#: Seconds between StepMetrics messages, snapshot refreshes, sample grids and autosaves.
METRICS_EVERY = 0.1
SNAPSHOT_EVERY = 0.2
GRID_EVERY = 1.0
AUTOSAVE_EVERY = 60.0
#: Seconds into a session before its first autosave (a crash in the first minute loses at most this much).
FIRST_AUTOSAVE = 10.0
#: Grids are spaced by at least this many times their own compute time (at most ~5% of a core).
GRID_COST_FACTOR = 20.0
#: Seconds between live held-out likelihood measurements (a term of the loss plot), and their cost bound.
HELD_OUT_EVERY = 5.0
HELD_OUT_COST_FACTOR = 20.0


def autosave_path(session: Session | None = None) -> Path:
    """Where the worker autosaves ``session``'s model: ``$LATENT_STUDIO_HOME/runs/<run name>/model.safetensors``,
    a folder per model built or opened (the Runs dock lists them); ``$LATENT_STUDIO_HOME/autosave/`` for a
    session without a run name.

    ``LATENT_STUDIO_HOME`` defaults to ``~/.latent-studio``.
    """
    from engines.shared.runs import home_dir, runs_dir

    if session is not None and session.run_dir is not None:
        return session.run_dir / "model.safetensors"
    if session is not None and session.run_name:
        return runs_dir() / session.run_name / "model.safetensors"
    return home_dir() / "autosave" / "model.safetensors"


@dataclass
class Session:
    """The configured model and everything the worker keeps beside it.

    Attributes
    ----------
    engine : Engine
        The live model, on the worker's device; only the trainer thread touches it while training.
    snapshot : Snapshot
        Copy of the weights the host thread serves from.
    dataset : Dataset or None
        None when a checkpoint's data set could not be loaded (decode and sample only).
    data_spec : str
    image_size : int or None
    seed, batch_size : int
    step : int
        Optimisation steps done so far (the next step's index).
    batches : iterator or None
        Endless iterator of (B, C, H, W) training batches on the device, made at the first Train.
    run_name : str
        The folder under ``$LATENT_STUDIO_HOME/runs`` its autosaves go to ("" for the legacy ``autosave/``).
    run_dir : Path or None
        A resumed run's own folder: its autosaves go there instead.
    hyper_history : list of (int, str, float)
        The live hyperparameter changes, (step, name, value), saved with every checkpoint.
    resume_state : ResumeState or None
        A loaded checkpoint's data order and generators, applied when training first starts.
    """

    engine: Any
    snapshot: Snapshot
    dataset: Any
    data_spec: str
    image_size: int | None
    seed: int = 0
    batch_size: int = 64
    step: int = 0
    batches: Iterator[Any] | None = None
    extra: dict = field(default_factory=dict)
    run_name: str = ""
    run_dir: Path | None = None
    hyper_history: list = field(default_factory=list)
    resume_state: Any = None

    def manifest_extra(self) -> dict:
        """The ``extra`` of a checkpoint manifest: what a reload needs beyond the engine config."""
        return {**self.extra, "seed": self.seed, "batch_size": self.batch_size}

    def capture_resume(self) -> Any:
        """The :class:`~engines.lib.resume.ResumeState` to save now (from the thread that trains): the
        generators and the data stream's place, or, before the first step after a load, the loaded state."""
        from engines.lib import resume as R
        from engines.lib.training import BatchStream

        run = {"seed": self.seed, "batch_size": self.batch_size}
        if self.resume_state is not None:  # loaded and not yet trained on: save it as it came
            return R.ResumeState(self.resume_state.tensors,
                                 {**self.resume_state.meta, "hyper_history": [list(h) for h in self.hyper_history]})
        stream = self.batches if isinstance(self.batches, BatchStream) else None
        return R.capture(stream, run=run, hyper_history=self.hyper_history)

    def apply_resume(self) -> str:
        """Put the new data stream and the generators where the loaded checkpoint left them (once).

        Returns "" or a warning: a stream saved for another split or batch size starts afresh.
        """
        from engines.lib import resume as R
        from engines.shared.errors import CheckpointError

        state, self.resume_state = self.resume_state, None
        if state is None or self.batches is None:
            return ""
        try:
            R.restore_stream(state, self.batches, self.data_spec)
            R.restore_rng(state, self.data_spec)
        except CheckpointError as exc:
            return f"training goes on with a fresh data order: {exc}"
        return ""


class MetricsBuffer:
    """Loss dicts of consecutive steps, turned into one :class:`~engines.shared.protocol.StepMetrics`.

    Examples
    --------
    >>> buf = MetricsBuffer()
    >>> buf.add(0, {"recon": 1.0}); buf.add(1, {"recon": 0.5, "kl": 2.0})
    >>> steps, names, values = buf.take()
    >>> names, values.shape
    (['recon', 'kl'], (2, 2))
    """

    def __init__(self) -> None:
        self._steps: list[int] = []
        self._losses: list[dict[str, float]] = []

    def __len__(self) -> int:
        return len(self._steps)

    def add(self, step: int, losses: dict[str, float]) -> None:
        self._steps.append(step)
        self._losses.append(losses)

    def take(self) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Empty the buffer: steps (K,) int64, the T names in order of first use, values (K, T) float32.

        A term missing from a step's dict is NaN in that row.
        """
        names: dict[str, int] = {}
        for losses in self._losses:
            for name in losses:
                names.setdefault(name, len(names))
        values = np.full((len(self._steps), len(names)), np.nan, dtype=np.float32)
        for row, losses in enumerate(self._losses):
            for name, v in losses.items():
                values[row, names[name]] = float(v)
        steps = np.asarray(self._steps, dtype=np.int64)
        self._steps, self._losses = [], []
        return steps, list(names), values


class _Rate:
    """Steps and images per second over the last ~1 s."""

    def __init__(self) -> None:
        self._marks: deque[tuple[float, int, int]] = deque()

    def reset(self) -> None:
        self._marks.clear()

    def update(self, now: float, steps: int, images: int) -> tuple[float, float]:
        self._marks.append((now, steps, images))
        while len(self._marks) > 2 and now - self._marks[1][0] >= 1.0:
            self._marks.popleft()
        t0, s0, i0 = self._marks[0]
        if now - t0 <= 0:
            return 0.0, 0.0
        return (steps - s0) / (now - t0), (images - i0) / (now - t0)


class Trainer:
    """Trains ``session.engine`` in a thread until ``end_step``, :meth:`stop` or an error.

    Parameters
    ----------
    session : Session
        Its ``batches`` must be set; ``session.step`` advances as steps are done.
    send : callable
        Sends one event (thread-safe).
    host : Host
        Asked for the sample grid every second.
    save : callable
        ``save(path, autosave) -> CheckpointSaved`` writes a checkpoint of the live model; called
        from this thread only.
    end_step : int or None
        Stop (reason "finished") when ``session.step`` reaches it; None trains until :meth:`stop`.
    live : LiveMetrics or None
        Told when training runs, pauses and stops (:meth:`engines.worker.live_metrics.LiveMetrics.set_training`),
        so that coverage and disentanglement are measured on a clock of training seconds.
    trust : Trust or None
        Its watchdog checks every step's loss terms and, at each metrics flush, the parameters and gradients,
        keeps good states in memory and rolls back to the last one when a check trips
        (:mod:`engines.worker.watchdog`); its timeline keeps a snapshot every N steps
        (:mod:`engines.worker.timeline`).
    lockstep : Lockstep or None
        Other worker processes that train data-parallel with this one (:mod:`engines.worker.lockstep`).

    Notes
    -----
    Events sent: StepMetrics, Samples (via the host), CoverageMeasured and DisentanglementMeasured
    (via ``live``), TrainingState ("paused"/"training" when a
    pause takes effect or ends), CheckpointSaved (autosave), WatchdogTripped (then HyperparameterChanged
    for each halved learning rate when it resumes by itself), Error and, always last,
    Stopped(step, reason) with reason "finished", "stopped" or "error".
    """

    def __init__(self, session: Session, send: Callable[[P.Event], None], host: Host,
                 save: Callable[[Path, bool], P.CheckpointSaved], end_step: int | None,
                 live: Any = None, trust: Any = None, watchdog: Any = None, lockstep: Any = None) -> None:
        self.session = session
        self._lockstep = lockstep
        self._live = live
        self._trust = trust
        self._watchdog = watchdog if watchdog is not None or trust is None else trust.watchdog
        self._trips = (-1, 0)  # the step of the last trip and how many times in a row it tripped there
        self._thread = threading.Thread(target=self._run, name="trainer", daemon=True)
        self._send = send
        self._host = host
        self._save = save
        self._cv = threading.Condition()
        self._flag = False  # read without the lock once per step: something below needs attention
        self._paused = False
        self._stop = False
        self._closed = False
        self._end_step = end_step
        self._actions: list[Callable[[], None]] = []
        self._metrics = MetricsBuffer()
        self._rate = _Rate()
        self._images = 0
        self._probe: HeldOutProbe | None = None
        self._held_out: dict[str, float] | None = None  # a measurement waiting for the next step's row
        self._effect: UnitEffectProbe | None = None  # binary units' effect on the image, measured at a flush when due

    # -- control, from the main thread ---------------------------------------------------------
    def start(self) -> None:
        """Start the training thread."""
        self._thread.start()

    def is_active(self) -> bool:
        """Whether the session still takes commands (False from the moment it starts to wind down)."""
        return self._thread.is_alive() and not self._closed

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def pause(self) -> None:
        """Pause after the current step (the trainer then sends TrainingState "paused")."""
        self._set(paused=True)

    def resume(self) -> None:
        """Resume a paused session."""
        self._set(paused=False)

    def extend(self, end_step: int | None) -> bool:
        """Train on (resuming if paused) until ``end_step`` (None: until stopped).

        Returns False if the session has already ended; the caller then starts a new one.
        """
        with self._cv:
            if self._closed:
                return False
            self._end_step = end_step
            self._paused = False
            self._flag = True
            self._cv.notify_all()
        return True

    def stop(self) -> None:
        """End the session after the current step (Stopped reason "stopped")."""
        self._set(stop=True)

    def call_soon(self, action: Callable[[], None]) -> bool:
        """Run ``action()`` in the trainer thread between two steps (also while paused).

        Returns False, without running it, if the session has ended; the caller then runs it.
        ``action`` reports its own errors.
        """
        with self._cv:
            if self._closed:
                return False
            self._actions.append(action)
            self._flag = True
            self._cv.notify_all()
        return True

    def _set(self, **state: bool) -> None:
        with self._cv:
            for k, v in state.items():
                setattr(self, "_" + k, v)
            self._flag = True
            self._cv.notify_all()

    # -- the thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        s, send = self.session, self._send
        engine, batches, metrics = s.engine, s.batches, self._metrics
        assert batches is not None
        reason = "finished"
        start = s.step
        now = time.monotonic()
        t_flush = t_snap = t_grid = now
        t_save = now - AUTOSAVE_EVERY + FIRST_AUTOSAVE
        t_held = t_terms = now - HELD_OUT_EVERY  # the first measurement at the first flush: the curve starts at step ~0
        self._rate.update(now, s.step, self._images)
        self._make_probe()
        engine.train()
        self._set_live(True)
        wd = self._watchdog
        t_good = now
        try:
            if wd is not None and wd.settings.enabled:
                self._keep_good(wd)
            while True:
                if self._flag and self._control():
                    reason = "stopped"
                    break
                if self._end_step is not None and s.step >= self._end_step:
                    break
                ls = self._lockstep
                if ls is not None and not ls.active:
                    ls.sync(s)  # the other processes take the model as it is now
                batch = next(batches)
                if ls is not None:
                    ls.step()
                    batch = shard(batch, 0, ls.size)
                losses = engine.training_step(batch, s.step)
                if ls is not None:
                    losses = ls.mean_losses(losses)
                if self._held_out is not None:
                    losses, self._held_out = {**losses, **self._held_out}, None
                metrics.add(s.step, losses)
                s.step += 1
                self._images += len(batch[0] if isinstance(batch, tuple) else batch)
                trip = None if wd is None else wd.check_losses(s.step - 1, losses)
                now = time.monotonic()
                if trip is None and wd is not None and now - t_flush >= METRICS_EVERY:
                    trip = wd.check_tensors(s.step - 1, engine)
                    if trip is None and wd.settings.enabled and now - t_good >= GOOD_EVERY:
                        t_good = now
                        self._keep_good(wd)
                if trip is not None:
                    self._rollback(wd, trip)
                    t_flush = t_good = time.monotonic()
                    continue
                if self._trust is not None:  # every step: a snapshot every N steps, not at the next flush after
                    self._trust.keep_snapshot(s)
                if now - t_flush >= METRICS_EVERY:
                    t_flush = now
                    self._flush(now)
                    if now - t_snap >= SNAPSHOT_EVERY and s.snapshot.refresh(engine, s.step, blocking=False):
                        t_snap = now
                    if now - t_grid >= max(GRID_EVERY, GRID_COST_FACTOR * self._host.grid_seconds):
                        t_grid = now
                        self._host.request_grid()
                    if now - t_save >= AUTOSAVE_EVERY:
                        t_save = now
                        self._autosave()
                    probe = self._probe
                    if probe is not None:
                        nll = now - t_held >= max(HELD_OUT_EVERY, HELD_OUT_COST_FACTOR * probe.seconds)
                        extra = now - t_terms >= max(HELD_OUT_EVERY, HELD_OUT_COST_FACTOR * probe.terms_seconds)
                        if nll or extra:
                            t_held, t_terms = (now if nll else t_held), (now if extra else t_terms)
                            self._measure_held_out(probe, nll, extra)
        except Exception as exc:  # noqa: BLE001 - a failed step ends the session, not the worker
            reason = "error"
            send(error_event(exc, "Train"))
        finally:
            self._finish(reason, start)

    # -- the watchdog ---------------------------------------------------------------------------
    def _keep_good(self, wd: Any) -> None:
        """Copy the state now into the watchdog's ring (the checks just passed)."""
        from engines.worker.watchdog import TrainState

        wd.ring.add(TrainState.capture(self.session))

    def _rollback(self, wd: Any, trip: Any) -> None:
        """Send what went wrong, restore the last good state, then pause, or halve the learning rates and go on.

        Raises
        ------
        RuntimeError
            No good state to go back to (the session then ends with an error).
        """
        from engines.worker.watchdog import LR_NAMES, MAX_AUTO_TRIPS

        s = self.session
        if self._lockstep is not None:
            self._lockstep.pause()
        self._flush(time.monotonic())  # the bad steps are shown, then replaced from the rollback step on
        state = wd.ring.latest(before=trip.good_before)
        if state is None:
            raise RuntimeError(f"watchdog: {trip.message}, and no earlier good state to roll back to")
        suggestions = wd.suggestions(trip, s.engine)
        state.restore(s)
        wd.ring.add(state)  # drops the states after it
        wd.reset()
        last, count = self._trips
        self._trips = (trip.step, count + 1 if trip.step == last else 1)  # a bad batch trips at the same step
        s.snapshot.refresh(s.engine, s.step, blocking=True)
        self._host.request_grid()
        auto = wd.settings.auto_resume and self._trips[1] <= MAX_AUTO_TRIPS
        self._send(P.WatchdogTripped(step=trip.step, cause=trip.kind, message=trip.message, rolled_back_to=s.step,
                                     suggestions=suggestions, auto=auto))
        if auto:
            for name in LR_NAMES:
                if name in s.engine.hyper:  # halved, never below the parameter's range
                    value = s.engine.set_hyper(name, max(s.engine.hyper[name].low, s.engine.h(name) / 2))
                    s.hyper_history.append((s.step, name, float(value)))
                    self._send(P.HyperparameterChanged(name=name, value=value, step=s.step))
            s.snapshot.sync_hyper(s.engine)
        else:
            self._set(paused=True)

    def _finish(self, reason: str, start: int) -> None:
        s = self.session
        if self._lockstep is not None:
            self._lockstep.pause()
        with self._cv:
            self._closed = True
            actions, self._actions = self._actions, []
        final = False  # the snapshot holds the last weights: the metrics thread measures them once more
        try:
            for action in actions:
                action()
            self._flush(time.monotonic(), final=True)
            if s.step > start and reason != "error":
                s.snapshot.refresh(s.engine, s.step, blocking=True)
                final = True
                self._host.request_grid()
                self._autosave()
        except Exception as exc:  # noqa: BLE001 - Stopped must still be the session's last word
            self._send(error_event(exc, "Train"))
        finally:
            self._set_live(False, final)
            self._send(P.Stopped(step=s.step, reason=reason))

    def _set_live(self, active: bool, final: bool = False) -> None:
        if self._live is not None:
            self._live.set_training(active, final)

    def _control(self) -> bool:
        """Run queued actions and wait while paused; True when the session must stop."""
        if self._lockstep is not None:
            self._lockstep.pause()  # an action may change the model: the others take it again before the next step
        announced = False
        while True:
            with self._cv:
                actions, self._actions = self._actions, []
                if not actions:
                    if self._stop:
                        return True
                    if not self._paused:
                        self._flag = False
                        break
                    if announced:
                        self._cv.wait()
                        continue
            for action in actions:
                action()
            if not actions and not announced:  # the pause takes effect now
                self._flush(time.monotonic())
                self._set_live(False)
                self._send(P.TrainingState(state="paused", step=self.session.step))
                announced = True
        if announced:
            self._set_live(True)
            self._rate.reset()
            self._rate.update(time.monotonic(), self.session.step, self._images)
            self._send(P.TrainingState(state="training", step=self.session.step))
        return False

    def _flush(self, now: float, final: bool = False) -> None:
        """Send the buffered steps as one StepMetrics (with the binary units' effect when due, or ``final``)."""
        if not len(self._metrics):
            return
        steps, names, values = self._metrics.take()
        steps_per_sec, images_per_sec = self._rate.update(now, self.session.step, self._images)
        effect = None if self._effect is None else self._effect.poll(self.session.engine, now, force=final)
        self._send(P.StepMetrics(steps=steps, names=names, values=values, steps_per_sec=steps_per_sec,
                                 images_per_sec=images_per_sec, latent_kl=self._latent_kl(), unit_effect=effect))

    def _measure_held_out(self, probe: HeldOutProbe, likelihood: bool = True, extra: bool = True) -> None:
        try:
            self._held_out = probe.measure_terms(self.session.engine, likelihood, extra)
        except Exception as exc:  # noqa: BLE001 - the curve stops, training goes on
            self._probe = None
            self._send(error_event(exc, "held-out likelihood"))

    def _make_probe(self) -> None:
        """The fixed held-out batch measured live, for a model with a likelihood and data with a held-out split;
        the reference images of the binary units' effect, for a model whose latent is binary units."""
        s = self.session
        self._effect = self._effect or UnitEffectProbe.create(s.engine, s.dataset, seed=s.seed)
        if self._probe is not None or not s.engine.capabilities.has_likelihood or s.dataset is None:
            return
        if len(s.dataset.test_indices) == 0:
            return
        try:
            self._probe = HeldOutProbe(s.engine, s.dataset, seed=s.seed)
        except Exception as exc:  # noqa: BLE001 - no live held-out curve, training goes on
            self._send(error_event(exc, "held-out likelihood"))

    def _latent_kl(self) -> np.ndarray | None:
        engine = self.session.engine
        if not engine.capabilities.has("latent_kl"):
            return None
        try:
            kl = engine.latent_kl()
        except Exception:  # noqa: BLE001 - e.g. no step taken yet; the plot just skips it
            return None
        if kl is None:
            return None
        return to_numpy(kl).reshape(-1)

    def _autosave(self) -> None:
        try:
            self._send(self._save(autosave_path(self.session), True))
        except Exception as exc:  # noqa: BLE001 - a failed autosave must not stop training
            self._send(error_event(exc, "autosave"))
