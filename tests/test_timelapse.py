"""The training time-lapse (studio.features.timelapse), built alone on a fake client and fed synthetic Samples events (offscreen, fast)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageSequence

from engines.shared import protocol
from engines.shared.datainfo import DataInfo
from engines.shared.media import read_frame_count
from engines.shared.spec import LatentSpec
from fakes import FakeClient, caps
from studio.features.timelapse.controller import TimeLapse
from studio.features.timelapse.state import grid_frame
from studio.services import Services

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

IMAGES = DataInfo(spec="test", kind="image", shape=(1, 8, 8), size=64, n_train=56, n_test=8)


def grid(step: int, value: float | None = None, request_id: int = -1) -> protocol.Samples:
    v = (step % 256) / 255 if value is None else value
    return protocol.Samples(request_id=request_id, step=step, images=np.full((4, 1, 8, 8), v, np.float32))


@pytest.fixture
def services():
    client = FakeClient()
    s = Services(client)
    yield s, client
    s.close()


@pytest.fixture
def make(services):
    """Build a TimeLapse keeping at most ``cap`` frames and make a model ready: ``make(cap)``."""
    s, client = services

    def build(cap: int | None = None):
        lapse = TimeLapse(s) if cap is None else TimeLapse(s, cap=cap)
        client.ready.emit(protocol.Ready(model="vae", family="vae", data=IMAGES, capabilities=caps(True),
                                         latent=LatentSpec.gaussian(4), step=0, data_summary="test: 64"))
        return lapse, client

    return build


def test_keeps_fixed_z_grids_and_thins_evenly(make) -> None:
    lapse, client = make(cap=10)
    client.samples.emit(grid(0))
    client.samples.emit(grid(5, request_id=3))  # a Sample answer, not the training grid
    assert lapse.steps == [0] and lapse.frames[0].shape == (1, 17, 17) and lapse.frames[0].dtype == np.uint8
    client.samples.emit(grid(0, 1.0))  # same step again: replaces
    assert lapse.steps == [0] and lapse.frames[0][0, 0, 0] == 255
    for step in range(10, 110, 10):
        client.samples.emit(grid(step))
    assert len(lapse) <= 10 and lapse.stride == 2
    assert lapse.steps == [0, 20, 40, 60, 80, 100]  # even spread, the first kept
    for step in range(110, 400, 10):
        client.samples.emit(grid(step))
    assert len(lapse) <= 10 and lapse.steps[0] == 0 and lapse.steps[-1] >= 320
    gaps = np.diff(lapse.steps)
    assert gaps.min() == gaps.max() == 10 * lapse.stride  # thinned evenly
    client.ready.emit(protocol.Ready(model="gan", family="gan", data=IMAGES,
                                     latent=LatentSpec.gaussian(4)))
    assert len(lapse) == 0 and lapse.stride == 1  # a new model starts over


def test_export_gif_and_mp4_with_sidecar(make, qtbot, tmp_path) -> None:
    lapse, client = make()
    with pytest.raises(ValueError, match="no training time-lapse"):
        lapse.export(tmp_path / "none.gif")
    for step in range(0, 60, 10):
        client.samples.emit(grid(step))
    with qtbot.waitSignal(lapse.services.exported, timeout=10000):
        lapse.export(tmp_path / "lapse.gif", fps=10)
    frames = list(ImageSequence.Iterator(Image.open(tmp_path / "lapse.gif")))
    assert len(frames) == 6
    side = json.loads((tmp_path / "lapse.gif.json").read_text())
    assert side["kind"] == "timelapse" and side["renderable"] is False and side["steps"] == [0, 10, 20, 30, 40, 50]
    assert side["output"] == "lapse.gif" and side["settings"]["fps"] == 10 and "vae" in side["model"]
    with qtbot.waitSignal(lapse.services.exported, timeout=20000):
        lapse.export(tmp_path / "lapse.mp4")
    assert read_frame_count(tmp_path / "lapse.mp4") == 6
    with pytest.raises(ValueError, match=".gif or .mp4"):
        lapse.export(tmp_path / "lapse.bmp")


def test_grid_frame_shapes() -> None:
    assert grid_frame(np.zeros((64, 3, 4, 4), np.float32)).shape == (3, 8 * 5 - 1, 8 * 5 - 1)
    pts = grid_frame(np.ones((10, 2), np.float32))
    assert pts.dtype == np.float32 and pts.shape == (10, 2)
    with pytest.raises(ValueError):
        grid_frame(np.zeros((3, 2, 4, 4), np.float32))
