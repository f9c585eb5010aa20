"""The Interpolate tab driven by synthetic events (offscreen, fast): keyframes, strip, playback, exports."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageSequence

from engines import protocol
from fakes import FakeClient
from engines.data.base import DataInfo
from engines.spec import LatentDim, LatentSpec
from studio.panels.interpolate import path_frames, strip_picture, write_gif
from studio.state import prior_draw

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

IMAGES = DataInfo(spec="test", kind="image", shape=(1, 8, 8), size=64, n_train=56, n_test=8)
POINTS = DataInfo(spec="ring", kind="points", shape=(2,), size=100, n_train=80, n_test=20,
                  modes=((1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)))
D = 4


def _FakeClient() -> FakeClient:
    return FakeClient(last_checkpoint="/runs/vae/model.safetensors")


def interpolated(command: protocol.Interpolate, step: int = 7) -> protocol.Interpolated:
    """A synthetic answer: frame f is filled with f / F."""
    f = command.frames
    images = np.ones((f, 1, 8, 8), np.float32) * (np.arange(f, dtype=np.float32) / f)[:, None, None, None]
    return protocol.Interpolated(request_id=command.request_id, step=step,
                                 z=np.zeros((f, D), np.float32), images=images)


def make_window(qtbot, info: DataInfo, dim: int = D):
    from studio.window import MainWindow

    client = _FakeClient()
    w = MainWindow(client=client)
    qtbot.addWidget(w)
    client.ready.emit(protocol.Ready(model="vae", family="vae", data=info.to_json(), has_encoder=True,
                                     latent=LatentSpec.gaussian(dim).to_json(), step=7))
    return w, client


@pytest.fixture
def window(qtbot):
    w, client = make_window(qtbot, IMAGES)
    yield w, client
    w.close()


def test_keyframes_add_remove_and_render(window, qtbot) -> None:
    w, client = window
    view = w.interpolate_view
    assert w.central_tabs.tabText(2) == "Interpolate"
    assert w.request_interpolation() == 0  # fewer than two keyframes: nothing to send
    w.explore_panel.set_z(np.array([0.5, -1.0, 0.0, 2.0]))
    view.sliders_button.click()
    view.random_button.click()
    np.testing.assert_allclose(w.explore_panel.z(), [0.5, -1.0, 0.0, 2.0])  # the sliders did not move
    assert w.add_keyframe(np.array([1.0, 1.0, 1.0, 1.0]), "ones") == 2
    assert [view.key_list.item(i).text() for i in range(3)] == ["1. current sliders", "2. random", "3. ones"]
    np.testing.assert_allclose(view.keyframes()[0], [0.5, -1.0, 0.0, 2.0])
    with pytest.raises(ValueError):
        w.add_keyframe(np.zeros(3), "wrong width")
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


def test_strip_playback_and_exports(window, qtbot, tmp_path) -> None:
    w, client = window
    view = w.interpolate_view
    w.add_keyframe(np.zeros(D), "a")
    w.add_keyframe(np.ones(D), "b")
    view.frames_spin.setValue(10)
    rid = w.request_interpolation()
    cmd = client.of(protocol.Interpolate)[-1]
    assert cmd.request_id == rid and cmd.frames == 10 and cmd.keyframes.shape == (2, D)
    with pytest.raises(ValueError):
        w.export_gif(tmp_path / "none.gif")
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
    # GIF: 10 frames, ~256 px, 20 ms each, looping; a JSON sidecar with the keyframes
    path = tmp_path / "path.gif"
    with qtbot.waitSignal(w.exported, timeout=5000):
        w.export_gif(path)
    gif = Image.open(path)
    assert gif.size == (256, 256) and gif.info.get("loop") == 0 and gif.info.get("duration") == 20
    assert sum(1 for _ in ImageSequence.Iterator(gif)) == 10
    meta = json.loads((tmp_path / "path.gif.json").read_text())
    assert meta["keyframes"] == [[0.0] * D, [1.0] * D] and meta["method"] == "slerp" and meta["frames"] == 10
    assert meta["fps"] == 50 and meta["model"] == "vae" and meta["step"] == 7
    assert meta["checkpoint"] == "/runs/vae/model.safetensors" and meta["constant_speed"] is False
    # strip PNG
    with qtbot.waitSignal(w.exported, timeout=5000):
        w.export_strip(tmp_path / "strip.png")
    png = Image.open(tmp_path / "strip.png")
    assert png.width > 2 * png.height and png.width % (10 * 9 - 1) == 0
    assert json.loads((tmp_path / "strip.png.json").read_text())["keyframes"][1] == [1.0] * D


def test_points_path_over_modes(qtbot, tmp_path) -> None:
    w, client = make_window(qtbot, POINTS, dim=2)
    view = w.interpolate_view
    w.add_keyframe(np.array([1.0, 0.0]), "a")
    w.add_keyframe(np.array([-1.0, 0.0]), "b")
    rid = w.request_interpolation()
    pts = np.stack([np.linspace(1, -1, 24), np.zeros(24)], axis=1).astype(np.float32)
    client.interpolated.emit(protocol.Interpolated(request_id=rid, step=3, z=pts, images=pts))
    assert view.n_frames() == 24 and view.strip_item.image.shape == (384, 384, 3)
    red = (view.strip_item.image[..., 0] == 1) & (view.strip_item.image[..., 1] == 0)
    assert red.sum() >= 4 * 13  # four mode crosses
    with qtbot.waitSignal(w.exported, timeout=5000):
        w.export_gif(tmp_path / "points.gif")
    frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(Image.open(tmp_path / "points.gif"))]
    assert len(frames) == 24 and not np.array_equal(frames[0], frames[-1])  # the point moves
    w.close()


def test_helpers() -> None:
    spec = LatentSpec((LatentDim("z0"), LatentDim("c0", "categorical", group="c"),
                       LatentDim("c1", "categorical", group="c"), LatentDim("u", "uniform", -1, 1)))
    z = prior_draw(spec, np.random.default_rng(0))
    assert z.shape == (4,) and z[1] + z[2] == 1.0 and set(z[1:3]) == {0.0, 1.0} and -1 <= z[3] <= 1
    assert strip_picture(np.zeros((30, 3, 4, 4), np.float32)).shape == (3, 3 * 5 - 1, 12 * 5 - 1)
    assert len(path_frames(np.zeros((5, 2), np.float32), size=32)) == 5
    with pytest.raises(ValueError):
        write_gif(np.zeros((3, 2, 4, 4), np.float32), "/nonexistent/x.gif", 10)
