"""The Interpolate tab driven by synthetic events (offscreen, fast): keyframes, strip, playback, exports.

Each test builds the Interpolate feature (and, for the shared export jobs, the Traversal feature) alone
on a fake client; the slider point reaching it from Explore is tested in test_shell_wiring.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from engines.shared import protocol
from fakes import FakeClient, caps
from engines.shared.datainfo import DataInfo
from engines.shared.spec import LatentDim, LatentSpec
from studio.features.interpolate.controller import InterpolateController
from studio.features.interpolate.state import write_path_latents
from studio.features.traversal.controller import TraversalController
from studio.features.interpolate.view import path_frames, strip_picture
from studio.services import Services
from engines.shared.latent_np import prior_draw

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

IMAGES = DataInfo(spec="test", kind="image", shape=(1, 8, 8), size=64, n_train=56, n_test=8)
POINTS = DataInfo(spec="ring", kind="points", shape=(2,), size=100, n_train=80, n_test=20,
                  modes=((1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)))
D = 4


def interpolated(command: protocol.Interpolate, step: int = 7) -> protocol.Interpolated:
    """A synthetic answer: frame f is filled with f / F."""
    f = command.frames
    images = np.ones((f, 1, 8, 8), np.float32) * (np.arange(f, dtype=np.float32) / f)[:, None, None, None]
    return protocol.Interpolated(request_id=command.request_id, step=step,
                                 z=np.zeros((f, D), np.float32), images=images)


@pytest.fixture
def services():
    client = FakeClient(last_checkpoint="/runs/vae/model.safetensors")
    s = Services(client)
    yield s, client
    s.close()


@pytest.fixture
def make(qtbot, services):
    """Build an InterpolateController alone and make a model ready: ``make(info, dim, encoder)``."""
    s, client = services

    def build(info: DataInfo = IMAGES, dim: int = D, encoder: bool = True):
        interpolation = InterpolateController(s)
        qtbot.addWidget(interpolation.view)
        client.ready.emit(protocol.Ready(model="vae" if encoder else "gan", family="vae" if encoder else "gan",
                                         data=info, capabilities=caps(encoder), latent=LatentSpec.gaussian(dim),
                                         step=7))
        return interpolation, client

    return build


@pytest.fixture
def interp(make):
    return make()


def test_keyframes_add_remove_and_render(interp, qtbot) -> None:
    interpolation, client = interp
    view = interpolation.view
    assert interpolation.request_interpolation() == 0  # fewer than two keyframes: nothing to send
    interpolation.set_point(np.array([0.5, -1.0, 0.0, 2.0]))  # the Explore sliders (the shell feeds them in)
    view.sliders_button.click()
    view.random_button.click()
    np.testing.assert_allclose(interpolation.point, [0.5, -1.0, 0.0, 2.0])  # the slider point did not move
    assert interpolation.add_keyframe(np.array([1.0, 1.0, 1.0, 1.0]), "ones") == 2
    assert [view.key_list.item(i).text() for i in range(3)] == ["1. current sliders", "2. random", "3. ones"]
    np.testing.assert_allclose(view.keyframes()[0], [0.5, -1.0, 0.0, 2.0])
    with pytest.raises(ValueError):
        interpolation.add_keyframe(np.zeros(3), "wrong width")
    view.remove_keyframe(1)
    assert view.key_list.count() == 2 and view.key_list.item(1).text() == "2. ones"
    assert client.decodes[-1][0] == "interpolate-keys" and client.decodes[-1][1].shape == (2, D)
    client.decoded.emit(protocol.Decoded(request_id=1, view="interpolate-keys", images=np.full((2, 1, 8, 8), 0.5, np.float32)))
    assert not view.key_list.item(0).icon().isNull()
    # held-out keyframe through the Encode path
    view.example_spin.setValue(3)
    view.example_button.click()
    enc = client.of(protocol.Encode)[-1]
    assert enc.view == "interpolate" and enc.indices == [3]
    client.encoded.emit(protocol.Encoded(request_id=enc.request_id, view="interpolate",
                                         z=np.full((1, D), 0.25, np.float32), images=np.zeros((1, 1, 8, 8), np.float32)))
    assert view.key_list.item(2).text() == "3. held-out #3"
    # settings change: one condensed automatic render
    n = len(client.of(protocol.Interpolate))
    view.method_combo.setCurrentText("spline")
    view.frames_spin.setValue(30)
    view.speed_check.setChecked(True)
    qtbot.waitUntil(lambda: len(client.of(protocol.Interpolate)) > n, timeout=3000)
    qtbot.wait(400)
    assert len(client.of(protocol.Interpolate)) == n + 1
    cmd = client.of(protocol.Interpolate)[-1]
    assert (cmd.method, cmd.frames, cmd.constant_speed) == ("spline", 30, True)
    np.testing.assert_allclose(cmd.keyframes, view.keyframes())
    view.clear_keyframes()
    assert view.key_list.count() == 0 and view.keyframes().shape == (0, D)


def test_strip_playback_and_exports(interp, qtbot, tmp_path) -> None:
    interpolation, client = interp
    view = interpolation.view
    exported = interpolation.services.exported
    interpolation.add_keyframe(np.zeros(D), "a")
    interpolation.add_keyframe(np.ones(D), "b")
    view.frames_spin.setValue(10)
    rid = interpolation.request_interpolation()
    cmd = client.of(protocol.Interpolate)[-1]
    assert cmd.request_id == rid and cmd.frames == 10 and cmd.keyframes.shape == (2, D)
    with pytest.raises(ValueError):
        interpolation.export_latents(tmp_path / "none.npy")
    client.interpolated.emit(interpolated(cmd))
    assert view.n_frames() == 10
    assert view.strip_item.image.shape == (8, 10 * 9 - 1)  # one row of 10 tiles, 1-pixel gaps
    assert view.strip_item.image[0, 9 * 9] == pytest.approx(0.9)
    assert view.preview_item.image[0, 0] == pytest.approx(0.0)
    client.interpolated.emit(protocol.Interpolated(request_id=rid - 1, images=np.zeros((3, 1, 8, 8), np.float32)))
    assert view.n_frames() == 10  # a stale answer is not shown
    view.fps_spin.setValue(50)
    view.play_button.click()
    assert view.play_button.text() == "Pause" and view.play_timer.interval() == 20
    qtbot.waitUntil(lambda: view.frame >= 3, timeout=3000)
    assert view.preview_item.image[0, 0] == pytest.approx(view.frame / 10)
    view.play_button.click()
    assert not view.play_timer.isActive() and view.play_button.text() == "Play"
    # GIF, MP4, strip: Export commands for the worker, with the path's settings
    rid = interpolation.export_gif(tmp_path / "path.gif")
    cmd = client.of(protocol.Export)[-1]
    assert cmd.request_id == rid and cmd.kind == "interpolation" and cmd.out == str(tmp_path / "path.gif")
    assert cmd.latents == {"keyframes": [[0.0] * D, [1.0] * D], "method": "slerp", "frames": 10,
                           "constant_speed": False}
    assert cmd.settings == {"fps": 50, "size": 256, "resample": "nearest", "labels": False}
    job = view.job
    assert not job.isHidden() and job.request_id == rid and job.bar.maximum() == 0  # busy until progress
    client.progress.emit(protocol.Progress(task="export", done=3, total=11, request_id=rid))
    client.progress.emit(protocol.Progress(task="export", done=9, total=11, request_id=rid + 100))  # not ours
    assert job.bar.maximum() == 11 and job.bar.value() == 3
    with qtbot.waitSignal(exported, timeout=2000) as sig:
        client.exported.emit(protocol.Exported(request_id=rid, path=cmd.out, sidecar=cmd.out + ".json", frames=10))
    assert sig.args == [cmd.out] and job.isHidden()
    # MP4, then Cancel: the worker's "cancelled" Progress ends the job
    rid = interpolation.export_mp4(tmp_path / "path.mp4")
    assert client.of(protocol.Export)[-1].out.endswith("path.mp4") and job.request_id == rid
    job.cancel_button.click()
    assert client.of(protocol.Cancel)[-1] == protocol.Cancel(request_id=rid) and not job.cancel_button.isEnabled()
    client.progress.emit(protocol.Progress(task="export", done=2, total=11, message="cancelled", request_id=rid))
    assert job.isHidden() and job.request_id == 0
    # strip, then a failure reported by the worker
    rid = interpolation.export_strip(tmp_path / "strip.png")
    assert client.of(protocol.Export)[-1].out.endswith("strip.png") and not job.isHidden()
    client.error.emit(protocol.Error(message="disk full", command="Export"))
    assert job.isHidden()
    with pytest.raises(ValueError, match="export to"):
        interpolation.export(tmp_path / "x.bmp")
    # the path's latents: .npy and .json, written on the export thread
    with qtbot.waitSignal(exported, timeout=5000):
        interpolation.export_latents(tmp_path / "path.npy")
    z = np.load(tmp_path / "path.npy", allow_pickle=False)
    assert z.shape == (10, D) and z.dtype == np.float32
    meta = json.loads((tmp_path / "path.json").read_text())
    assert meta["keyframes"] == [[0.0] * D, [1.0] * D] and meta["method"] == "slerp" and meta["frames"] == 10
    assert meta["fps"] == 50 and meta["model"] == "vae" and meta["step"] == 7 and len(meta["z"]) == 10
    assert meta["checkpoint"] == "/runs/vae/model.safetensors" and meta["constant_speed"] is False


def test_path_rerenders_while_training(interp, qtbot) -> None:
    interpolation, client = interp
    view = interpolation.view
    interpolation.add_keyframe(np.zeros(D), "a")
    interpolation.add_keyframe(np.ones(D), "b")
    view.show()
    qtbot.waitUntil(lambda: view.isVisible(), timeout=2000)
    before = len(client.of(protocol.Interpolate))
    grid = protocol.Samples(request_id=-1, step=50, images=np.zeros((4, 1, 8, 8), np.float32))
    client.samples.emit(grid)
    assert len(client.of(protocol.Interpolate)) == before  # not training: nothing
    client.state = "training"
    client.samples.emit(grid)
    assert len(client.of(protocol.Interpolate)) == before + 1
    client.samples.emit(grid)  # within 2 s: throttled
    assert len(client.of(protocol.Interpolate)) == before + 1
    interpolation._live_at -= 2.5
    view.hide()  # another tab: the path is not visible
    client.samples.emit(grid)
    assert len(client.of(protocol.Interpolate)) == before + 1


def test_points_path_over_modes(make, tmp_path) -> None:
    interpolation, client = make(POINTS, dim=2)
    view = interpolation.view
    interpolation.add_keyframe(np.array([1.0, 0.0]), "a")
    interpolation.add_keyframe(np.array([-1.0, 0.0]), "b")
    rid = interpolation.request_interpolation()
    pts = np.stack([np.linspace(1, -1, 24), np.zeros(24)], axis=1).astype(np.float32)
    client.interpolated.emit(protocol.Interpolated(request_id=rid, step=3, z=pts, images=pts))
    assert view.n_frames() == 24 and view.strip_item.image.shape == (384, 384, 3)
    red = (view.strip_item.image[..., 0] == 1) & (view.strip_item.image[..., 1] == 0)
    assert red.sum() >= 4 * 13  # four mode crosses
    interpolation.export_gif(tmp_path / "points.gif")
    cmd = client.of(protocol.Export)[-1]
    assert cmd.latents["keyframes"] == [[1.0, 0.0], [-1.0, 0.0]] and cmd.out.endswith("points.gif")


def test_helpers() -> None:
    spec = LatentSpec((LatentDim("z0"), LatentDim("c0", "categorical", group="c"),
                       LatentDim("c1", "categorical", group="c"), LatentDim("u", "uniform", -1, 1)))
    z = prior_draw(spec, np.random.default_rng(0))
    assert z.shape == (4,) and z[1] + z[2] == 1.0 and set(z[1:3]) == {0.0, 1.0} and -1 <= z[3] <= 1
    assert strip_picture(np.zeros((30, 3, 4, 4), np.float32)).shape == (3, 3 * 5 - 1, 12 * 5 - 1)
    assert len(path_frames(np.zeros((5, 2), np.float32), size=32)) == 5
    with pytest.raises(ValueError):
        write_path_latents(np.zeros(3, np.float32), "/nonexistent/x.npy", {})


def test_traversal_animation_export_shares_the_export_jobs(qtbot, services, tmp_path) -> None:
    """The Traversal tab's GIF/MP4 go to the worker as Export "traversal"; both tabs' jobs share one queue."""
    s, client = services
    traversal = TraversalController(s)
    qtbot.addWidget(traversal.view)
    interpolation = InterpolateController(s)
    qtbot.addWidget(interpolation.view)
    client.ready.emit(protocol.Ready(model="vae", family="vae", data=IMAGES, capabilities=caps(True),
                                     latent=LatentSpec.gaussian(D), step=7))
    traversal.set_rows(list(range(D)), [f"z{d}" for d in range(D)])  # what Explore feeds in through the shell
    traversal.set_point(np.zeros(D, np.float32))
    traversal.view.set_base("sliders")
    rid = traversal.export_animation(tmp_path / "sweep.mp4")
    cmd = client.of(protocol.Export)[-1]
    assert cmd.request_id == rid and cmd.kind == "traversal" and cmd.out.endswith("sweep.mp4")
    assert cmd.latents["dims"] == traversal.rows.dims == list(range(D))
    assert len(cmd.latents["z"]) == D and cmd.latents["index"] is None
    assert cmd.latents["steps"] == 9 and cmd.latents["low"] == -3.0 and cmd.latents["high"] == 3.0
    assert cmd.settings["labels"] is True and not traversal.view.job.isHidden()
    interpolation.add_keyframe(np.zeros(D), "a")
    interpolation.add_keyframe(np.ones(D), "b")
    rid2 = interpolation.export_gif(tmp_path / "path.gif")
    client.error.emit(protocol.Error(message="no space", command="Export"))  # the oldest job failed: the sweep
    assert traversal.view.job.isHidden() and not interpolation.view.job.isHidden()
    traversal.view.job.cancel_button.click()  # nothing shown there any more: no Cancel sent
    assert not client.of(protocol.Cancel)
    interpolation.view.job.cancel_button.click()
    assert client.of(protocol.Cancel) == [protocol.Cancel(request_id=rid2)]
    with pytest.raises(ValueError, match=".gif or .mp4"):
        traversal.export_animation(tmp_path / "sweep.png")


def test_projection_of_a_held_out_example_shows_progress(make) -> None:
    """A model without an encoder: "Add held-out #" still works; the worker's projection shows progress."""
    interpolation, client = make(encoder=False)
    view, job = interpolation.view, interpolation.view.job
    assert view.example_button.isEnabled()
    rid = interpolation.add_example(3)
    assert rid and job.request_id == rid and "Projecting" in job.label.text() and not job.isHidden()
    client.progress.emit(protocol.Progress(task="project", done=50, total=200, request_id=rid))
    assert job.bar.maximum() == 200 and job.bar.value() == 50
    job.cancel_button.click()
    assert client.of(protocol.Cancel) == [protocol.Cancel(request_id=rid)]
    client.progress.emit(protocol.Progress(task="project", done=60, total=200, message="cancelled", request_id=rid))
    assert job.isHidden() and view.key_list.count() == 0
    rid = interpolation.add_example(4)
    client.encoded.emit(protocol.Encoded(request_id=rid, view="interpolate", z=np.ones((1, D), np.float32)))
    assert job.isHidden() and view.key_list.count() == 1 and "held-out #4" in view.keys[0][1]
