"""The :class:`Services` object the shell hands to every feature."""

from __future__ import annotations

import dataclasses
import time

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from engines.shared import protocol
from studio.client import MODEL_STATES
from studio.services.exports import WorkerExports, write_in_background
from studio.services.requests import Requests


#: Seconds after a slider move during which background redraws wait (at most :data:`MAX_HOLD` s in all).
INTERACTIVE_HOLD = 0.3
#: The longest a held redraw waits while the user keeps dragging, seconds.
MAX_HOLD = 1.0


class Services(QObject):
    """The worker client, request ids, a background writer, worker exports and notices, for the features.

    Parameters
    ----------
    client : WorkerClient
        Or any object with its signals and ``send``/``next_id`` (the tests' ``FakeClient``).

    Attributes
    ----------
    client : WorkerClient
    exports : WorkerExports
        The worker-rendered exports (GIF, MP4, PNG with a sidecar), shared by every feature.
    ready : Ready or None
        The current model's ``Ready`` (its data, latent and capabilities), None before the first.

    Signals
    -------
    model_changed(object, bool)
        (Ready, fresh): a model is ready; ``fresh`` unless it is the same model, data and latent as
        before at a later step (a restored autosave), where plots continue rather than start over.
    notice(str, str, str)
        (message for the log, level "info" | "warning" | "error", text for the status bar or "").
    exported(str)
        A file was written (its path), by the export thread or by the worker.
    export_failed(str)
        A file could not be written (the reason, naming the file).
    """

    model_changed = Signal(object, bool)
    notice = Signal(str, str, str)
    exported = Signal(str)
    export_failed = Signal(str)
    _written = Signal(str, str)  # (path, error or "") from the export thread

    def __init__(self, client: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.ready: protocol.Ready | None = None
        self._interacted = -1e9  # time.monotonic() of the last slider move
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export")
        self._written.connect(self.file_written)
        client.ready.connect(self._on_ready)
        self.exports = WorkerExports(self)

    def _on_ready(self, ready: protocol.Ready) -> None:
        previous, self.ready = self.ready, ready
        same = previous is not None and (previous.model, previous.data, previous.latent) == (
            ready.model, ready.data, ready.latent)
        self.model_changed.emit(ready, ready.step == 0 or not same)

    # -- interaction -----------------------------------------------------------------------------
    def note_interaction(self) -> None:
        """A slider moved: for :data:`INTERACTIVE_HOLD` s, background redraws (the loss plot, the sample
        grid) wait, so the GUI thread is free the moment the decoded image arrives."""
        self._interacted = time.monotonic()

    def interacting(self) -> bool:
        """Whether a slider moved within the last :data:`INTERACTIVE_HOLD` seconds."""
        return time.monotonic() - self._interacted < INTERACTIVE_HOLD

    # -- the worker ------------------------------------------------------------------------------
    def next_id(self) -> int:
        """A fresh request id."""
        return int(self.client.next_id())

    def requests(self) -> Requests:
        """A new :class:`Requests` book for one feature, drawing ids from the client."""
        return Requests(self.next_id)

    def has_model(self) -> bool:
        """Whether the worker holds a model that can decode and encode."""
        return self.client.state in MODEL_STATES

    def send(self, command: protocol.Command) -> bool:
        """Send ``command``; False, with a status-bar notice, when no worker runs."""
        if not self.client.send(command):
            self.notify("", status=f"No worker to send {type(command).__name__} to")
            return False
        return True

    def send_request(self, command: protocol.Command) -> int:
        """Send ``command`` under a fresh request id (its own ``request_id`` is replaced); that id."""
        rid = self.next_id()
        self.send(dataclasses.replace(command, request_id=rid))
        return rid

    # -- notices and files -----------------------------------------------------------------------
    def notify(self, message: str, level: str = "info", status: str | None = None) -> None:
        """Log ``message`` (empty: don't) and show ``status`` (default: the message) in the status bar."""
        self.notice.emit(message, level, message if status is None else status)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Run ``fn(*args)`` on the export thread (file reading and writing, never the GUI thread)."""
        return self._executor.submit(fn, *args)

    def write(self, picture: np.ndarray, path: str | Path, writer: Callable[[np.ndarray, str], Any]) -> Future:
        """Write a file off the GUI thread with ``writer(picture, path)``; reported by ``exported``/``export_failed``."""
        return write_in_background(self._executor, picture, path, writer, self._written.emit)

    def report_file(self, path: str, error: str = "") -> None:
        """:meth:`file_written`, callable from any thread (a queued signal brings it to the GUI thread)."""
        self._written.emit(path, error)

    def file_written(self, path: str, error: str) -> None:
        """Report a written file (``error`` empty) or a failed one."""
        if error:
            self.notify(f"Export failed: {error}", "error")
            self.export_failed.emit(error)
        else:
            self.notify(f"Wrote {path}")
            self.exported.emit(path)

    def close(self, wait: bool = True) -> None:
        """Finish pending file writes."""
        self._executor.shutdown(wait=wait)
