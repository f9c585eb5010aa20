"""The training timeline (issue 12): snapshots every N steps within a disk budget, scrubbed back through by the
model as it was, and a branch from a snapshot that opens as a new run."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from engines.lib.checkpoint import load_checkpoint
from engines.shared import protocol as P
from engines.shared.errors import ConfigError
from engines.worker.timeline import Scrubber, Timeline
from test_watchdog import images, session
from workers import collect, configured_worker


def saved(folder: Path, every: int, max_bytes: int, steps: list[int]) -> Timeline:
    s = session(images())
    t = Timeline(folder, every, max_bytes)
    for step in range(1, max(steps) + 1):
        s.engine.training_step(next(s.batches), step)
        s.step = step
        if step in steps and t.due(step):
            t.save(s)
    return t


def test_snapshots_are_spaced_listed_again_and_thinned_evenly_to_the_budget(tmp_path: Path) -> None:
    t = saved(tmp_path / "a", every=3, max_bytes=2**40, steps=list(range(1, 13)))
    assert t.steps == [1, 4, 7, 10]  # every third step
    assert Timeline(tmp_path / "a").steps == [1, 4, 7, 10]  # a reopened run lists its own
    one = max(t.path_at(k).stat().st_size for k in t.steps)
    t.max_bytes = 4 * one + one // 2  # room for four: the closest to its neighbours goes first
    s = session(images())
    s.engine.training_step(next(s.batches), 0)  # optimiser state of the same size as the others'
    for step in (13, 16, 19, 22, 25):
        s.step = step
        t.save(s)
    assert t.steps[0] == 1 and t.steps[-1] == 25 and len(t.steps) == 4 and t.nbytes <= t.max_bytes
    assert np.diff(t.steps).max() <= 12, t.steps  # still spread over the whole run, not just its end
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [f"step-{k:09d}.safetensors" for k in t.steps]
    with pytest.raises(ConfigError, match="no snapshot at step 2"):
        t.path_at(2)
    with pytest.raises(ConfigError, match="from 1"):
        t.configure(0, 2**30)


def test_a_rollback_drops_the_snapshots_of_the_lost_future(tmp_path: Path) -> None:
    t = saved(tmp_path, every=2, max_bytes=2**40, steps=[2, 4, 6])
    s = session(images())
    s.step = 3
    assert t.due(3)
    t.save(s)
    assert t.steps == [2, 3]


def test_the_scrubber_decodes_by_the_snapshot_and_serves_only_the_newest_request(tmp_path: Path) -> None:
    t = saved(tmp_path, every=5, max_bytes=2**40, steps=[5, 10])
    out: list[P.Event] = []
    got = threading.Event()

    def send(event: P.Event) -> None:
        out.append(event)
        got.set()

    scrubber = Scrubber(send, torch.device("cpu"))
    fixed = np.random.default_rng(0).standard_normal((6, 2)).astype(np.float32)
    z = np.array([0.5, -1.0], np.float32)
    for rid in range(1, 30):  # a drag: only the last few are answered
        scrubber.submit(P.ScrubTimeline(request_id=rid, step=5, z=z), t.path_at(5), fixed)
    deadline = time.monotonic() + 20
    while (not out or out[-1].request_id != 29) and time.monotonic() < deadline:
        time.sleep(0.01)
    scrubber.close()
    assert out[-1].request_id == 29 and len(out) < 29
    engine, _ = load_checkpoint(t.path_at(5))
    with torch.no_grad():
        np.testing.assert_allclose(out[-1].grid, engine.decode(torch.from_numpy(fixed)).numpy(), atol=1e-6)
        np.testing.assert_allclose(out[-1].image, engine.decode(torch.from_numpy(z[None])).numpy()[0], atol=1e-6)
    later, _ = load_checkpoint(t.path_at(10))
    with torch.no_grad():
        assert not np.allclose(later.decode(torch.from_numpy(fixed)).numpy(), out[-1].grid)  # it moved on


def test_the_worker_keeps_a_timeline_scrubs_it_and_branches_a_new_run(tmp_path: Path) -> None:
    with configured_worker(tmp_path / "home") as link:
        first = collect(link, lambda e: isinstance(e, P.TimelineChanged), timeout=30)[-1]
        assert first.steps.tolist() == [] and first.folder.endswith("timeline")
        link.send(P.SetTimeline(every=4, max_mb=64))
        assert collect(link, lambda e: isinstance(e, P.TimelineChanged))[-1].every == 4
        link.send(P.Train(steps=30))
        events = collect(link, lambda e: isinstance(e, (P.Stopped, P.Error)), timeout=60)
        assert isinstance(events[-1], P.Stopped), events[-1]
        changes = [e for e in events if isinstance(e, P.TimelineChanged)]
        steps = changes[-1].steps.tolist()
        assert len(steps) >= 3 and all(b - a >= 4 for a, b in zip(steps, steps[1:])) and steps[-1] <= 30
        assert 0 < changes[-1].nbytes <= changes[-1].max_bytes == 64 * 2**20
        step = steps[1]
        z = np.linspace(-1, 1, 4).astype(np.float32)
        link.send(P.ScrubTimeline(request_id=77, step=step, z=z))
        frame = collect(link, lambda e: isinstance(e, (P.TimelineFrame, P.Error)))[-1]
        assert isinstance(frame, P.TimelineFrame) and frame.step == step and frame.grid.shape[0] == 64
        path = Path(changes[-1].folder) / f"step-{step:09d}.safetensors"
        engine, _ = load_checkpoint(path)
        with torch.no_grad():
            np.testing.assert_allclose(frame.image, engine.decode(torch.from_numpy(z[None])).numpy()[0], atol=1e-5)
        link.send(P.ScrubTimeline(request_id=78, step=step + 1, z=z))  # thinned or never kept
        err = collect(link, lambda e: isinstance(e, (P.TimelineFrame, P.Error)))[-1]
        assert isinstance(err, P.Error) and "no snapshot" in err.message

        # branch from that snapshot: a new run folder beside the old one, training on from its step
        link.send(P.LoadCheckpoint(path=str(path)))
        ready = collect(link, lambda e: isinstance(e, (P.Ready, P.Error)), timeout=60)[-1]
        assert isinstance(ready, P.Ready) and ready.step == step
        link.send(P.Train(steps=2))
        saved_at = collect(link, lambda e: isinstance(e, P.CheckpointSaved) and e.autosave, timeout=60)[-1]
        assert Path(saved_at.path).parent != path.parent.parent and saved_at.step == step + 2
        assert path.is_file()  # the old run and its timeline stay
