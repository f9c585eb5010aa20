"""The worker's job thread (engines.worker.jobs) driven through the real worker process.

One worker serves the module: first a 4-dim VAE on digits at 16x16 (exports: file, sidecar,
byte-identical re-render, cancel), then a GAN on the same data (an Encode without an encoder goes
through projection, with Progress and Cancel, while slider decodes keep being answered).
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from engines.shared import protocol as P
from engines.worker.jobs import CANCELLED, Job, Jobs
from workers import LATENT, SIZE, collect, configured_worker, wait

KEYS = [[-2.0, 1.0, 0.0, 0.5], [0.5, -1.5, 2.0, 0.0], [2.0, 2.0, -1.0, -2.0]]
SETTINGS = {"fps": 12, "size": 32, "resample": "nearest", "labels": False}


def _ends(rid: int):  # noqa: ANN202
    return lambda e: (getattr(e, "request_id", None) == rid and isinstance(e, (P.Exported, P.Encoded))) or (
        isinstance(e, P.Progress) and e.request_id == rid and e.message == CANCELLED) or isinstance(e, P.Error)


@pytest.fixture(scope="module")
def link(tmp_path_factory):
    with configured_worker(tmp_path_factory.mktemp("studio-home")) as link:
        yield link


# -- the job queue alone (no process) ------------------------------------------------------------


def test_jobs_run_in_order_throttle_progress_and_cancel():
    sent: list[P.Event] = []
    lock = threading.Event()

    def slow(job: Job) -> P.Event:
        for i in range(200):
            job.progress(i + 1, 200)
            if job.cancel.is_set():
                return P.Exported(request_id=job.request_id, path="never")
            time.sleep(0.002)
        lock.set()
        return P.Exported(request_id=job.request_id, path="done")

    jobs = Jobs(sent.append)
    try:
        jobs.submit(1, "Export", "export", slow)
        jobs.submit(2, "Export", "export", slow)
        jobs.submit(3, "Export", "export", lambda job: 1 / 0)
        assert jobs.cancel(2)  # queued: removed at once
        assert not jobs.cancel(99)
        deadline = time.monotonic() + 10
        while jobs.busy() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        jobs.close()
    progress1 = [e for e in sent if isinstance(e, P.Progress) and e.request_id == 1]
    assert progress1[-1].done == 200 and len(progress1) < 20  # 0.4 s of work: ~4 events, never 200
    assert [e.request_id for e in sent if isinstance(e, P.Exported)] == [1]
    assert any(isinstance(e, P.Progress) and e.request_id == 2 and e.message == CANCELLED for e in sent)
    err = [e for e in sent if isinstance(e, P.Error)]
    assert len(err) == 1 and "ZeroDivisionError" in err[0].message and err[0].command == "Export"


# -- exports -------------------------------------------------------------------------------------


def _export(link, rid: int, out, frames: int = 8, settings=None):  # noqa: ANN001, ANN202
    link.send(P.Export(request_id=rid, kind="interpolation", out=str(out),
                       latents={"keyframes": KEYS, "method": "slerp", "frames": frames, "constant_speed": False},
                       settings=dict(settings or SETTINGS)))
    return collect(link, _ends(rid), timeout=60)


def _new_weights(link) -> None:  # noqa: ANN001
    """One training step, so that no checkpoint of the current weights exists (whatever ran before)."""
    link.send(P.Train(steps=1))
    wait(link, lambda e: isinstance(e, P.Stopped), timeout=60)


def test_export_writes_file_and_sidecar_and_render_is_byte_identical(link, tmp_path):
    from engines.lib.export import read_sidecar, render
    from engines.shared.media import read_frame_count

    _new_weights(link)
    out = tmp_path / "path.gif"
    events = _export(link, 10, out)
    done = events[-1]
    assert isinstance(done, P.Exported), getattr(done, "message", done)
    assert done.path == str(out) and out.is_file() and done.frames == 8 and done.seconds > 0
    assert done.sidecar == str(out) + ".json"
    assert read_frame_count(out) == 8
    progress = [e for e in events if isinstance(e, P.Progress) and e.request_id == 10]
    assert progress and all(e.task == "export" for e in progress)
    side = read_sidecar(done.sidecar)
    assert side["kind"] == "interpolation" and side["output"] == "path.gif"
    ckpt = tmp_path / "path.gif.safetensors"
    assert ckpt.is_file()  # the weights were saved beside the output
    assert side["checkpoint"]["path"] in ("path.gif.safetensors", str(ckpt))  # and the sidecar (not a manifest) is there
    again = render(done.sidecar, tmp_path / "again.gif")
    assert again.read_bytes() == out.read_bytes()

    # the weights did not change: a second export reuses that checkpoint instead of writing another
    events = _export(link, 11, tmp_path / "other.png")
    assert isinstance(events[-1], P.Exported), getattr(events[-1], "message", events[-1])
    assert not (tmp_path / "other.png.safetensors").exists()
    side = json.loads((tmp_path / "other.png.json").read_text())
    assert side["checkpoint"]["path"] in ("path.gif.safetensors", str(ckpt))


def test_traversal_mp4_export(link, tmp_path):
    from engines.shared.media import read_frame_count

    out = tmp_path / "sweep.mp4"
    link.send(P.Export(request_id=15, kind="traversal", out=str(out),
                       latents={"z": [0.0] * LATENT, "index": None, "dims": [0, 2], "steps": 5, "low": -2.0, "high": 2.0},
                       settings={"fps": 4, "size": 64, "resample": "nearest", "labels": True}))
    done = collect(link, _ends(15), timeout=60)[-1]
    assert isinstance(done, P.Exported), getattr(done, "message", done)
    assert done.frames == 5 and read_frame_count(out) == 5 and (tmp_path / "sweep.mp4.json").is_file()


def test_export_cancel_leaves_no_file(link, tmp_path):
    _new_weights(link)  # the export must save the weights first: the Cancel lands while it does
    out = tmp_path / "long.gif"
    link.send(P.Export(request_id=20, kind="interpolation", out=str(out),
                       latents={"keyframes": KEYS, "method": "spline", "frames": 1024, "constant_speed": True},
                       settings={"fps": 24, "size": 256, "resample": "lanczos", "labels": False}))
    link.send(P.Cancel(request_id=20))  # right behind it: the job has at most begun saving the weights
    end = collect(link, _ends(20), timeout=60)[-1]
    assert isinstance(end, P.Progress) and end.message == CANCELLED, end
    assert not out.exists() and not any(p.name.startswith("long.gif") for p in tmp_path.iterdir())


def test_export_while_training_saves_between_steps(link, tmp_path):
    link.send(P.Train(steps=None))
    wait(link, lambda e: isinstance(e, P.StepMetrics), timeout=60)
    try:
        events = _export(link, 25, tmp_path / "live.png")
        assert isinstance(events[-1], P.Exported), getattr(events[-1], "message", events[-1])
        assert (tmp_path / "live.png.safetensors").is_file()  # weights changed since the last save: a new checkpoint
        side = json.loads((tmp_path / "live.png.json").read_text())
        assert side["checkpoint"]["path"] in ("live.png.safetensors", str(tmp_path / "live.png.safetensors"))
    finally:
        link.send(P.Stop())
        wait(link, lambda e: isinstance(e, P.Stopped), timeout=60)


@pytest.mark.parametrize("out, words", [("x.bmp", ".bmp"), ("", "output path"), ("no/such/dir/x.gif", "does not exist")])
def test_bad_export_is_an_error(link, tmp_path, out, words):
    path = str(tmp_path / out) if out else ""
    end = _export(link, 30, path)[-1]
    assert isinstance(end, P.Error) and end.command == "Export" and words in end.message, end


# -- projection for a model without an encoder ---------------------------------------------------


@pytest.fixture(scope="module")
def gan(link):
    link.send(P.Configure(data="digits", model="gan", image_size=SIZE, latent_dim=LATENT, seed=1, batch_size=32))
    ready = wait(link, lambda e: isinstance(e, (P.Ready, P.Error)), timeout=60)
    assert isinstance(ready, P.Ready) and not ready.capabilities.has_encoder, ready
    return link


def test_gan_encode_goes_through_projection(gan):
    gan.send(P.Encode(request_id=40, view="interpolate", indices=[0, 1], split="test", project_steps=12))
    events = collect(gan, _ends(40), timeout=60)
    enc = events[-1]
    assert isinstance(enc, P.Encoded), getattr(enc, "message", enc)
    assert enc.view == "interpolate" and enc.z.shape == (2, LATENT) and enc.images.shape == (2, 1, SIZE, SIZE)
    assert np.isfinite(enc.z).all()
    progress = [e for e in events if isinstance(e, P.Progress) and e.request_id == 40]
    assert progress and {e.task for e in progress} == {"project"} and progress[-1].done == 12


def test_decodes_flow_while_a_projection_runs_and_cancel_stops_it(gan):
    gan.send(P.Encode(request_id=50, view="interpolate", indices=[2], project_steps=20000))
    wait(gan, lambda e: isinstance(e, P.Progress) and e.request_id == 50, timeout=60)
    z = np.zeros((1, LATENT), np.float32)
    for rid in (51, 52, 53):  # slider decodes are answered while the projection runs
        gan.send(P.Decode(request_id=rid, view="explore", z=z + rid / 100))
        dec = wait(gan, lambda e, r=rid: isinstance(e, (P.Decoded, P.Encoded, P.Error)) and getattr(e, "request_id", r) == r,
                   timeout=30)
        assert isinstance(dec, P.Decoded) and dec.images.shape == (1, 1, SIZE, SIZE), dec
    gan.send(P.Cancel(request_id=50))
    end = collect(gan, _ends(50), timeout=60)[-1]
    assert isinstance(end, P.Progress) and end.message == CANCELLED and end.done < 20000, end


def test_bad_project_steps_is_an_error(gan):
    gan.send(P.Encode(request_id=60, indices=[0], project_steps=-1))
    end = collect(gan, _ends(60), timeout=30)[-1]
    assert isinstance(end, P.Error) and end.command == "Encode" and "project_steps" in end.message, end
