"""Writing files off the GUI thread, and the exports the worker renders.

:func:`write_in_background` runs a writer (a PNG, a CSV beside it) on the shell's export thread and
reports through :class:`~studio.services.core.Services`. :class:`WorkerExports` sends
:class:`~engines.shared.protocol.Export` commands (GIF, MP4, PNG with a re-render sidecar), shows each
in a progress widget with Cancel, and reports the file when the worker has written it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QObject

from engines.shared import protocol



class _Host(Protocol):
    """What :class:`WorkerExports` needs of :class:`~studio.services.core.Services`."""

    client: Any

    def next_id(self) -> int: ...
    def submit(self, fn: Callable[..., Any], *args: Any) -> Future: ...
    def report_file(self, path: str, error: str = "") -> None: ...
    def notify(self, message: str, level: str = "info", status: str | None = None) -> None: ...
    def file_written(self, path: str, error: str) -> None: ...


class JobWidget(Protocol):
    """What :class:`WorkerExports` needs of a progress widget (:class:`studio.widgets.basic.JobProgress`)."""

    request_id: int

    def start(self, request_id: int, text: str) -> None: ...
    def update_progress(self, event: protocol.Progress) -> None: ...
    def finish(self) -> None: ...


def write_in_background(
    executor: ThreadPoolExecutor, picture: np.ndarray, path: str | Path,
    writer: Callable[[np.ndarray, str], Any], done: Callable[[str, str], None],
) -> Future:
    """Run ``writer(copy of picture, path)`` on ``executor``; then ``done(path, error or "")`` (from that thread).

    The picture is copied first, so the caller may change its array at once.
    """
    path = str(path)
    future = executor.submit(writer, np.array(picture, np.float32), path)

    def finished(f: Future) -> None:
        exc = f.exception()
        done(path, "" if exc is None else f"{path}: {exc}")

    future.add_done_callback(finished)
    return future


def write_delivered(path: str | Path, names: list, sizes: list, blob: np.ndarray) -> list[Path]:
    """Write an export a remote worker sent back (:class:`~engines.shared.protocol.Exported` with ``blob``):
    the file at ``path``, its sidecar and weights beside it under their own names.

    Only the three names an export has are accepted (``NAME``, ``NAME.json``, ``NAME.safetensors`` for
    ``path``'s NAME), whatever the worker says, so a peer cannot write elsewhere.

    Raises
    ------
    ValueError
        A name outside those three, or sizes that do not add up to the bytes sent.
    OSError
        A file cannot be written.
    """
    target = Path(path)
    allowed = {target.name: target, target.name + ".json": target.with_name(target.name + ".json"),
               target.name + ".safetensors": target.with_name(target.name + ".safetensors")}
    data = np.asarray(blob, np.uint8).reshape(-1)
    if len(names) != len(sizes) or any(not isinstance(n, int) or n < 0 for n in sizes) or sum(sizes) != data.size:
        raise ValueError("the worker sent files whose sizes do not add up")
    written, offset = [], 0
    for name, size in zip(names, sizes):
        if name not in allowed:
            raise ValueError(f"the worker sent a file named {name!r}, not one of {sorted(allowed)}")
        allowed[name].write_bytes(data[offset: offset + size].tobytes())
        written.append(allowed[name])
        offset += size
    return written


class WorkerExports(QObject):
    """Exports rendered by the worker, each shown by a :class:`JobWidget`; one per window, shared by the features.

    The worker runs its jobs in order, so an Error of an Export belongs to the oldest one pending.
    A finished export is reported through :meth:`Services.file_written`.

    Parameters
    ----------
    services : Services
    """

    def __init__(self, services: _Host) -> None:
        super().__init__(services)
        self.services = services
        self.pending: dict[int, tuple[str, JobWidget]] = {}  # request id -> (output path, its widget)
        c = services.client
        c.progress.connect(self._on_progress)
        c.error.connect(self._on_error)
        c.exported.connect(self._on_exported)

    def send(self, kind: str, path: str | Path, latents: dict, settings: dict, job: JobWidget) -> int:
        """Send an Export of ``kind`` to ``path`` and show it in ``job``; the request id (0: no worker)."""
        rid = self.services.next_id()
        deliver = getattr(self.services.client, "remote", None) is not None  # the worker cannot reach our disk
        if not self.services.client.send(protocol.Export(request_id=rid, kind=kind, out=str(path),
                                                         latents=latents, settings=settings, deliver=deliver)):
            return 0
        self.pending[rid] = (str(path), job)
        job.start(rid, f"Exporting {Path(path).name}")
        return rid

    def cancel(self, request_id: int) -> None:
        """Ask the worker to cancel export ``request_id``."""
        if request_id in self.pending:
            self.services.client.cancel(request_id)

    def _end(self, rid: int) -> str:
        path, job = self.pending.pop(rid)
        if job.request_id == rid:
            job.finish()
        return path

    def _on_progress(self, event: protocol.Progress) -> None:
        rid = event.request_id
        if rid not in self.pending:
            return
        self.pending[rid][1].update_progress(event)
        if event.message == "cancelled":
            path = self._end(rid)
            self.services.notify(f"Export of {path} cancelled", status=f"Export of {Path(path).name} cancelled")

    def _on_exported(self, event: protocol.Exported) -> None:
        if event.request_id not in self.pending:
            return
        path = self._end(event.request_id)
        if event.blob is None:
            self.services.file_written(event.path, "")
            return
        future = self.services.submit(write_delivered, path, list(event.names), list(event.sizes), event.blob)
        future.add_done_callback(lambda f: self.services.report_file(  # from the export thread
            path, "" if f.exception() is None else f"{path}: {f.exception()}"))

    def _on_error(self, event: protocol.Error) -> None:
        if event.command == "Export" and self.pending:
            self._end(min(self.pending))  # the worker runs jobs in order: the oldest one failed
