"""The real worker process, spawned through WorkerLink on the CPU with one thread.

One worker serves the whole module (a module-scoped fixture), but no test relies on what another
left in it: each starts from a model it configures itself (the ``fresh`` fixture: a new 4-dim VAE
on digits, step 0) or from that model trained for three steps (``trained``: step 3, beta 1), so the
tests pass alone and in any order. Three extra short-lived workers check that Shutdown ends the
process, that a killed worker is detected and that a worker whose window went away exits.
"""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from engines.shared import protocol as P
from engines.shared.link import WorkerDied, WorkerLink
from workers import collect, configured_worker
from engines.worker.trainer import MetricsBuffer

LATENT = 4
SIZE = 16


def of(events: list[P.Event], cls: type) -> list:
    return [e for e in events if isinstance(e, cls)]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("studio-home")


@pytest.fixture(scope="module")
def worker(home):
    """A configured worker: digits at 16x16, a 4-dim VAE, batch 32; yields (link, Started, Ready, events)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LATENT_STUDIO_HOME", str(home))
        link = WorkerLink(threads=1, device="cpu", connect_timeout=60)
        link.start()
    try:
        started = link.wait_for(P.Started, timeout=60)
        link.send(P.SetMetricSchedule(coverage_every=0, disentanglement_every=0))  # tests/test_live_metrics.py covers them
        link.send(P.Configure(data="digits", model="vae", image_size=SIZE, latent_dim=LATENT, seed=3, batch_size=32))
        events = collect(link, lambda e: isinstance(e, (P.Ready, P.Error)), timeout=60)
        yield link, started, events[-1], events
    finally:
        link.kill()


def configure(link: WorkerLink) -> P.Ready:
    """Host a new model (digits at 16x16, a 4-dim VAE, seed 3, batch 32), replacing whatever the worker had;
    returns its Ready once the first sample grid that follows it has arrived too (nothing more is pending)."""
    link.send(P.Configure(data="digits", model="vae", image_size=SIZE, latent_dim=LATENT, seed=3, batch_size=32))
    ready = collect(link, lambda e: isinstance(e, (P.Ready, P.Error)), timeout=60)[-1]
    assert isinstance(ready, P.Ready), getattr(ready, "message", ready)
    assert ready.step == 0
    collect(link, lambda e: isinstance(e, P.Samples) and e.request_id == -1 and e.step == 0, timeout=30)
    return ready


@pytest.fixture
def fresh(worker) -> WorkerLink:
    """The module's worker with a newly configured, untrained model (step 0)."""
    link = worker[0]
    configure(link)
    return link


@pytest.fixture
def trained(fresh) -> WorkerLink:
    """The module's worker with a new model trained for three steps (step 3, beta 1, autosaved)."""
    fresh.send(P.Train(steps=3))
    stopped = collect(fresh, lambda e: isinstance(e, (P.Stopped, P.Error)))[-1]
    assert isinstance(stopped, P.Stopped) and stopped.step == 3, stopped
    return fresh


def test_started_and_ready(worker):
    link, started, ready, events = worker
    assert started.pid == link.pid and started.device == "cpu" and started.threads == 1
    assert started.torch_version and {"vae", "beta-vae"} <= set(started.models)
    assert isinstance(ready, P.Ready), getattr(ready, "message", ready)
    assert ready.model == "vae" and ready.family == "vae" and ready.device == "cpu" and ready.step == 0
    assert tuple(ready.data.shape) == (1, SIZE, SIZE) and ready.data.spec == "digits"
    assert "digits" in ready.data_summary
    assert [d.name for d in ready.latent.dims] == [f"z{i}" for i in range(LATENT)]
    assert {"beta", "lr"} <= {h.name for h in ready.hyper}
    assert ready.config["latent_dim"] == LATENT and ready.config["seed"] == 3
    assert ready.capabilities.has_encoder is True and ready.checkpoint is None
    progress = of(events, P.Progress)
    assert progress and progress[-1].done == progress[-1].total


def test_train_three_steps(fresh, home):
    link = fresh
    link.send(P.Train(steps=3))
    events = collect(link, lambda e: isinstance(e, (P.Stopped, P.Error)))
    assert not of(events, P.Error), of(events, P.Error)
    assert isinstance(events[0], P.TrainingState) and events[0].state == "training" and events[0].step == 0
    stopped = events[-1]
    assert stopped.reason == "finished" and stopped.step == 3
    metrics = of(events, P.StepMetrics)
    steps = np.concatenate([m.steps for m in metrics])
    assert steps.tolist() == [0, 1, 2]
    for m in metrics:
        assert m.values.shape == (len(m.steps), len(m.names)) and m.values.dtype == np.float32
        for name in ("recon", "kl"):
            assert np.isfinite(m.values[:, m.names.index(name)]).all()
        assert m.latent_kl is not None and m.latent_kl.shape == (LATENT,)
        # every StepMetrics follows real steps: a positive speed, and every batch holds 32 images
        assert m.steps_per_sec > 0 and math.isfinite(m.steps_per_sec)
        assert m.images_per_sec == pytest.approx(32 * m.steps_per_sec, rel=1e-9)
    saved = of(events, P.CheckpointSaved)
    assert len(saved) == 1 and saved[0].autosave and saved[0].step == 3
    path = Path(saved[0].path)  # a folder of its own under runs/, named by time, model and data
    assert path.name == "model.safetensors" and path.parent.parent == home / "runs" and path.is_file()
    assert "-vae-" in path.parent.name
    # the sample grid decoded from the fixed z after the last step (it may follow Stopped)
    grids = [e for e in events if isinstance(e, P.Samples) and e.step == 3]
    if not grids:
        grids = of(collect(link, lambda e: isinstance(e, P.Samples) and e.step == 3, timeout=10), P.Samples)
    assert grids[-1].request_id == -1 and grids[-1].images.shape == (64, 1, SIZE, SIZE)


def test_held_out_likelihood_is_logged_live(fresh):
    """A model with a likelihood gets a held-out curve in the loss plot: -ELBO of a fixed held-out probe."""
    fresh.send(P.Train(steps=150))
    events = collect(fresh, lambda e: isinstance(e, (P.Stopped, P.Error)))
    assert not of(events, P.Error), of(events, P.Error)
    values = [m.values[:, m.names.index("held_out_neg_elbo")] for m in of(events, P.StepMetrics)
              if "held_out_neg_elbo" in m.names]
    measured = np.concatenate(values) if values else np.zeros(0)
    measured = measured[np.isfinite(measured)]
    assert len(measured) >= 1 and (measured > 0).all(), "no live held-out measurement"


def test_decode_after_training(trained):
    link = trained
    z = np.random.default_rng(0).standard_normal((5, LATENT)).astype(np.float32)
    link.send(P.Decode(request_id=7, view="explore", z=z))
    decoded = collect(link, lambda e: isinstance(e, (P.Decoded, P.Error)))[-1]
    assert isinstance(decoded, P.Decoded), decoded
    assert decoded.request_id == 7 and decoded.view == "explore" and decoded.step == 3
    assert decoded.images.shape == (5, 1, SIZE, SIZE) and decoded.images.dtype == np.float32
    assert 0.0 <= decoded.images.min() and decoded.images.max() <= 1.0


def test_latest_decode_wins(fresh):
    link = fresh
    # keep the host busy with a large decode, then flood two views; only the newest of each must be served
    link.send(P.Decode(request_id=1000, view="blocker", z=np.zeros((4096, LATENT), np.float32)))
    n = 40
    for i in range(n):
        z = np.full((1, LATENT), i / n, np.float32)
        link.send(P.Decode(request_id=2000 + i, view="a", z=z))
        link.send(P.Decode(request_id=3000 + i, view="b", z=z))
    last = {"a": 2000 + n - 1, "b": 3000 + n - 1}
    seen: dict[str, list[int]] = {"a": [], "b": [], "blocker": []}

    def done(e: P.Event) -> bool:
        if isinstance(e, P.Decoded):
            seen[e.view].append(e.request_id)
        return all(seen[v] and seen[v][-1] == last[v] for v in last)

    collect(link, done)
    assert seen["blocker"] == [1000]
    for view in ("a", "b"):
        ids = seen[view]
        assert ids == sorted(ids) and ids[-1] == last[view]
        assert len(ids) < n, f"view {view}: every one of {n} pending decodes was served"


def test_set_hyperparameter_and_bad_values(trained):
    link = trained
    link.send(P.SetHyperparameter(name="beta", value=2.5))
    changed = collect(link, lambda e: isinstance(e, (P.HyperparameterChanged, P.Error)))[-1]
    assert isinstance(changed, P.HyperparameterChanged), changed
    assert changed.name == "beta" and changed.value == 2.5 and changed.step == 3
    for name, value in (("beta", -1.0), ("beta", float("nan")), ("no-such-knob", 1.0)):
        link.send(P.SetHyperparameter(name=name, value=value))
        err = collect(link, lambda e: isinstance(e, (P.HyperparameterChanged, P.Error)))[-1]
        assert isinstance(err, P.Error) and err.command == "SetHyperparameter" and name in err.message


def test_pause_resume_stop_while_training(trained):
    link = trained
    link.send(P.Train(steps=None))
    first = collect(link, lambda e: isinstance(e, P.StepMetrics))[-1]
    assert first.steps_per_sec > 0 and first.images_per_sec == pytest.approx(32 * first.steps_per_sec, rel=1e-9)
    link.send(P.SetHyperparameter(name="beta", value=1.5))  # applied between two steps
    changed = collect(link, lambda e: isinstance(e, (P.HyperparameterChanged, P.Error)))[-1]
    assert isinstance(changed, P.HyperparameterChanged) and changed.value == 1.5 and changed.step > 3
    link.send(P.Pause())
    paused = collect(link, lambda e: isinstance(e, P.TrainingState) and e.state == "paused")[-1]
    quiet = []
    while (e := link.recv(0.3)) is not None:  # nothing more is trained while paused
        quiet.append(e)
    assert not of(quiet, P.StepMetrics) and not of(quiet, P.Stopped)
    link.send(P.Resume())
    resumed = collect(link, lambda e: isinstance(e, P.TrainingState))[-1]
    assert resumed.state == "training" and resumed.step == paused.step
    after = collect(link, lambda e: isinstance(e, P.StepMetrics) and e.steps.min() >= paused.step)[-1]
    assert after.steps_per_sec > 0 and after.images_per_sec == pytest.approx(32 * after.steps_per_sec, rel=1e-9)
    link.send(P.Stop())
    stopped = collect(link, lambda e: isinstance(e, (P.Stopped, P.Error)))[-1]
    assert isinstance(stopped, P.Stopped) and stopped.reason == "stopped" and stopped.step > paused.step
    link.send(P.Stop())  # nothing to stop
    idle = collect(link, lambda e: isinstance(e, P.TrainingState))[-1]
    assert idle.state == "idle" and idle.step == stopped.step


def test_errors_do_not_stop_the_worker(fresh):
    link = fresh
    link.send(P.Configure(data="no-such-data", model="vae"))
    err = collect(link, lambda e: isinstance(e, (P.Error, P.Ready)))[-1]
    assert isinstance(err, P.Error) and err.command == "Configure" and "no-such-data" in err.message
    link.send(P.Configure(data="digits", model="no-such-model"))
    err = collect(link, lambda e: isinstance(e, (P.Error, P.Ready)))[-1]
    assert isinstance(err, P.Error) and "no-such-model" in err.message
    link.send(P.Decode(request_id=11, z=np.zeros((2, LATENT + 1), np.float32)))
    err = collect(link, lambda e: isinstance(e, (P.Error, P.Decoded)))[-1]
    assert isinstance(err, P.Error) and err.command == "Decode" and f"(N, {LATENT})" in err.message
    link.conn.send_bytes(b"\x80\x04garbage")  # a pickle stream, refused
    err = collect(link, lambda e: isinstance(e, P.Error))[-1]
    assert err.command == "frame" and "pickle" in err.message
    link.conn.send_bytes(P.encode(P.Stopped()))  # an event where a command belongs
    assert collect(link, lambda e: isinstance(e, P.Error))[-1].command == "frame"
    link.send(P.Train(steps=0))
    assert collect(link, lambda e: isinstance(e, P.Error))[-1].command == "Train"
    # the old model is still hosted and answers
    link.send(P.Decode(request_id=12, z=np.zeros((1, LATENT), np.float32)))
    ok = collect(link, lambda e: isinstance(e, (P.Error, P.Decoded)))[-1]
    assert isinstance(ok, P.Decoded) and ok.request_id == 12


def test_encode_examples_and_sample(fresh):
    link = fresh
    link.send(P.Encode(request_id=21, view="morph", indices=[0, 4, 9], split="test"))
    enc = collect(link, lambda e: isinstance(e, (P.Encoded, P.Error)))[-1]
    assert isinstance(enc, P.Encoded), enc
    assert enc.request_id == 21 and enc.view == "morph"
    assert enc.z.shape == (3, LATENT) and enc.images.shape == (3, 1, SIZE, SIZE)
    link.send(P.GetExamples(request_id=22, indices=[0, 4, 9], split="test"))
    ex = collect(link, lambda e: isinstance(e, (P.Examples, P.Error)))[-1]
    assert isinstance(ex, P.Examples) and ex.indices == [0, 4, 9]
    np.testing.assert_array_equal(ex.images, enc.images)
    assert ex.labels.dtype == np.int64 and ex.labels.shape == (3,) and ex.labels.max() <= 9
    link.send(P.Encode(request_id=23, images=ex.images))  # given images encode to the same z
    again = collect(link, lambda e: isinstance(e, (P.Encoded, P.Error)))[-1]
    np.testing.assert_allclose(again.z, enc.z, rtol=1e-5, atol=1e-6)
    link.send(P.Encode(request_id=24, indices=[10**6]))
    err = collect(link, lambda e: isinstance(e, (P.Encoded, P.Error)))[-1]
    assert isinstance(err, P.Error) and err.command == "Encode" and "test split" in err.message
    images = []
    for rid in (25, 26):
        link.send(P.Sample(request_id=rid, n=8, seed=5))
        s = collect(link, lambda e: isinstance(e, (P.Error, P.Samples)) and getattr(e, "request_id", None) == rid)[-1]
        assert isinstance(s, P.Samples) and s.images.shape == (8, 1, SIZE, SIZE)
        images.append(s.images)
    np.testing.assert_array_equal(images[0], images[1])  # same seed, same samples


def test_save_and_load_checkpoint(trained, tmp_path):
    link = trained
    link.send(P.SetHyperparameter(name="beta", value=1.5))  # a live change the checkpoint must keep
    changed = collect(link, lambda e: isinstance(e, (P.HyperparameterChanged, P.Error)))[-1]
    assert isinstance(changed, P.HyperparameterChanged) and changed.value == 1.5, changed
    path = tmp_path / "run" / "model.safetensors"
    link.send(P.SaveCheckpoint(path=str(path)))
    saved = collect(link, lambda e: isinstance(e, (P.CheckpointSaved, P.Error)))[-1]
    assert isinstance(saved, P.CheckpointSaved), saved
    assert saved.path == str(path) and not saved.autosave and path.is_file() and saved.step == 3
    z = np.random.default_rng(1).standard_normal((3, LATENT)).astype(np.float32)
    link.send(P.Decode(request_id=31, z=z))
    before = collect(link, lambda e: isinstance(e, P.Decoded) and e.request_id == 31)[-1].images
    link.send(P.Train(steps=5))  # move the weights away from the checkpoint
    collect(link, lambda e: isinstance(e, P.Stopped))
    link.send(P.Decode(request_id=32, z=z))
    moved = collect(link, lambda e: isinstance(e, P.Decoded) and e.request_id == 32)[-1].images
    assert not np.allclose(moved, before)
    link.send(P.LoadCheckpoint(path=str(path)))
    ready = collect(link, lambda e: isinstance(e, (P.Ready, P.Error)))[-1]
    assert isinstance(ready, P.Ready), ready
    assert ready.checkpoint == str(path) and ready.step == saved.step and ready.model == "vae"
    assert "digits" in ready.data_summary and "unavailable" not in ready.data_summary
    assert next(h for h in ready.hyper if h.name == "beta").value == 1.5
    link.send(P.Decode(request_id=33, z=z))
    after = collect(link, lambda e: isinstance(e, P.Decoded) and e.request_id == 33)[-1]
    assert after.step == saved.step
    np.testing.assert_allclose(after.images, before, atol=1e-6)
    link.send(P.LoadCheckpoint(path=str(tmp_path / "missing.safetensors")))
    err = collect(link, lambda e: isinstance(e, (P.Ready, P.Error)))[-1]
    assert isinstance(err, P.Error) and err.command == "LoadCheckpoint" and "missing.safetensors" in err.message


def test_a_run_resumed_in_its_folder_continues_exactly_with_its_curves_and_markers(trained, tmp_path):
    """LoadCheckpoint(resume=True): the same losses as the run that went on, the curves and the hyperparameter
    change sent back for the plots, and autosaves into the run's own folder."""
    link = trained  # step 3
    link.send(P.SetHyperparameter(name="beta", value=1.25))
    collect(link, lambda e: isinstance(e, (P.HyperparameterChanged, P.Error)))
    folder = tmp_path / "run"
    link.send(P.SaveCheckpoint(path=str(folder / "model.safetensors")))
    assert isinstance(collect(link, lambda e: isinstance(e, (P.CheckpointSaved, P.Error)))[-1], P.CheckpointSaved)
    (folder / "metrics.csv").write_text("step,recon,kl\n0,50,1\n1,40,2\n2,30,3\n3,99,9\n")  # 3: after the save

    def losses(steps: int) -> tuple[list[int], list[float]]:
        link.send(P.Train(steps=steps))
        events = collect(link, lambda e: isinstance(e, (P.Stopped, P.Error)))
        assert isinstance(events[-1], P.Stopped), events[-1]
        rows = [(int(s), float(m.values[i, m.names.index("loss")]))
                for m in of(events, P.StepMetrics) for i, s in enumerate(m.steps)]
        return [s for s, _ in rows], [v for _, v in rows]

    went_on = losses(4)  # the run as it went on from step 3
    link.send(P.LoadCheckpoint(path=str(folder), resume=True))
    events = collect(link, lambda e: isinstance(e, P.HyperparameterChanged), timeout=60)
    ready = of(events, P.Ready)[-1]
    assert ready.step == 3 and next(h for h in ready.hyper if h.name == "beta").value == 1.25
    history = of(events, P.StepMetrics)[-1]
    assert history.steps.tolist() == [0, 1, 2] and history.names == ["recon", "kl"]  # not the lost step 3
    np.testing.assert_array_equal(history.values[:, 0], [50, 40, 30])
    assert (events[-1].name, events[-1].value, events[-1].step) == ("beta", 1.25, 3)
    resumed = losses(4)
    assert resumed == went_on  # the same batches, in the same order, from the same optimiser state
    link.send(P.SaveCheckpoint(path=str(tmp_path / "again.safetensors")))
    collect(link, lambda e: isinstance(e, (P.CheckpointSaved, P.Error)))
    from engines.lib.checkpoint import read_resume_state

    assert read_resume_state(tmp_path / "again.safetensors").hyper_history == [(3, "beta", 1.25)]
    link.send(P.Train(steps=1))
    saved = collect(link, lambda e: isinstance(e, P.CheckpointSaved) and e.autosave)[-1]
    assert Path(saved.path) == folder / "model.safetensors"  # the run goes on in its own folder


def test_checkpoint_without_its_data_still_decodes(worker, tmp_path):
    link, *_ = worker
    npz = tmp_path / "tiny.npz"
    rng = np.random.default_rng(2)
    np.savez(npz, x=(rng.random((40, 8, 8)) > 0.5).astype(np.uint8) * 255)
    link.send(P.Configure(data=f"npz:{npz}", model="vae", latent_dim=2, batch_size=8))
    ready = collect(link, lambda e: isinstance(e, (P.Ready, P.Error)))[-1]
    assert isinstance(ready, P.Ready), ready
    ckpt = tmp_path / "tiny.safetensors"
    link.send(P.SaveCheckpoint(path=str(ckpt)))
    assert isinstance(collect(link, lambda e: isinstance(e, (P.CheckpointSaved, P.Error)))[-1], P.CheckpointSaved)
    npz.unlink()
    link.send(P.LoadCheckpoint(path=str(ckpt)))
    ready = collect(link, lambda e: isinstance(e, (P.Ready, P.Error)))[-1]
    assert isinstance(ready, P.Ready), ready
    assert "unavailable" in ready.data_summary and tuple(ready.data.shape) == (1, 8, 8)
    link.send(P.Decode(request_id=41, z=np.zeros((2, 2), np.float32)))
    dec = collect(link, lambda e: isinstance(e, (P.Decoded, P.Error)))[-1]
    assert isinstance(dec, P.Decoded) and dec.images.shape == (2, 1, 8, 8)
    link.send(P.Train(steps=1))
    err = collect(link, lambda e: isinstance(e, (P.Error, P.TrainingState)))[-1]
    assert isinstance(err, P.Error) and err.command == "Train"
    link.send(P.GetExamples(request_id=42, indices=[0]))
    err = collect(link, lambda e: isinstance(e, (P.Error, P.Examples)))[-1]
    assert isinstance(err, P.Error) and err.command == "GetExamples"


def test_shutdown_ends_the_process(tmp_path):
    with configured_worker(tmp_path) as link:  # its own worker: the module's one serves the other tests
        link.send(P.Shutdown())
        assert link.process.wait(20) == 0


def test_killed_worker_is_detected():
    link = WorkerLink(threads=1, device="cpu", connect_timeout=60)
    link.start()
    try:
        link.wait_for(P.Started, timeout=60)
        os.kill(link.pid, signal.SIGKILL)
        with pytest.raises(WorkerDied):
            for _ in range(100):
                link.recv(0.1)
    finally:
        link.kill()


def test_worker_exits_when_the_window_goes_away():
    link = WorkerLink(threads=1, device="cpu", connect_timeout=60)
    link.start()
    try:
        link.wait_for(P.Started, timeout=60)
        link.conn.close()  # the window vanished without a goodbye
        link.conn = None
        assert link.process.wait(20) == 0
    finally:
        link.kill()


def test_metrics_buffer_fills_missing_terms_with_nan():
    buf = MetricsBuffer()
    buf.add(10, {"recon": 1.0, "kl": 2.0})
    buf.add(11, {"recon": 0.5, "d_loss": 3.0})
    steps, names, values = buf.take()
    assert steps.dtype == np.int64 and steps.tolist() == [10, 11]
    assert names == ["recon", "kl", "d_loss"]
    assert values.dtype == np.float32 and values.shape == (2, 3)
    assert values[0].tolist()[:2] == [1.0, 2.0] and math.isnan(values[0, 2])
    assert math.isnan(values[1, 1]) and values[1, 2] == 3.0
    assert len(buf) == 0 and buf.take()[2].shape == (0, 0)


@pytest.fixture
def pixelcnn(worker) -> WorkerLink:
    """The module's worker hosting a tiny PixelCNN on binarised digits at 8x8 (step 0)."""
    link = worker[0]
    link.send(P.Configure(data="binarized:digits", model="pixelcnn", image_size=8, seed=1, batch_size=16,
                          options={"channels": 8, "layers": 1}))
    ready = collect(link, lambda e: isinstance(e, (P.Ready, P.Error)), timeout=60)[-1]
    assert isinstance(ready, P.Ready), getattr(ready, "message", ready)
    assert ready.capabilities.sampling == "autoregressive" and ready.latent.dim == 0
    grid = collect(link, lambda e: isinstance(e, P.Samples) and e.request_id == -1, timeout=60)[-1]
    assert grid.images.shape == (16, 1, 8, 8)  # a pixel-by-pixel model's grid: 16 seeded samples
    return link


def test_pixels_are_drawn_frame_by_frame_completed_and_scored(pixelcnn):
    link = pixelcnn
    link.send(P.DrawPixels(request_id=41, n=2, seed=0, frames=4))
    events = collect(link, lambda e: isinstance(e, (P.Error,)) or (isinstance(e, P.PixelFrame) and e.final))
    frames = of(events, P.PixelFrame)
    assert not of(events, P.Error) and [f.done for f in frames] == [16, 32, 48, 64]
    last = frames[-1]
    assert last.images.shape == (2, 1, 8, 8) and set(np.unique(last.images)) <= {0.0, 1.0} and last.drawn.all()
    assert frames[0].drawn.sum() == 16 and frames[0].drawn[:2].all() and not frames[0].drawn[2:].any()

    image = np.zeros((1, 1, 8, 8), np.float32)
    image[0, 0, :4, 2:6] = 1.0
    known = np.zeros((8, 8), bool)
    known[:4] = True
    link.send(P.DrawPixels(request_id=42, n=3, seed=1, image=image, known=known, frames=2))
    done = collect(link, lambda e: isinstance(e, P.Error) or (isinstance(e, P.PixelFrame) and e.final))[-1]
    assert isinstance(done, P.PixelFrame) and done.total == 32
    assert np.array_equal(done.images[:, :, :4], np.repeat(image[:, :, :4], 3, 0))

    link.send(P.PixelSurprise(request_id=43, index=0))
    s = collect(link, lambda e: isinstance(e, (P.PixelSurprised, P.Error)))[-1]
    assert isinstance(s, P.PixelSurprised), s
    assert s.log_probs.shape == (1, 8, 8) and (s.log_probs <= 0).all()
    assert s.nats == pytest.approx(float(s.log_probs.sum()), abs=1e-3)
    assert s.bits_per_dim == pytest.approx(-s.nats / (64 * math.log(2)), rel=1e-5)


def test_a_slow_drawing_stops_at_cancel_and_a_latent_model_refuses(pixelcnn):
    link = pixelcnn
    link.send(P.DrawPixels(request_id=51, n=1, seed=0, frames=64, delay_ms=200))
    first = collect(link, lambda e: isinstance(e, (P.PixelFrame, P.Error)))[-1]
    assert isinstance(first, P.PixelFrame) and not first.final
    link.send(P.Cancel(request_id=51))
    end = collect(link, lambda e: isinstance(e, P.Progress) and e.request_id == 51 and e.message == "cancelled")
    assert not [e for e in of(end, P.PixelFrame) if e.final]
    link.send(P.DrawPixels(request_id=52, n=65))
    err = collect(link, lambda e: isinstance(e, P.Error))[-1]
    assert err.command == "DrawPixels" and "n must be" in err.message

    configure(link)  # a VAE: nothing to draw pixel by pixel
    link.send(P.DrawPixels(request_id=53, n=1))
    err = collect(link, lambda e: isinstance(e, P.Error))[-1]
    assert err.command == "DrawPixels" and "pixel by pixel" in err.message


def test_a_flow_scores_images_and_finds_directions_in_its_exact_z(worker):
    link = worker[0]
    link.send(P.Configure(data="digits", model="nice", image_size=8, seed=0, batch_size=16,
                          options={"hidden": 16, "depth": 2}))
    ready = collect(link, lambda e: isinstance(e, (P.Ready, P.Error)), timeout=60)[-1]
    assert isinstance(ready, P.Ready) and ready.latent.shape == (1, 8, 8), getattr(ready, "message", ready)
    link.send(P.Score(request_id=61, indices=[0, 1, 2]))
    s = collect(link, lambda e: isinstance(e, (P.Scored, P.Error)))[-1]
    assert isinstance(s, P.Scored) and s.kind == "exact" and s.space == "8-bit", s
    np.testing.assert_allclose(s.bits_per_dim, -s.nats / (64 * math.log(2)), rtol=1e-5)
    assert (s.bits_per_dim > 0).all()

    link.send(P.FindDirections(request_id=62, method="pca", k=3, n_examples=60))
    found = collect(link, lambda e: isinstance(e, (P.DirectionsFound, P.Error)))[-1]
    assert isinstance(found, P.DirectionsFound), found
    d = found.directions
    assert d.shape == (3, 64) and found.n == 60 and found.names[0].startswith("PC1 (")
    np.testing.assert_allclose(d @ d.T, np.eye(3), atol=1e-4)  # orthonormal
    assert (np.diff(found.scales) <= 1e-6).all() and (found.scales > 0).all()  # by falling variance

    link.send(P.FindDirections(request_id=63, method="class", from_class=3, to_class=8))
    found = collect(link, lambda e: isinstance(e, (P.DirectionsFound, P.Error)))[-1]
    assert isinstance(found, P.DirectionsFound) and found.names == ["3 -> 8"] and found.directions.shape == (1, 64)
    link.send(P.FindDirections(request_id=64, method="class", from_class=3, to_class=3))
    err = collect(link, lambda e: isinstance(e, P.Error))[-1]
    assert err.command == "FindDirections" and "two different classes" in err.message

    configure(link)  # a VAE: a bound, on grey levels, so no bits/dim; directions in its posterior means
    link.send(P.Score(request_id=65, indices=[0]))
    s = collect(link, lambda e: isinstance(e, (P.Scored, P.Error)))[-1]
    assert isinstance(s, P.Scored) and s.kind == "elbo" and np.isnan(s.bits_per_dim).all() and s.nats[0] < 0
    link.send(P.FindDirections(request_id=66, k=2, n_examples=40))
    found = collect(link, lambda e: isinstance(e, (P.DirectionsFound, P.Error)))[-1]
    assert isinstance(found, P.DirectionsFound) and found.directions.shape == (2, 4), found
    assert found.source == "posterior means of 40 held-out images" and found.n == 40


def test_maps_nearest_neighbours_and_ganspace_directions_from_the_worker(worker):
    link = worker[0]
    configure(link)  # the 4-dim VAE on digits
    link.send(P.MapLatents(request_id=71, method="pca", n=60))
    m = collect(link, lambda e: isinstance(e, (P.LatentMapped, P.Error)), timeout=60)[-1]
    assert isinstance(m, P.LatentMapped), m
    assert m.xy.shape == (60, 2) and m.z.shape == (60, LATENT) and m.images.shape == (60, 1, SIZE, SIZE)
    assert m.images.dtype == np.uint8 and (m.indices >= 0).all() and (m.labels >= 0).all()
    assert m.class_names[:3] == ["0", "1", "2"] and "posterior means of 60" in m.source
    centred = m.z - m.z.mean(0)  # a PCA map is the projection on the top two components
    np.testing.assert_allclose(np.abs(m.xy).sum(), np.abs(centred @ np.linalg.svd(centred)[2][:2].T).sum(), rtol=1e-3)

    link.send(P.MapLatents(request_id=72, method="tsne", n=4000))  # the held-out split is smaller: all of it
    link.send(P.Cancel(request_id=72))
    end = collect(link, lambda e: getattr(e, "request_id", None) == 72 and isinstance(e, (P.Progress, P.Error,
                  P.LatentMapped)) and (not isinstance(e, P.Progress) or e.message == "cancelled"), timeout=60)[-1]
    assert isinstance(end, P.Progress) and end.message == "cancelled", end

    link.send(P.FindNearest(request_id=73, z=m.z[0], k=4))
    near = collect(link, lambda e: isinstance(e, (P.NearestFound, P.Error)), timeout=60)[-1]
    assert isinstance(near, P.NearestFound), near
    assert near.pixel_images.shape == (4, 1, SIZE, SIZE) and (np.diff(near.pixel_distances) >= 0).all()
    d = np.linalg.norm((near.pixel_images - near.image).reshape(4, -1), axis=1)
    np.testing.assert_allclose(d, near.pixel_distances, rtol=1e-4)
    assert near.latent_images.shape == (4, 1, SIZE, SIZE) and near.n > 100

    link.send(P.Configure(data="digits", model="gan", image_size=SIZE, latent_dim=LATENT, seed=0, batch_size=16))
    assert isinstance(collect(link, lambda e: isinstance(e, (P.Ready, P.Error)), timeout=60)[-1], P.Ready)
    link.send(P.FindDirections(request_id=74, method="pca", k=2, n_examples=300))
    found = collect(link, lambda e: isinstance(e, (P.DirectionsFound, P.Error)), timeout=60)[-1]
    assert isinstance(found, P.DirectionsFound) and found.directions.shape == (2, LATENT), found
    assert "first layer" in found.source and found.n == 300
    link.send(P.Train(steps=200))  # an untrained generator draws one blur: one class for every z
    collect(link, lambda e: isinstance(e, P.Stopped), timeout=120)
    link.send(P.MapLatents(request_id=77, n=50))  # prior draws, coloured by what the classifier sees in them
    m = collect(link, lambda e: isinstance(e, (P.LatentMapped, P.Error)), timeout=120)[-1]
    assert isinstance(m, P.LatentMapped) and (m.indices == -1).all() and (m.labels >= 0).all(), m
    assert "draws from the prior" in m.source and "classifier" in m.source
    a, b = np.argsort(np.bincount(m.labels, minlength=10))[::-1][:2]  # the classes the draws show most
    link.send(P.FindDirections(request_id=75, method="class", from_class=int(a), to_class=int(b), n_examples=400))
    found = collect(link, lambda e: isinstance(e, (P.DirectionsFound, P.Error)), timeout=60)[-1]
    assert isinstance(found, P.DirectionsFound) and found.names == [f"{a} -> {b}"], found  # draws, as classified
    assert "classed by the studio's classifier" in found.source
    link.send(P.FindDirections(request_id=78, method="attribute", factor="x"))
    err = collect(link, lambda e: isinstance(e, P.Error), timeout=60)[-1]
    assert err.command == "FindDirections" and "no encoder" in err.message
    link.send(P.FindNearest(request_id=76, z=np.zeros(LATENT, np.float32)))
    near = collect(link, lambda e: isinstance(e, (P.NearestFound, P.Error)), timeout=60)[-1]
    assert isinstance(near, P.NearestFound) and near.latent_images is None and len(near.pixel_indices) == 8
