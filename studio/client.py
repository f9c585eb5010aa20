"""The window's side of the worker: a QObject that turns protocol events into Qt signals.

:class:`WorkerClient` owns an :class:`engines.shared.link.WorkerLink`. Starting the worker (which imports
torch for a few seconds), sending commands and reading events all happen on plain Python threads;
events come back to the GUI thread through a queued Qt signal, so the GUI thread never waits on the
worker. Interactive decodes follow napari's asynchronous slicer: every request has an id, at most
one is in flight per view, the newest pending request replaces older ones, and stale replies are
dropped.
"""

from __future__ import annotations

import itertools
import queue
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from engines.shared import protocol
from engines.shared.errors import ProtocolError
from engines.shared.link import WorkerDied, WorkerLink

#: Client states, as the status bar shows them.
STATES = ("stopped", "starting", "idle", "configuring", "ready", "training", "paused", "died")
#: States in which the worker holds a model that can decode and encode.
MODEL_STATES = ("ready", "training", "paused")

#: Seconds after which an unanswered decode no longer blocks the next one.
DECODE_TIMEOUT = 2.0


@dataclass(frozen=True)
class _Died:
    """Marker passed from a link thread to the GUI thread: the worker is gone."""

    message: str


#: The window process's GIL switch interval, seconds (the worker uses the same).
GIL_SWITCH_S = 0.001

#: Each event type the window hears, and the name of the client signal that carries it: the one list.
EVENT_SIGNALS: dict[type, str] = {
    protocol.Started: "started", protocol.Ready: "ready", protocol.StepMetrics: "metrics",
    protocol.Samples: "samples", protocol.Decoded: "decoded", protocol.Encoded: "encoded",
    protocol.Examples: "examples", protocol.HyperparameterChanged: "hyper_changed",
    protocol.CheckpointSaved: "checkpoint_saved", protocol.Progress: "progress",
    protocol.Stopped: "stopped", protocol.Error: "error", protocol.Warned: "warned",
    protocol.CoverageMeasured: "coverage", protocol.DisentanglementMeasured: "disentanglement",
    protocol.Traversed: "traversed", protocol.Interpolated: "interpolated",
    protocol.Exported: "exported", protocol.PixelFrame: "pixel_frame", protocol.PixelSurprised: "pixel_surprise",
}


class ClientSignals(QObject):
    """The signals of a worker client: one per entry of :data:`EVENT_SIGNALS`, each carrying its event,
    plus ``event_received(object)`` (every event), ``state_changed(str)`` and ``worker_died(str)``.

    :class:`WorkerClient` and the tests' fake client both derive from it, so they cannot drift apart.
    """

    for _name in EVENT_SIGNALS.values():
        vars()[_name] = Signal(object)
    del _name
    event_received = Signal(object)
    state_changed = Signal(str)
    worker_died = Signal(str)

    def emit_event(self, event: protocol.Event) -> None:
        """Emit ``event`` on its typed signal (if it has one), then on ``event_received``."""
        name = EVENT_SIGNALS.get(type(event))
        if name is not None:
            getattr(self, name).emit(event)
        self.event_received.emit(event)


class WorkerClient(ClientSignals):
    """A worker process seen as Qt signals; every method returns at once.

    Parameters
    ----------
    threads : int or None
        Torch threads of the worker (None: the worker chooses).
    device : str or None
        Force "cpu", "cuda" or "mps" (None: the worker picks).
    connect_timeout : float
        Seconds the worker may take to start and connect.

    Signals
    -------
    Those of :class:`ClientSignals`: one per event type of :data:`EVENT_SIGNALS` (``decoded`` only
    carries answers newer than the last one delivered), ``event_received``, ``state_changed`` (one
    of :data:`STATES`) and ``worker_died`` (the worker process exited or its connection broke; not
    emitted for :meth:`shutdown`).
    """

    _incoming = Signal(int, object)  # (generation, event or _Died), queued from the link threads

    def __init__(
        self, threads: int | None = None, device: str | None = None, connect_timeout: float = 120.0,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        # The link's reader and sender threads and the GUI thread share the GIL: at Python's default 5 ms
        # switch interval a decoded image could wait up to 5 ms at each hand-over (slider_latency.py's stages).
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_S))
        self.threads, self.device, self.connect_timeout = threads, device, connect_timeout
        #: A worker listening elsewhere (``latent-studio worker --listen``): "HOST:PORT" and its token; None
        #: starts a local worker process.
        self.remote: str | None = None
        self.token: str | None = None
        self._incoming.connect(self._dispatch)
        self._gen = 0
        self._link: WorkerLink | None = None
        self._outbox: queue.Queue | None = None
        self._state = "stopped"
        self._has_model = self._model_before = self._configuring = False
        self._ids = itertools.count(1)
        self._inflight: dict[str, tuple[int, float]] = {}
        self._pending: dict[str, protocol.Decode] = {}
        self._delivered: dict[str, int] = {}
        self._requested: dict[str, int] = {}
        #: Decode bookkeeping: requests made, Decode commands sent, answers delivered, stale answers dropped.
        self.decode_stats = {"requested": 0, "sent": 0, "delivered": 0, "dropped": 0}
        #: request id -> time.monotonic() of each stage of a delivered decode (:meth:`_time_decode`), newest 2048
        self.decode_timings: dict[int, dict[str, float]] = {}
        self._sent_at: dict[int, float] = {}
        self._arrived_at: dict[int, float] = {}
        self.info: protocol.Started | None = None
        self.last_ready: protocol.Ready | None = None
        self.last_configure: protocol.Configure | None = None
        self.last_checkpoint: str | None = None
        self.step = 0
        self._train_end: tuple[int | None] | None = None  # (end step or None: until stopped) of the last Train
        self._was_training = False  # training when the worker died: a restart trains on
        self._train_after_ready: tuple[int | None] | None = None

    # -- state -----------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """The current state, one of :data:`STATES`."""
        return self._state

    @property
    def pid(self) -> int | None:
        """Process id of the current worker, or None."""
        return None if self._link is None else self._link.pid

    def is_running(self) -> bool:
        """Whether a worker is starting or connected."""
        return self._state not in ("stopped", "died")

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.state_changed.emit(state)

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start a worker on a background thread; commands sent meanwhile wait until it connects."""
        if self.is_running():
            return
        self._gen += 1
        link = WorkerLink(self.threads, self.device, self.connect_timeout, remote=self.remote, token=self.token)
        gen, outbox = self._gen, queue.Queue()
        self._link, self._outbox = link, outbox
        self._has_model = self._configuring = False
        self._inflight.clear()
        self._pending.clear()
        self._delivered.clear()
        self._requested.clear()
        self._set_state("starting")
        threading.Thread(target=self._run, args=(gen, link, outbox), name=f"worker-link-{gen}", daemon=True).start()

    def shutdown(self, timeout: float = 3.0) -> None:
        """Ask the worker to exit and wait at most ``timeout`` seconds before killing it.

        No ``worker_died`` follows; events still in flight are dropped.
        """
        link, outbox = self._link, self._outbox
        self._gen += 1
        self._link = self._outbox = None
        if outbox is not None:
            outbox.put(None)
        if link is not None:
            if link.conn is None:  # still starting (importing torch): nothing to say goodbye to
                link.kill()
            else:
                link.close(timeout)
        self._has_model = False
        self._set_state("stopped")

    def use_worker(self, remote: str | None = None, token: str | None = None) -> None:
        """Drive a worker listening at ``remote`` ("HOST:PORT", with its ``token``) from now on, or a local
        process again (None); the current worker is shut down and the new one started."""
        self.shutdown()
        self.remote, self.token = remote, token
        self.last_checkpoint = None  # a path on the other machine means nothing here
        self.start()

    def restart(self) -> None:
        """Replace the worker by a fresh one and bring it back to where it was.

        The new worker loads the last saved checkpoint (the worker's autosave or the user's save)
        if there is one, else repeats the last :class:`Configure`.
        """
        old = self._link
        self._gen += 1
        self._link = None
        if self._outbox is not None:
            self._outbox.put(None)
        if old is not None:
            threading.Thread(target=old.kill, name="worker-kill", daemon=True).start()
        self._state = "stopped"
        self.start()
        if self.last_checkpoint:
            self.send(protocol.LoadCheckpoint(path=self.last_checkpoint))
        elif self.last_configure is not None:
            self.send(self.last_configure)
        if self._was_training and self._train_end is not None and (self.last_checkpoint or self.last_configure):
            self._train_after_ready = self._train_end  # trains on to the same end once the model is back
        self._was_training = False

    # -- commands --------------------------------------------------------------------------------
    def send(self, command: protocol.Command) -> bool:
        """Queue a command for the worker; False (and nothing sent) when no worker is running."""
        if self._outbox is None or not self.is_running():
            return False
        if isinstance(command, protocol.Train):
            self._train_end = (None if command.steps is None else self.step + int(command.steps),)
        if isinstance(command, protocol.Configure):
            self.last_configure = command
        if isinstance(command, (protocol.Configure, protocol.LoadCheckpoint)):
            self._model_before, self._has_model, self._configuring = self._has_model, False, True
            if self._state != "starting":
                self._set_state("configuring")
        self._outbox.put(command)
        return True

    def request_decode(self, z: np.ndarray, view: str = "explore") -> int:
        """Ask for the images of latents ``z`` (N, D) for ``view``; latest request wins.

        Returns the request id. At most one decode per view is in flight; a newer request replaces
        the pending one and goes out when the answer to the in-flight one arrives.
        """
        rid = next(self._ids)
        self._requested[view] = rid
        self.decode_stats["requested"] += 1
        self._pending[view] = protocol.Decode(request_id=rid, view=view, z=np.asarray(z, np.float32).reshape(-1, np.shape(z)[-1]))
        self._pump(view)
        return rid

    def last_delivered(self, view: str = "explore") -> int:
        """Request id of the newest Decoded delivered for ``view`` (0 before the first)."""
        return self._delivered.get(view, 0)

    def last_requested(self, view: str = "explore") -> int:
        """Request id of the newest :meth:`request_decode` for ``view`` (0 before the first)."""
        return self._requested.get(view, 0)

    def request_encode(self, indices: list[int], view: str = "explore", split: str = "test") -> int:
        """Ask for the posterior means of data-set examples; returns the request id."""
        rid = next(self._ids)
        self.send(protocol.Encode(request_id=rid, view=view, indices=[int(i) for i in indices], split=split))
        return rid

    def request_encode_images(self, images: np.ndarray, view: str = "explore") -> int:
        """Ask for the latents of images the user handed us; returns the request id.

        Parameters
        ----------
        images : (N, C, H, W) float array in [0, 1]
            Of the model's data shape. A model with an encoder answers with posterior means; one
            without (a GAN) answers by projection, after :class:`~engines.shared.protocol.Progress` events.
        view : str
            Echoed in the :class:`~engines.shared.protocol.Encoded` answer.
        """
        rid = next(self._ids)
        self.send(protocol.Encode(request_id=rid, view=view, images=np.ascontiguousarray(images, np.float32)))
        return rid

    def next_id(self) -> int:
        """A fresh request id (for commands built elsewhere, e.g. Export)."""
        return next(self._ids)

    def cancel(self, request_id: int) -> bool:
        """Ask the worker to cancel the job (Export, projecting Encode) of ``request_id``.

        The job then ends with a Progress whose message is ``"cancelled"``; False if no worker runs.
        """
        return self.send(protocol.Cancel(request_id=int(request_id)))

    def _time_decode(self, event: protocol.Decoded) -> None:
        """Keep where a decode's time went: "sent", "arrived" and "delivered" here, the worker's stages."""
        times = {"sent": self._sent_at.pop(event.request_id, None), **(event.timings or {}),
                 "arrived": self._arrived_at.pop(event.request_id, None), "delivered": time.monotonic()}
        self.decode_timings[event.request_id] = {k: v for k, v in times.items() if v is not None}
        while len(self.decode_timings) > 2048:
            self.decode_timings.pop(next(iter(self.decode_timings)))
        if len(self._sent_at) > 256 or len(self._arrived_at) > 256:
            self._sent_at.clear()
            self._arrived_at.clear()

    def _pump(self, view: str) -> None:
        inflight = self._inflight.get(view)
        if inflight is not None and time.monotonic() - inflight[1] < DECODE_TIMEOUT:
            return
        cmd = self._pending.pop(view, None)
        if cmd is not None and self._has_model and self.send(cmd):
            self._inflight[view] = (cmd.request_id, time.monotonic())
            self._sent_at[cmd.request_id] = self._inflight[view][1]
            self.decode_stats["sent"] += 1
        elif cmd is not None:
            self._pending[view] = cmd  # no model yet: keep it for when Ready arrives

    # -- link threads ----------------------------------------------------------------------------
    def _run(self, gen: int, link: WorkerLink, outbox: queue.Queue) -> None:
        try:
            link.start()
        except WorkerDied as exc:
            self._incoming.emit(gen, _Died(str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - e.g. the interpreter cannot be spawned; reported, not raised
            link.kill()
            self._incoming.emit(gen, _Died(f"the worker could not be started ({type(exc).__name__}: {exc})"))
            return
        if gen != self._gen:  # shut down or replaced while starting
            link.kill()
            return
        threading.Thread(target=self._send_loop, args=(gen, link, outbox), name=f"worker-send-{gen}", daemon=True).start()
        while gen == self._gen:
            try:
                event = link.recv(timeout=0.25)
            except WorkerDied as exc:
                self._incoming.emit(gen, _Died(str(exc)))
                return
            except ProtocolError as exc:
                self._incoming.emit(gen, protocol.Error(message=f"unreadable message from the worker: {exc}"))
                continue
            if event is not None:
                if isinstance(event, protocol.Decoded):
                    self._arrived_at[event.request_id] = time.monotonic()  # off the pipe, before the GUI queue
                self._incoming.emit(gen, event)
            elif not link.is_alive():
                code = None if link.process is None else link.process.poll()
                self._incoming.emit(gen, _Died(f"the worker process exited (code {code})"))
                return

    def _send_loop(self, gen: int, link: WorkerLink, outbox: queue.Queue) -> None:
        while True:
            command = outbox.get()
            if command is None or gen != self._gen:
                return
            try:
                link.send(command)
            except WorkerDied as exc:
                self._incoming.emit(gen, _Died(str(exc)))
                return
            except ProtocolError as exc:
                self._incoming.emit(gen, protocol.Error(message=str(exc), command=type(command).__name__))

    # -- GUI thread ------------------------------------------------------------------------------
    @Slot(int, object)
    def _dispatch(self, gen: int, item: object) -> None:
        if gen != self._gen:
            return  # from a worker that was shut down or replaced
        if isinstance(item, _Died):
            self._was_training = self._state == "training"
            self._has_model = self._configuring = False
            self._inflight.clear()
            self._set_state("died")
            self.worker_died.emit(item.message)
            return
        event = item
        if isinstance(event, protocol.Started):
            self.info = event
            self._set_state("configuring" if self._configuring else "idle")
        elif isinstance(event, protocol.Ready):
            self.last_ready, self.step, self._has_model, self._configuring = event, event.step, True, False
            for view, (rid, _t) in self._inflight.items():  # answers from the old model are stale now
                self._delivered[view] = max(self._delivered.get(view, 0), rid)
            self._inflight.clear()  # the worker drops requests pending for the old model
            if event.checkpoint:
                self.last_checkpoint = event.checkpoint
            self._set_state("ready")
            if self._train_after_ready is not None:  # a restarted worker: training goes on where it was
                (end,), self._train_after_ready = self._train_after_ready, None
                if end is None or end > event.step:
                    self.send(protocol.Train(steps=None if end is None else end - event.step))
        elif isinstance(event, protocol.TrainingState):
            self.step = event.step
            if self._has_model:
                self._set_state({"training": "training", "paused": "paused"}.get(event.state, "ready"))
        elif isinstance(event, protocol.Stopped):
            self.step = event.step
            if self._has_model:
                self._set_state("ready")
        elif isinstance(event, protocol.StepMetrics) and event.steps is not None and len(event.steps):
            self.step = int(event.steps[-1]) + 1  # steps done
        elif isinstance(event, protocol.CheckpointSaved):
            self.last_checkpoint = event.path
        elif isinstance(event, protocol.Decoded):
            inflight = self._inflight.get(event.view)
            if inflight is not None and event.request_id >= inflight[0]:
                del self._inflight[event.view]
            stale = event.request_id <= self._delivered.get(event.view, 0)
            self._pump(event.view)
            if stale:
                self.decode_stats["dropped"] += 1
                return
            self._delivered[event.view] = event.request_id
            self.decode_stats["delivered"] += 1
            self._time_decode(event)
        elif isinstance(event, protocol.Error):
            if event.command == "Decode":
                self._inflight.clear()
                for view in list(self._pending):
                    self._pump(view)
            if event.command in ("Configure", "LoadCheckpoint") and self._state == "configuring":
                self._configuring = False
                self._has_model = self._model_before  # the worker keeps the model it had
                self._set_state("ready" if self._has_model else "idle")
        if isinstance(event, protocol.Ready):
            for view in list(self._pending):
                self._pump(view)
        self.emit_event(event)
