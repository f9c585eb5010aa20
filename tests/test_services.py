"""studio.services: request bookkeeping, notices, background writes, worker exports, model changes (no MainWindow)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engines.shared import protocol
from engines.shared.datainfo import DataInfo
from engines.shared.spec import LatentSpec
from fakes import FakeClient, caps
from studio.services import Requests, Services

INFO = DataInfo("test", "image", (1, 8, 8), 100, 90, 10)


def test_requests_newest_wins_and_keep_their_payload_until_shown():
    ids = itertools.count(1)
    r = Requests(lambda: next(ids))
    a, b = r.ask("traverse", ["z0"]), r.ask("traverse", ["z1"])
    assert (a, b) == (1, 2) and r.asked("traverse") == 2
    assert not r.is_current("traverse", a) and r.is_current("traverse", b)
    assert r.is_newer("traverse", a) and r.payload("traverse", a) == ["z0"]  # an older answer may still show
    r.shown("traverse", b)
    assert not r.is_newer("traverse", a) and r.payload("traverse", a) is None  # ... but not after a newer one
    assert not r.is_newer("traverse", 3)  # never asked: not ours
    assert not r.is_newer("other", b)  # purposes are apart
    c = r.ask("page")
    assert r.take("page", c) is None and r.asked("page") == 0
    r.ask("traverse")
    r.forget("traverse")
    assert r.asked("traverse") == 0 and not r.is_newer("traverse", 4)


@pytest.fixture
def services(qtbot):
    client = FakeClient()
    s = Services(client)
    yield s, client
    s.close()


def test_notices_and_file_reports(services, qtbot):
    s, _client = services
    seen = []
    s.notice.connect(lambda *a: seen.append(a))
    s.notify("hello")
    s.notify("", status="only the status bar")
    s.notify("bad", "error", status="")
    assert seen == [("hello", "info", "hello"), ("", "info", "only the status bar"), ("bad", "error", "")]


def test_write_runs_off_the_gui_thread_and_reports(services, qtbot, tmp_path):
    s, _client = services
    import threading

    where = []

    def writer(x: np.ndarray, path: str) -> None:
        where.append(threading.current_thread().name)
        np.save(path, x)

    with qtbot.waitSignal(s.exported, timeout=5000) as blocker:
        s.write(np.ones((2, 2)), tmp_path / "a.npy", writer)
    assert blocker.args == [str(tmp_path / "a.npy")] and where[0].startswith("export")
    with qtbot.waitSignal(s.export_failed, timeout=5000) as blocker:
        s.write(np.ones(1), tmp_path / "missing" / "b.npy", writer)
    assert "b.npy" in blocker.args[0]


def test_model_changed_says_whether_plots_start_over(services, qtbot):
    s, client = services
    got = []
    s.model_changed.connect(lambda ready, fresh: got.append((ready.step, fresh)))
    ready = protocol.Ready(model="vae", data=INFO, latent=LatentSpec.gaussian(3), capabilities=caps(True), step=0)
    client.ready.emit(ready)
    client.ready.emit(protocol.Ready(model="vae", data=INFO, latent=LatentSpec.gaussian(3), step=500))  # an autosave
    client.ready.emit(protocol.Ready(model="gan", data=INFO, latent=LatentSpec.gaussian(3), step=500))  # another model
    assert got == [(0, True), (500, False), (500, True)] and s.ready.model == "gan"


class Job:
    """A stand-in progress widget."""

    def __init__(self) -> None:
        self.request_id, self.events, self.finished = 0, [], 0

    def start(self, request_id: int, text: str) -> None:
        self.request_id = request_id

    def update_progress(self, event: protocol.Progress) -> None:
        self.events.append(event)

    def finish(self) -> None:
        self.finished += 1


def test_worker_exports_send_track_cancel_and_report(services, qtbot, tmp_path):
    s, client = services
    job = Job()
    rid = s.exports.send("interpolation", tmp_path / "walk.gif", {"keyframes": [[0.0], [1.0]]}, {"fps": 12}, job)
    sent = client.of(protocol.Export)[-1]
    assert rid and sent.request_id == rid and sent.kind == "interpolation" and job.request_id == rid
    client.progress.emit(protocol.Progress(task="export", done=3, total=10, request_id=rid))
    assert len(job.events) == 1
    with qtbot.waitSignal(s.exported, timeout=2000) as blocker:
        client.exported.emit(protocol.Exported(request_id=rid, path=str(tmp_path / "walk.gif")))
    assert blocker.args == [str(tmp_path / "walk.gif")] and job.finished == 1 and not s.exports.pending
    rid2 = s.exports.send("traversal", tmp_path / "t.mp4", {}, {}, job)
    s.exports.cancel(rid2)
    assert client.of(protocol.Cancel)[-1].request_id == rid2
    client.error.emit(protocol.Error(message="disk full", command="Export"))  # the oldest pending one failed
    assert not s.exports.pending and job.finished == 2
