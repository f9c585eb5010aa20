"""Helpers for the tests that drive the real worker process."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from engines.shared import protocol as P
from engines.shared.link import WorkerLink

LATENT = 4
SIZE = 16


def wait(link: WorkerLink, want, timeout: float = 30.0) -> P.Event:  # noqa: ANN001
    """The first event for which ``want(event)`` is true; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    seen = []
    while (left := deadline - time.monotonic()) > 0:
        event = link.recv(left)
        if event is not None:
            if want(event):
                return event
            seen.append(type(event).__name__)
    raise TimeoutError(f"gave up after {timeout} s; got {seen}")


def collect(link: WorkerLink, until, timeout: float = 30.0) -> list[P.Event]:  # noqa: ANN001
    """Events received until ``until(event)`` is true (that event last); TimeoutError otherwise."""
    events: list[P.Event] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"gave up after {timeout} s; got {[type(e).__name__ for e in events]}")
        event = link.recv(left)
        if event is None:
            continue
        events.append(event)
        if until(event):
            return events


def answer(link: WorkerLink, event_type: type, command: str, request_id: int) -> P.Event:
    """The ``event_type`` answer with ``request_id``, or the Error event of a ``command``."""
    return wait(link, lambda e: (isinstance(e, event_type) and e.request_id == request_id)
                or (isinstance(e, P.Error) and e.command == command))


def decode(link: WorkerLink, z, request_id: int):  # noqa: ANN001, ANN201
    """Images of a plain Decode of ``z`` (N, D), for comparing with other answers."""
    import numpy as np

    link.send(P.Decode(request_id=request_id, view="check", z=np.asarray(z, np.float32)))
    return wait(link, lambda e: isinstance(e, P.Decoded) and e.request_id == request_id).images


@contextmanager
def configured_worker(home: Path) -> Iterator[WorkerLink]:
    """A CPU worker (one thread, metrics off, autosaves under ``home``) with a 4-dim VAE on digits at 16x16."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LATENT_STUDIO_HOME", str(home))
        link = WorkerLink(threads=1, device="cpu", connect_timeout=60)
        link.start()
    try:
        link.wait_for(P.Started, timeout=60)
        link.send(P.SetMetricSchedule(coverage_every=0, disentanglement_every=0))
        link.send(P.Configure(data="digits", model="vae", image_size=SIZE, latent_dim=LATENT, seed=3, batch_size=32))
        ready = wait(link, lambda e: isinstance(e, (P.Ready, P.Error)), timeout=60)
        assert isinstance(ready, P.Ready), getattr(ready, "message", ready)
        yield link
    finally:
        link.kill()


@contextmanager
def real_window(home: Path | str) -> Iterator:
    """The real main window with a CPU worker being started (one torch thread), autosaves and the
    coverage classifier cache under ``home``; closed (worker shut down) and the environment restored
    on exit. Wait for ``window.client.state == "idle"`` before building a model."""
    from studio.client import WorkerClient
    from studio.shell.window import MainWindow

    old_home = os.environ.get("LATENT_STUDIO_HOME")
    os.environ["LATENT_STUDIO_HOME"] = str(home)
    window = MainWindow(WorkerClient(threads=1, device="cpu", connect_timeout=90))
    window.resize(1200, 800)
    window.show()
    window.start_worker()
    try:
        yield window
    finally:
        window.close()
        if old_home is None:
            os.environ.pop("LATENT_STUDIO_HOME", None)
        else:
            os.environ["LATENT_STUDIO_HOME"] = old_home


class Inbox:
    """A ``send`` callable that keeps the events a worker thread sends, for tests without the process."""

    def __init__(self) -> None:
        self.events: list[P.Event] = []
        self.cv = threading.Condition()

    def __call__(self, event: P.Event) -> None:
        with self.cv:
            self.events.append(event)
            self.cv.notify_all()

    def wait(self, cls: type, n: int = 1, timeout: float = 10.0) -> list:
        """The events of type ``cls`` once there are ``n`` of them (or whatever came within ``timeout`` s)."""
        with self.cv:
            self.cv.wait_for(lambda: len(self.of(cls)) >= n, timeout)
            return self.of(cls)

    def of(self, cls: type) -> list:
        return [e for e in self.events if isinstance(e, cls)]
