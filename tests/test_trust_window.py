"""Issue 12 in the real window, as a person would: a run that explodes is rolled back by the watchdog, the
window says what happened and offers fixes, and one click applies a fix and trains on.

Set ``LATENT_STUDIO_SHOTS`` to a folder to keep the screenshots taken on the way."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
