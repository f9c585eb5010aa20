"""Helpers for the tests that drive the real worker process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from engines import protocol as P
from engines.link import WorkerLink

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
