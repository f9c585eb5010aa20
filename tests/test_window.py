"""The studio window: widgets driven by synthetic events (fast), then the real window with the real worker.

The end-to-end part shares one window and one CPU worker (threads=1) across its tests, which run in
file order: build, train, explore, encode, export, save, kill -9 and restart.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox

from engines.shared import protocol
from engines.shared.spec import HyperParam, LatentDim, LatentSpec
from studio.widgets.images import export_scale, grid, to_display
from studio.features.data_model.view import DataModelPanel
from studio.features.explore.view import ExplorePanel
from studio.features.losses.view import LossPlotPanel
from studio.features.train.view import TrainPanel
from studio.features.explore.state import kl_order
from studio.state import LossHistory
from studio.widgets.basic import LogSpinBox
from workers import real_window

# The offscreen platform plugin warns about every dock resize; it is not a problem of ours.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

WAIT_WORKER = 90_000  # ms: the worker imports torch (slow on a busy 2-core machine)


# --------------------------------------------------------------------------------------------
# Qt binding
# --------------------------------------------------------------------------------------------


def test_qt_binding_keeps_none_and_true_alive(qapp) -> None:
    """PySide6 6.12.0 drops a reference to None on every void call and to True on every emit;
    on Python < 3.12 the window then dies with "deallocating None" (pyproject pins < 6.12 there)."""

    class Emitter(QObject):
        fired = Signal()

    e = Emitter()
    e.fired.connect(lambda: None)
    none0, true0 = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(200):
        e.fired.emit()
        e.setObjectName("x")
    assert sys.getrefcount(None) >= none0 - 5
    assert sys.getrefcount(True) >= true0 - 5


# --------------------------------------------------------------------------------------------
# Models and widgets, with synthetic events
# --------------------------------------------------------------------------------------------


def test_loss_history_grows_by_doubling_and_smooths() -> None:
    h = LossHistory(capacity=16, smoothing=0.5)
    h.append(np.arange(10), ["recon", "kl"], np.stack([np.full(10, 2.0), np.arange(10.0)], axis=1))
    h.append(np.arange(10, 40), ["recon"], np.full((30, 1), 4.0))  # kl missing: NaN rows
    assert len(h) == 40 and h._steps.shape[0] == 64
    x, y = h.series("kl")
    assert x.shape == (40,) and np.isnan(y[10:]).all() and y[9] == 9.0
    _, ys = h.series("recon", smooth=True)
    assert ys[0] == pytest.approx(2.0)  # bias-corrected: the first value is itself
    assert 2.0 < ys[11] < 4.0 and ys[-1] == pytest.approx(4.0, abs=1e-3)
    assert h.last("kl") == 9.0 and h.last_step == 39
    v = h.version
    h.truncate(19)
    assert len(h) == 20 and h.last_step == 19 and h.version > v
    with pytest.raises(ValueError):
        h.append(np.arange(3), ["a", "b"], np.zeros((3, 3)))


def test_kl_order_most_informative_first() -> None:
    order, collapsed = kl_order(np.array([0.01, 2.0, 0.5, 2.0]), 4)
    assert order.tolist() == [1, 3, 2, 0]
    assert collapsed.tolist() == [True, False, False, False]
    order, collapsed = kl_order(None, 3)
    assert order.tolist() == [0, 1, 2] and not collapsed.any()


def test_images_display_and_grid() -> None:
    grey = np.random.default_rng(0).random((1, 5, 7)).astype(np.float32)
    assert to_display(grey).shape == (5, 7)
    rgb = np.random.default_rng(0).random((3, 5, 7)).astype(np.float32)
    assert to_display(rgb).shape == (5, 7, 3) and to_display(rgb)[2, 3, 1] == rgb[1, 2, 3]
    assert to_display(np.full((1, 2, 2), 3.0)).max() == 1.0
    assert grid(np.zeros((6, 1, 4, 4))).shape == (1, 2 * 5 - 1, 3 * 5 - 1)
    assert export_scale((1, 16, 16)) == 32 and export_scale((1, 600, 600)) == 1
    with pytest.raises(ValueError):
        to_display(np.zeros((2, 4, 4)))


def _metrics(start: int, k: int, names: list[str], latent_kl: np.ndarray | None = None) -> protocol.StepMetrics:
    rng = np.random.default_rng(start)
    return protocol.StepMetrics(
        steps=np.arange(start, start + k, dtype=np.int64), names=names,
        values=rng.random((k, len(names))).astype(np.float32) + 1.0, steps_per_sec=10.0, latent_kl=latent_kl,
    )


def test_loss_plot_creates_each_curve_once(qtbot) -> None:
    panel = LossPlotPanel()
    qtbot.addWidget(panel)
    names = ["recon", "kl", "loss", "kl/z0", "kl/z1"]
    panel.add_metrics(_metrics(0, 5, names))
    panel.refresh()
    curves = dict(panel.curves)
    assert set(curves) == set(names)
    assert sorted(panel.visible_terms()) == ["kl", "loss", "recon"]  # per-dimension terms hidden
    assert curves["kl"].getViewBox() is panel.right  # KL on its own axis
    assert len(panel.curve_data("recon")[0]) == 5 and len(panel.curve_data("kl/z0")[0]) == 0
    panel.add_metrics(_metrics(5, 7, names))
    panel.refresh()
    assert panel.curves == curves and all(panel.curves[n] is curves[n] for n in names)
    assert len(panel.curve_data("recon")[0]) == 12
    panel.set_term_visible("kl/z1", True)
    assert "kl/z1" in panel.visible_terms() and len(panel.curve_data("kl/z1")[0]) == 12
    panel.smooth_check.setChecked(True)
    x, y = panel.curve_data("recon")
    assert np.allclose(y, panel.history.series("recon", smooth=True)[1])
    panel.log_check.setChecked(True)
    panel.add_marker(6, "beta=2")
    assert len(panel.markers) == 1
    panel.truncate(4)
    assert panel.markers == [] and len(panel.history) == 5
    panel.clear()
    assert panel.curves == {} and len(panel.history) == 0


def test_explore_panel_orders_by_kl_and_marks_collapsed(qtbot) -> None:
    panel = ExplorePanel()
    qtbot.addWidget(panel)
    spec = LatentSpec((*LatentSpec.gaussian(3).dims, LatentDim("u", kind="uniform", low=0.0, high=1.0)))
    panel.set_latent(spec)
    assert [r.dim.name for r in panel.rows] == ["z0", "z1", "z2", "u"]
    panel.set_latent_kl(np.array([0.01, 1.5, 0.3, 0.8]))
    panel.apply_order()
    layout_names = [panel.rows_layout.itemAt(i).widget().dim.name for i in range(4)]
    assert layout_names == ["z1", "u", "z2", "z0"]
    assert panel.collapsed().tolist() == [True, False, False, False]
    assert "\u2715" in panel.rows[0].kl.text()
    with qtbot.waitSignal(panel.z_changed) as blocker:
        panel.set_value(1, 2.0)
    assert blocker.args[0][1] == pytest.approx(2.0, abs=0.01)
    with qtbot.waitSignal(panel.z_changed):
        panel.set_z([9.0, -9.0, 0.5, 5.0])  # clipped to the slider ranges
    assert panel.z().tolist() == pytest.approx([3.0, -3.0, 0.5, 1.0], abs=0.01)
    z = panel.random_z(seed=3)
    assert (np.abs(z[:3]) <= 3.0).all() and 0.0 <= z[3] <= 1.0
    panel.reset()
    assert panel.z().tolist() == pytest.approx([0.0, 0.0, 0.0, 0.5], abs=0.01)
    with pytest.raises(ValueError):
        panel.set_z([1.0])


def test_train_panel_builds_controls_from_hyper(qtbot) -> None:
    panel = TrainPanel()
    qtbot.addWidget(panel)
    panel.set_hyper([HyperParam("beta", 4.0, 0.0, 100.0), HyperParam("lr", 1e-3, 1e-6, 1.0, log=True),
                     HyperParam("n_critic", 5, 1, 20, integer=True)])
    assert isinstance(panel.hyper_controls["lr"], LogSpinBox)
    panel.set_state("training")
    assert panel.buttons["pause"].isEnabled() and not panel.buttons["start"].isEnabled()
    with qtbot.waitSignal(panel.command) as blocker:
        panel.hyper_controls["beta"].setValue(2.0)
    assert blocker.args[0] == protocol.SetHyperparameter(name="beta", value=2.0)
    with qtbot.waitSignal(panel.command) as blocker:
        panel.hyper_controls["lr"].stepBy(4)  # one decade up on the log scale
    assert blocker.args[0].value == pytest.approx(1e-2)
    lr = panel.hyper_controls["lr"]
    lr.lineEdit().selectAll()
    with qtbot.waitSignal(panel.command) as blocker:
        qtbot.keyClicks(lr, "3e-4")  # typed in scientific notation, sent on Enter
        qtbot.keyClick(lr, Qt.Key.Key_Return)
    assert blocker.args[0] == protocol.SetHyperparameter(name="lr", value=pytest.approx(3e-4))
    with qtbot.assertNotEmitted(panel.command):
        panel.hyper_changed(protocol.HyperparameterChanged(name="n_critic", value=7, step=3))
    assert panel.hyper_controls["n_critic"].value() == 7
    panel.set_state("ready")
    with qtbot.waitSignal(panel.command) as blocker:
        qtbot.mouseClick(panel.buttons["start"], Qt.MouseButton.LeftButton)
    assert blocker.args[0] == protocol.Train(steps=None)


def test_data_model_panel_configure_command(qtbot) -> None:
    panel = DataModelPanel()
    qtbot.addWidget(panel)
    panel.set_data_spec("digits")
    panel.set_model("vae")
    panel.set_values(latent_dim=4, image_size=16, batch_size=32, seed=7, arch="mlp")
    cmd = panel.configure_command()
    assert cmd == protocol.Configure(data="digits", model="vae", image_size=16, latent_dim=4, seed=7,
                                     batch_size=32, options={"arch": "mlp"})
    panel.set_values(image_size=0)
    panel.set_data_spec("npz:/data/mine.npz")
    assert panel.configure_command().image_size is None and panel.data_spec() == "npz:/data/mine.npz"
    with pytest.raises(KeyError):
        panel.set_model("no-such-model")


# --------------------------------------------------------------------------------------------
# The real window with the real worker
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def studio(qapp, tmp_path_factory):
    """One real window and CPU worker for the end-to-end tests (autosaves go to a temporary home).

    Each test first brings the window to the state it needs (:func:`_ensure`), so any test passes
    alone and in any order; the window starts with no model.
    """
    with real_window(tmp_path_factory.mktemp("home")) as window:
        assert window.client.state in ("starting", "idle")
        yield window


def _build(w, qtbot):  # noqa: ANN001, ANN202 - the Ready it got
    w.set_data_spec("digits")
    w.data_panel.set_model("beta-vae")
    w.data_panel.set_values(latent_dim=4, image_size=16, batch_size=32, seed=0, arch="conv")
    with qtbot.waitSignal(w.client.ready, timeout=WAIT_WORKER) as blocker:
        w.configure()
    return blocker.args[0]


def _ensure(w, qtbot, trained: bool = True) -> None:
    """A live worker holding the 4-dim beta-VAE, idle; ``trained``: with a few steps done (KL known, autosaved)."""
    if w.client.state == "died":
        w.restart_worker()
    qtbot.waitUntil(lambda: w.client.state not in ("starting", "configuring"), timeout=WAIT_WORKER)
    if w.client.state in ("training", "paused"):
        with qtbot.waitSignal(w.client.stopped, timeout=20_000):
            w.services.send(protocol.Stop())
    if w.client.state != "ready" or w.explore_panel.dim != 4:
        _build(w, qtbot)
    if trained and (w.client.step == 0 or w.explore_panel.latent_kl is None):
        with qtbot.waitSignal(w.client.stopped, timeout=60_000):
            w.train(20)
        qtbot.waitUntil(lambda: w.client.state == "ready" and w.explore_panel.latent_kl is not None, timeout=20_000)
        qtbot.waitUntil(lambda: w.client.last_checkpoint is not None, timeout=20_000)  # the autosave at the end


def _decoded(window) -> np.ndarray | None:
    image = window.decoded_view.output.image()
    return None if image is None else image.copy()


def _wait_decoded(window, qtbot) -> None:
    """Wait until the newest decode request of the Explore view has been answered and painted."""
    c = window.client
    qtbot.waitUntil(lambda: c.last_requested() > 0 and c.last_delivered() == c.last_requested(), timeout=20_000)


def test_build_reaches_ready(studio, qtbot) -> None:
    w = studio
    _ensure(w, qtbot, trained=False)
    ready = _build(w, qtbot)  # a fresh model, whatever the window held
    assert ready.model == "beta-vae" and ready.latent.dim == 4 and ready.capabilities.has_encoder
    assert w.client.state == "ready" and w.train_panel.buttons["start"].isEnabled()
    assert "digits" in w.data_panel.summary.text()
    assert w.explore_panel.dim == 4 and set(w.train_panel.hyper_controls) >= {"beta", "lr"}
    qtbot.waitUntil(lambda: w.samples_view.samples is not None and _decoded(w) is not None, timeout=20_000)
    assert w.samples_view.samples.shape[1:] == (1, 16, 16)
    assert _decoded(w).shape == (16, 16)


def test_training_grows_the_loss_curve(studio, qtbot) -> None:
    w = studio
    _ensure(w, qtbot, trained=False)
    markers = len(w.loss_panel.markers)
    with qtbot.waitSignal(w.client.state_changed, timeout=10_000, check_params_cb=lambda s: s == "training"):
        qtbot.mouseClick(w.train_panel.buttons["start"], Qt.MouseButton.LeftButton)
    assert w.train_panel.buttons["pause"].isEnabled() and not w.data_panel.build_button.isEnabled()
    qtbot.waitUntil(lambda: len(w.loss_panel.curve_data("recon")[0]) > 0, timeout=20_000)
    n = len(w.loss_panel.curve_data("recon")[0])
    qtbot.waitUntil(lambda: len(w.loss_panel.curve_data("recon")[0]) > n, timeout=20_000)
    assert np.isfinite(w.loss_panel.curve_data("recon")[1]).all()
    with qtbot.waitSignal(w.client.hyper_changed, timeout=10_000) as blocker:
        w.train_panel.hyper_controls["beta"].setValue(2.0)  # live, while training
    assert blocker.args[0].name == "beta" and blocker.args[0].value == 2.0
    assert len(w.loss_panel.markers) == markers + 1
    qtbot.waitUntil(lambda: w.explore_panel.latent_kl is not None, timeout=10_000)
    with qtbot.waitSignal(w.client.stopped, timeout=20_000):
        qtbot.mouseClick(w.train_panel.buttons["stop"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.client.state == "ready", timeout=5_000)
    assert w.client.step > 0 and w.train_panel.buttons["start"].isEnabled()
    qtbot.waitUntil(lambda: w.client.last_checkpoint is not None, timeout=20_000)  # the autosave at the end


def test_slider_moves_change_the_decoded_image(studio, qtbot) -> None:
    w = studio
    _ensure(w, qtbot)
    w.explore_panel.apply_order()
    top = int(w.explore_panel.order[0])  # the most informative dimension
    _wait_decoded(w, qtbot)
    before = _decoded(w)
    w.explore_panel.set_value(top, -2.5)
    w.explore_panel.set_value(top, 2.5)
    qtbot.waitUntil(lambda: not np.array_equal(_decoded(w), before), timeout=10_000)
    stats0 = dict(w.client.decode_stats)
    for v in np.linspace(-2.0, 2.0, 40):  # a drag: requests are condensed, the last one wins
        w.explore_panel.set_value(top, float(v))
    assert w.client.decode_stats["requested"] - stats0["requested"] == 40
    _wait_decoded(w, qtbot)  # the answer to the newest request arrives ...
    assert w.client.decode_stats["sent"] - stats0["sent"] < 40  # ... without a round trip per request


def test_set_from_image_moves_the_sliders(studio, qtbot) -> None:
    w = studio
    _ensure(w, qtbot)
    w.explore_panel.index_spin.setValue(2)
    with qtbot.waitSignal(w.client.encoded, timeout=10_000) as blocker:
        qtbot.mouseClick(w.explore_panel.encode_button, Qt.MouseButton.LeftButton)
    z = blocker.args[0].z[0]
    assert w.decoded_view.input.isVisible() and "#2" in w.decoded_view.input.title.text()
    assert w.decoded_view.input.image().shape == (16, 16)
    assert w.explore_panel.z() == pytest.approx(np.clip(z, -3, 3), abs=0.011)


def test_export_writes_upscaled_pngs(studio, qtbot, tmp_path) -> None:
    w = studio
    _ensure(w, qtbot)
    _wait_decoded(w, qtbot)
    with qtbot.waitSignal(w.exported, timeout=10_000):
        future = w.samples.export_image(tmp_path / "decoded.png")
    future.result(timeout=10)
    picture = w.decoded_view.picture()
    scale = 512 // 16
    with Image.open(tmp_path / "decoded.png") as img:
        assert img.size == (16 * scale, 16 * scale)
        pixels = np.asarray(img)
    expected = np.round(np.clip(picture[0], 0, 1) * 255).astype(int)
    assert np.abs(pixels[::scale, ::scale].astype(int) - expected).max() <= 1  # nearest-neighbour upscaling
    w.samples.export_grid(tmp_path / "grid.png").result(timeout=10)
    side = 8 * 17 - 1  # 64 tiles of 16 px with 1-px gaps
    with Image.open(tmp_path / "grid.png") as img:
        assert img.size == (side * (512 // side),) * 2
    failed = w.samples.export_image(tmp_path / "missing-dir" / "x.png")
    with pytest.raises(OSError):
        failed.result(timeout=10)
    qtbot.waitUntil(lambda: "Export failed" in w.messages.toPlainText(), timeout=5_000)


def test_save_checkpoint(studio, qtbot, tmp_path) -> None:
    w = studio
    _ensure(w, qtbot)
    with qtbot.waitSignal(w.client.checkpoint_saved, timeout=20_000) as blocker:
        assert w.save_checkpoint(tmp_path / "model")
    saved = blocker.args[0]
    assert saved.path.endswith("model.safetensors") and os.path.exists(saved.path) and not saved.autosave
    assert w.client.last_checkpoint == saved.path


def test_file_resume_run_brings_back_a_run_with_its_curves_and_markers(studio, qtbot, tmp_path, monkeypatch) -> None:
    """File > Resume run on a run folder saved at step S, after the window trained on: the loss plot goes back
    to the run's curves up to S with its hyperparameter marker, training continues from S, and the
    autosave goes into that folder."""
    from PySide6.QtWidgets import QFileDialog

    w = studio
    _ensure(w, qtbot)
    with qtbot.waitSignal(w.client.hyper_changed, timeout=10_000):
        w.train_panel.hyper_controls["beta"].setValue(1.5)
    with qtbot.waitSignal(w.client.stopped, timeout=60_000):
        w.train(10)
    qtbot.waitUntil(lambda: w.client.state == "ready", timeout=10_000)
    run = Path(w.client.last_checkpoint).parent
    def saved_at(step: int) -> bool:  # the autosave and the curves the window writes beside it (a thread)
        if not (run / "metrics.csv").is_file() or json.loads((run / "model.json").read_text())["step"] != step:
            return False
        lines = (run / "metrics.csv").read_text().strip().splitlines()
        return lines[-1].split(",")[0] == str(step - 1)

    qtbot.waitUntil(lambda: saved_at(w.client.step), timeout=20_000)
    saved = tmp_path / "saved-run"
    shutil.copytree(run, saved)  # the run as the user left it
    step = w.client.step
    with qtbot.waitSignal(w.client.stopped, timeout=60_000):
        w.train(15)  # the window trains on past it
    assert w.loss_panel.history.steps[-1] >= step + 14
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(saved))
    action = next(a for a in w.menuBar().actions()[0].menu().actions() if a.text() == "Resume run...")
    with qtbot.waitSignal(w.client.ready, timeout=WAIT_WORKER) as blocker:
        action.trigger()
        qtbot.waitUntil(lambda: w.data_model.confirm is not None, timeout=5_000)  # trained: asks first
        w.data_model.confirm.button(QMessageBox.StandardButton.Discard).click()
    assert blocker.args[0].step == step and blocker.args[0].checkpoint == str(saved)
    qtbot.waitUntil(lambda: len(w.loss_panel.history) and w.loss_panel.history.steps[-1] == step - 1, timeout=10_000)
    qtbot.waitUntil(lambda: any("beta=1.5" in text for _, text in w.loss_panel.state.markers), timeout=10_000)
    assert w.status_labels["step"].text() == f"step {step:,}"
    with qtbot.waitSignal(w.client.stopped, timeout=60_000):
        w.train(5)
    steps = w.loss_panel.history.steps
    assert steps[-1] == step + 4 and (np.diff(steps) > 0).all()  # one curve, no second copy of the run
    qtbot.waitUntil(lambda: json.loads((saved / "model.json").read_text())["step"] == step + 5, timeout=20_000)


def test_killed_worker_is_reported_and_restarts(studio, qtbot) -> None:
    w = studio
    _ensure(w, qtbot)
    step, checkpoint = w.client.step, w.client.last_checkpoint
    with qtbot.waitSignal(w.client.worker_died, timeout=20_000):
        os.kill(w.client.pid, signal.SIGKILL)
    assert w.client.state == "died" and w.banner.isVisible()
    assert "worker died" in w.status_labels["state"].text()
    w.explore_panel.set_value(0, 1.0)  # the window stays usable: no worker, nothing sent, no error
    assert not w.train_panel.buttons["start"].isEnabled()
    with qtbot.waitSignal(w.client.ready, timeout=WAIT_WORKER) as blocker:
        qtbot.mouseClick(w.banner.button, Qt.MouseButton.LeftButton)
    ready = blocker.args[0]
    assert ready.checkpoint == checkpoint and ready.step == step
    assert not w.banner.isVisible() and w.client.state == "ready"
    _wait_decoded(w, qtbot)
    before = _decoded(w)
    w.explore_panel.set_value(0, -1.5)
    qtbot.waitUntil(lambda: _decoded(w) is not None and not np.array_equal(_decoded(w), before), timeout=20_000)


def test_a_worker_killed_while_training_trains_on_after_the_restart(studio, qtbot) -> None:
    w = studio
    _ensure(w, qtbot)
    saved = w.client.step  # the autosave at the end of the last session
    with qtbot.waitSignal(w.client.state_changed, timeout=10_000, check_params_cb=lambda s: s == "training"):
        w.train(100_000)
    qtbot.waitUntil(lambda: w.client.step > saved + 5, timeout=20_000)
    with qtbot.waitSignal(w.client.worker_died, timeout=20_000):
        os.kill(w.client.pid, signal.SIGKILL)
    with qtbot.waitSignal(w.client.ready, timeout=WAIT_WORKER) as blocker:
        qtbot.mouseClick(w.banner.button, Qt.MouseButton.LeftButton)
    back = blocker.args[0].step
    assert back >= saved  # the last autosave (10 s into a session, then every 60 s, and at its end)
    qtbot.waitUntil(lambda: w.client.state == "training", timeout=20_000)  # not left idle
    qtbot.waitUntil(lambda: w.client.step > back, timeout=20_000)
    with qtbot.waitSignal(w.client.stopped, timeout=20_000):
        w.services.send(protocol.Stop())


def test_point_mixtures_suggest_pacgan_latent_and_batch(qtbot) -> None:
    from studio.features.data_model.view import DataModelPanel

    panel = DataModelPanel()
    qtbot.addWidget(panel)
    panel.set_data_spec("digits")
    assert (panel.latent_spin.value(), panel.batch_spin.value()) == (10, 64)
    panel.set_data_spec("ring")
    assert (panel.latent_spin.value(), panel.batch_spin.value()) == (2, 100)
    panel.set_data_spec("shapes")
    assert (panel.latent_spin.value(), panel.batch_spin.value()) == (10, 64)
    panel.set_values(latent_dim=6)  # the user's own choice stays
    panel.set_data_spec("grid")
    assert (panel.latent_spin.value(), panel.batch_spin.value()) == (6, 64)
