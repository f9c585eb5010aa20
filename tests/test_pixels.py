"""The Pixels tab (autoregressive models): its Qt-free state, and the tab driven by a fake client as a user would."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from engines.shared import protocol
from engines.shared.datainfo import DataInfo
from engines.shared.registry import MODELS
from engines.shared.spec import LatentSpec
from fakes import FakeClient
from studio.features.pixels.state import (
    MASKS, PixelRun, delay_for, known_mask, pixels_reason, surprise_caption, surprise_picture,
)

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

IMAGES = DataInfo(spec="binarized:digits:8", kind="image", shape=(1, 8, 8), size=64, n_train=56, n_test=8,
                  binarized=0)


def test_masks_keep_the_named_part():
    assert known_mask("top half kept", 4, 6)[:2].all() and not known_mask("top half kept", 4, 6)[2:].any()
    assert known_mask("left half kept", 4, 6)[:, :3].all() and not known_mask("left half kept", 4, 6)[:, 3:].any()
    assert known_mask("top-left quarter kept", 4, 4).sum() == 4 and not known_mask("nothing kept", 3, 3).any()
    assert set(MASKS) == {"top half kept", "left half kept", "top-left quarter kept", "nothing kept"}
    with pytest.raises(ValueError, match="unknown completion mask"):
        known_mask("bottom", 4, 4)


def test_speed_dial_and_reasons():
    assert delay_for(0) == 0.0 and delay_for(99) == delay_for(5) > delay_for(1) > 0
    assert pixels_reason(None) and "pixel by pixel" in pixels_reason(MODELS["vae"].capabilities)
    assert pixels_reason(MODELS["pixelcnn"].capabilities) == ""


def test_pixel_run_follows_its_own_request_and_knows_when_it_can_continue():
    run = PixelRun()
    run.start(5)
    img = np.zeros((1, 1, 2, 2), np.float32)
    assert not run.frame(4, img, None, 1, 4, False)  # an older drawing's frame
    assert run.frame(5, img, np.array([[True, False], [False, False]]), 1, 4, False)
    assert run.running and not run.can_continue and "drawing pixel 1 of 4" in run.caption()
    run.stopped()
    assert run.can_continue and "paused at pixel 1" in run.caption()
    run.start(6)
    run.frame(6, np.zeros((3, 1, 2, 2), np.float32), np.ones((2, 2), bool), 4, 4, True)
    assert not run.running and not run.can_continue and run.caption() == "3 drawn, 4 pixels each"


def test_surprise_picture_scales_minus_log_p():
    lp = -np.array([[[0.0, 1.0], [2.0, np.inf]]], np.float32)
    pic, top = surprise_picture(lp, ceiling=2.0)
    assert pic.shape == (2, 2) and top == 2.0
    np.testing.assert_allclose(pic, [[0.0, 0.5], [1.0, 1.0]])
    assert "nats" in surprise_caption(-12.0, 0.27, 2.0) and "bits/dim" in surprise_caption(-12.0, 0.27, 2.0)


@pytest.fixture
def tab(qtbot):
    from studio.features.pixels.controller import PixelsController
    from studio.services import Services

    client = FakeClient()
    services = Services(client)
    controller = PixelsController(services)
    qtbot.addWidget(controller.view)
    controller.view.resize(900, 600)
    controller.view.show()
    return client, controller


def _ready(client, model: str) -> None:
    latent = LatentSpec.empty() if MODELS[model].capabilities.sampling == "autoregressive" else LatentSpec.gaussian(4)
    client.ready.emit(protocol.Ready(model=model, family=MODELS[model].family, data=IMAGES, latent=latent,
                                     capabilities=MODELS[model].capabilities))


def test_the_tab_says_why_it_is_off_for_a_vae(tab):
    client, controller = tab
    _ready(client, "vae")
    view = controller.view
    assert not view.draw_button.isEnabled() and "pixel by pixel" in view.note.text()
    assert controller.draw(4, 0) == 0 and not client.of(protocol.DrawPixels)


def test_draw_pause_continue_as_a_user_would(tab, qtbot):
    client, controller = tab
    _ready(client, "pixelcnn")
    view = controller.view
    assert view.draw_button.isEnabled() and not view.note.isVisible()
    view.n_spin.setValue(1)
    view.seed_spin.setValue(3)
    view.speed.setValue(0)
    qtbot.mouseClick(view.draw_button, Qt.MouseButton.LeftButton)
    (draw,) = client.of(protocol.DrawPixels)
    assert draw.n == 1 and draw.seed == 3 and draw.image is None and draw.delay_ms == 0.0
    assert view.pause_button.isEnabled() and not view.draw_button.isEnabled()
    partial = np.zeros((1, 1, 8, 8), np.float32)
    partial[0, 0, 0, :5] = 1.0
    drawn = np.zeros((8, 8), bool)
    drawn[0, :5] = True
    client.pixel_frame.emit(protocol.PixelFrame(request_id=draw.request_id, images=partial, drawn=drawn, done=5, total=64))
    assert "pixel 5 of 64" in view.frames.title.text()
    view.pause_button.click()
    assert client.of(protocol.Cancel)[-1].request_id == draw.request_id
    assert view.continue_button.isEnabled()
    view.continue_button.click()
    again = client.of(protocol.DrawPixels)[-1]
    assert again.request_id != draw.request_id and again.n == 1
    np.testing.assert_array_equal(again.image, partial) and np.testing.assert_array_equal(again.known, drawn)
    # a late frame of the paused drawing is not shown over the continued one
    client.pixel_frame.emit(protocol.PixelFrame(request_id=draw.request_id, images=np.ones((1, 1, 8, 8), np.float32),
                                                drawn=np.ones((8, 8), bool), done=64, total=64, final=True))
    assert controller.run.request_id == again.request_id and controller.run.running


def test_complete_asks_for_the_example_then_draws_around_the_kept_part(tab):
    client, controller = tab
    _ready(client, "pixelcnn")
    view = controller.view
    view.index_spin.setValue(2)
    view.mask_combo.setCurrentText("top half kept")
    view.n_spin.setValue(4)
    view.complete_button.click()
    (ask,) = client.of(protocol.GetExamples)
    assert ask.indices == [2] and ask.split == "test"
    x = np.full((1, 1, 8, 8), 0.5, np.float32)
    client.examples.emit(protocol.Examples(request_id=ask.request_id, indices=[2], images=x))
    draw = client.of(protocol.DrawPixels)[-1]
    assert draw.n == 4 and draw.image.shape == (1, 1, 8, 8)
    assert draw.known[:4].all() and not draw.known[4:].any()


def test_surprise_map_is_drawn(tab):
    client, controller = tab
    _ready(client, "nade")
    controller.view.surprise_button.click()
    (ask,) = client.of(protocol.PixelSurprise)
    lp = -np.random.default_rng(0).random((1, 8, 8)).astype(np.float32)
    client.pixel_surprise.emit(protocol.PixelSurprised(request_id=ask.request_id, image=np.zeros((1, 1, 8, 8), np.float32),
                                                       log_probs=lp, nats=float(lp.sum()), bits_per_dim=0.5))
    assert controller.view.surprise.image() is not None
    assert "bits/dim" in controller.view.surprise.title.text()


def test_draw_stays_off_for_a_model_that_cannot_draw_while_the_tab_is_hidden(qtbot) -> None:
    """The tab's state is set while another tab is shown: Draw must follow the reason, not the tab's visibility."""
    from studio.features.pixels.view import PixelsView

    view = PixelsView()
    qtbot.addWidget(view)  # never shown, as a tab behind another
    view.set_enabled("This model has a latent: explore it with the sliders", 10)
    assert not view.draw_button.isEnabled()
    view.set_enabled("", 10)
    assert view.draw_button.isEnabled()
