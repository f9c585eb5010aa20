"""Issue 12 in the real window, as a person would: a run that explodes is rolled back by the watchdog, the
window says what happened and offers fixes, and one click applies a fix and trains on.

Set ``LATENT_STUDIO_SHOTS`` to a folder to keep the screenshots taken on the way."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QLineEdit, QSpinBox

from engines.shared import protocol
from workers import real_window

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def shot(window, name: str, tmp_path: Path) -> Path:  # noqa: ANN001
    folder = Path(os.environ.get("LATENT_STUDIO_SHOTS") or tmp_path)
    path = folder / name
    assert window.grab().save(str(path))
    return path


def test_a_rollback_is_shown_with_its_fixes_and_one_click_trains_on(qtbot, tmp_path, one_torch_thread) -> None:
    with real_window(tmp_path / "home") as w:
        client = w.client
        w.resize(1500, 950)
        qtbot.waitUntil(lambda: client.state == "idle", timeout=90_000)
        with qtbot.waitSignal(client.ready, timeout=60_000):
            w.configure(protocol.Configure(data="digits", model="realnvp", image_size=8, seed=0, batch_size=16))
        with qtbot.waitSignal(client.stopped, timeout=120_000):
            w.train(40)  # a healthy start
        with qtbot.waitSignal(client.hyper_changed, timeout=10_000):
            w.train_panel.hyper_controls["lr"].setValue(0.1)  # the slider's top: RealNVP explodes at once
        with qtbot.waitSignal(client.event_received, timeout=120_000,
                              check_params_cb=lambda e: isinstance(e, protocol.WatchdogTripped)) as blocker:
            w.train(300)
        trip = blocker.args[0]
        assert trip.cause in ("nan", "spike") and not trip.auto and 40 <= trip.rolled_back_to <= trip.step
        assert w.status_labels["step"].text() == f"step {trip.rolled_back_to:,}"
        qtbot.waitUntil(lambda: client.state == "paused", timeout=20_000)
        banner = w.watchdog.view
        assert banner.isVisible() and "Watchdog caught" in banner.label.text()
        assert f"Rolled back to step {trip.rolled_back_to:,}" in banner.label.text()
        labels = [b.text() for b in banner.buttons]
        assert labels[0].startswith("Halve lr (0.1 -> 0.05)") and labels[-1] == "Resume as it is"
        assert any(text.startswith("rollback") for _, text in w.loss_panel.state.markers)
        assert "Watchdog:" in w.messages.lines[-1][1]
        qtbot.wait(300)  # the loss plot redrawn
        shot(w, "watchdog.png", tmp_path)

        # one click: lr halved (a marker like any change) and training goes on from the rolled-back step
        with qtbot.waitSignal(client.hyper_changed, timeout=10_000) as changed:
            banner.buttons[0].click()
        assert changed.args[0].name == "lr" and changed.args[0].value == pytest.approx(0.05)
        assert not banner.isVisible()
        qtbot.waitUntil(lambda: client.state == "training" or client.step > trip.rolled_back_to, timeout=20_000)
        qtbot.waitUntil(lambda: client.step > trip.rolled_back_to + 5 or banner.isVisible(), timeout=60_000)

        # the automatic mode, from the Train menu: no pause, the rate halved by itself
        auto = w.shortcut_actions["watchdog_auto"]
        auto.trigger()
        assert auto.isChecked() and w.watchdog.auto_resume


def test_the_timeline_scrubs_back_through_the_run_and_branches_a_new_one(qtbot, tmp_path, one_torch_thread) -> None:
    with real_window(tmp_path / "home") as w:
        client, t = w.client, w.timeline
        w.resize(1500, 950)
        qtbot.waitUntil(lambda: client.state == "idle", timeout=90_000)
        with qtbot.waitSignal(client.ready, timeout=60_000):
            w.configure(protocol.Configure(data="digits", model="vae", image_size=16, latent_dim=4, seed=1,
                                           batch_size=32))
        action = next(a for a in w.menuBar().actions()[1].menu().actions() if a.text() == "Timeline settings...")
        action.trigger()  # Train > Timeline settings: a snapshot every 25 steps within 64 MB
        every, budget = w.timeline_dialog.findChildren(QSpinBox)
        every.setValue(25)
        budget.setValue(64)
        with qtbot.waitSignal(client.event_received, timeout=10_000,
                              check_params_cb=lambda e: isinstance(e, protocol.TimelineChanged) and e.every == 25):
            w.timeline_dialog.accept()
        with qtbot.waitSignal(client.stopped, timeout=120_000):
            w.train(160)
        qtbot.waitUntil(lambda: len(t.state.steps) >= 4, timeout=20_000)
        bar = t.view
        assert bar.slider.maximum() == len(t.state.steps) and bar.slider.value() == bar.slider.maximum()  # live
        assert bar.label.text().startswith("live · ") and "of 64 MB on disk" in bar.label.text()
        assert not bar.branch_button.isEnabled()

        # back in time: the grid and the Explore image by the model as it was, a cursor on the plots
        live_grid = w.samples_view.samples.copy()
        bar.slider.setValue(1)
        step = t.state.steps[1]
        qtbot.waitUntil(lambda: "(timeline)" in w.samples_view.images.title.text(), timeout=20_000)
        assert f"step {step:,} (timeline)" in w.samples_view.images.title.text()
        assert not (w.samples_view.samples == live_grid).all()  # an earlier model draws otherwise
        assert w.loss_panel.time_cursor.step == step and w.coverage_panel.time_cursor.step == step
        decoded = w.decoded_view.output
        assert f"(model at step {step:,})" in decoded.title.text()
        assert bar.label.text().startswith(f"step {step:,} (snapshot 2 of") and bar.branch_button.isEnabled()
        before = decoded.image().copy()
        w.explore_panel.set_value(0, 2.5)  # the Explore point moved: decoded by the past model too
        qtbot.waitUntil(lambda: not (decoded.image() == before).all(), timeout=10_000)
        assert f"(model at step {step:,})" in decoded.title.text()
        qtbot.wait(300)
        shot(w, "timeline.png", tmp_path)

        # live again
        bar.live_button.click()
        qtbot.waitUntil(lambda: "(timeline)" not in w.samples_view.images.title.text(), timeout=10_000)
        assert w.loss_panel.time_cursor.step is None and bar.label.text().startswith("live")

        # branch from a snapshot: a new run beside the old one, its curve kept up to the branch
        bar.slider.setValue(2)
        branch_step = t.state.steps[2]
        old_run = Path(client.last_checkpoint).parent
        with qtbot.waitSignal(client.ready, timeout=60_000) as blocker:
            bar.branch_button.click()
        assert blocker.args[0].step == branch_step
        assert bar.slider.value() == bar.slider.maximum()  # live, on the new run's (empty) timeline
        assert w.loss_panel.history.steps[-1] <= branch_step  # the curve up to the branch, not after
        with qtbot.waitSignal(client.stopped, timeout=60_000):
            w.train(10)
        qtbot.waitUntil(lambda: client.last_checkpoint and Path(client.last_checkpoint).parent != old_run, timeout=20_000)
        assert (old_run / "timeline" / f"step-{branch_step:09d}.safetensors").is_file()


def test_the_window_drives_a_remote_worker_from_the_worker_menu(qtbot, tmp_path, one_torch_thread) -> None:
    from test_remote_worker import Listening

    server = Listening(tmp_path / "server-home")
    try:
        with real_window(tmp_path / "home") as w:
            client = w.client
            qtbot.waitUntil(lambda: client.state == "idle", timeout=90_000)
            local_pid = client.pid
            action = next(a for a in w.menuBar().actions()[2].menu().actions()
                          if a.text() == "Connect to a remote worker...")
            action.trigger()
            dialog = w.remote_dialog
            address, token = [f for f in dialog.findChildren(QLineEdit)]
            address.setText(server.address)
            token.setText(server.token)
            with qtbot.waitSignal(client.started, timeout=60_000) as started:
                dialog.accept()
            assert started.args[0].pid != local_pid and client.remote == server.address
            with qtbot.waitSignal(client.ready, timeout=60_000):
                w.configure(protocol.Configure(data="digits", model="vae", image_size=8, latent_dim=2, seed=0,
                                               batch_size=16))
            with qtbot.waitSignal(client.stopped, timeout=60_000):
                w.train(5)
            qtbot.waitUntil(lambda: w.samples_view.samples is not None, timeout=20_000)
            w.interpolation.add_keyframe(np.zeros(2, np.float32), "origin")
            w.interpolation.add_keyframe(np.array([1.5, -1.0], np.float32), "there")
            with qtbot.waitSignal(w.exported, timeout=60_000):  # written here, from bytes the worker sent
                w.interpolation.export_gif(tmp_path / "walk.gif")
            assert (tmp_path / "walk.gif").is_file() and (tmp_path / "walk.gif.json").is_file()
    finally:
        server.close()
