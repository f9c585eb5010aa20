"""Test set-up: Qt offscreen, and small shared fixtures."""

from __future__ import annotations

import gc
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session", autouse=True)
def _studio_home(tmp_path_factory):
    """The suite's own ``LATENT_STUDIO_HOME``: tests never write into the user's ``~/.latent-studio`` (runs,
    registered run folders, the classifier cache). A test that needs a fresh one sets its own."""
    before = os.environ.get("LATENT_STUDIO_HOME")
    os.environ["LATENT_STUDIO_HOME"] = str(tmp_path_factory.mktemp("studio-home"))
    yield
    if before is None:
        os.environ.pop("LATENT_STUDIO_HOME", None)
    else:
        os.environ["LATENT_STUDIO_HOME"] = before


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for the module's tests: the test machines have two cores shared with other work."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


_TESTS_SINCE_FULL_COLLECTION = [0]


@pytest.fixture(autouse=True)
def _garbage_collected_between_tests():
    """Python's cyclic collector runs only between tests, never inside a Qt call.

    Collected mid-test, a cycle holding a QObject from an earlier test can be destroyed while Qt is inside
    ``QObject::disconnect`` (pyqtgraph does that while adding items), and its destructor then waits on the
    mutex the disconnect holds: a deadlock seen in this suite. The studio does the same with pyqtgraph's
    ``GarbageCollector`` (collection on the GUI thread's timer, :func:`studio.app.create_application`).
    The young generations (what the test allocated) are collected after every test, everything every 50.
    """
    gc.disable()
    try:
        yield
    finally:
        _TESTS_SINCE_FULL_COLLECTION[0] += 1
        if _TESTS_SINCE_FULL_COLLECTION[0] >= 50:
            _TESTS_SINCE_FULL_COLLECTION[0] = 0
            gc.collect()
        else:
            gc.collect(1)
        gc.enable()
