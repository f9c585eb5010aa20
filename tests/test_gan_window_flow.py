"""Issue 3's "Done when", as a user does it: each of the six GAN engines trained from the real window.

One window and one CPU worker; for each engine: build it on suitable built-in data, see the Train
panel offer the family's own hyperparameters, train, watch the family's loss terms and the live
coverage arrive, and (cGAN, InfoGAN) move the class or code picker and see the decoded image change.
"""

from __future__ import annotations

import numpy as np
import pytest

from engines.shared import protocol
from workers import real_window

pytestmark = [pytest.mark.slow, pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")]

#: engine -> (data, hyperparameters the Train panel must offer, loss terms the plot must show)
ENGINES = {
    "gan": ("ring", {"g_lr", "d_lr", "pack"}, {"d_loss", "g_loss", "d_real", "d_fake"}),
    "wgan": ("ring", {"n_critic", "clip"}, {"d_loss", "g_loss", "w_dist"}),
    "wgan-gp": ("ring", {"n_critic", "gp_lambda"}, {"d_loss", "g_loss", "w_dist", "gp"}),
    "sngan": ("grid", {"g_lr", "d_lr"}, {"d_loss", "g_loss"}),
    "cgan": ("digits", {"g_lr", "d_lr"}, {"d_loss", "g_loss"}),
    "infogan": ("digits", {"g_lr", "d_lr"}, {"d_loss", "g_loss", "mi"}),
}


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory):
    with real_window(tmp_path_factory.mktemp("home")) as w:
        yield w


def _decoded(w) -> np.ndarray | None:
    image = w.decoded_view.output.image()
    return None if image is None else np.array(image, copy=True)


@pytest.mark.parametrize("model", list(ENGINES))
def test_each_gan_trains_from_the_window(window, qtbot, model) -> None:
    w = window
    data, hypers, terms = ENGINES[model]
    qtbot.waitUntil(lambda: w.client.state in ("idle", "ready"), timeout=90_000)
    with qtbot.waitSignal(w.client.ready, timeout=60_000):
        w.configure(protocol.Configure(data=data, model=model, latent_dim=4, seed=0, batch_size=32))
    assert set(w.train_panel.hyper_controls) >= hypers
    w.client.send(protocol.SetMetricSchedule(coverage_every=1.0, disentanglement_every=0.0))
    with qtbot.waitSignal(w.client.coverage, timeout=240_000) as got:  # images: the classifier trains first
        w.train(steps=None)
    assert got.args[0].step > 0
    qtbot.waitUntil(lambda: all(len(w.loss_panel.curve_data(t)[0]) > 0 for t in terms), timeout=30_000)
    for t in terms:
        assert np.isfinite(w.loss_panel.curve_data(t)[1]).all(), t
    assert len(w.coverage_panel.steps) >= 1
    with qtbot.waitSignal(w.client.stopped, timeout=30_000):
        w.train_panel.buttons["stop"].click()
    qtbot.waitUntil(lambda: w.client.state == "ready", timeout=10_000)
    if data in ("ring", "grid"):
        qtbot.waitUntil(lambda: w.samples_view.points.critic.image is not None, timeout=10_000)
    if model in ("cgan", "infogan"):  # the class (cGAN) or categorical code (InfoGAN) picker moves the image
        assert w.explore_panel.categories, "a picker for each categorical code"
        picker = w.explore_panel.categories[0]
        qtbot.waitUntil(lambda: _decoded(w) is not None, timeout=20_000)
        before = _decoded(w)
        picker.combo.setCurrentIndex((picker.combo.currentIndex() + 1) % picker.combo.count())
        qtbot.waitUntil(lambda: not np.array_equal(_decoded(w), before), timeout=20_000)
