"""The clock under Coverage and Disentanglement: a slow measurement is never shown as current."""

from __future__ import annotations

import pytest

from engines.shared import protocol
from studio.widgets.clock import MeasureClock, clock_text

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def test_clock_text_says_age_steps_behind_and_when_the_next_is_due() -> None:
    assert clock_text(0.0, True, 100.0, None, None, 0.0) == "measurements off"
    assert clock_text(10.0, True, 100.0, None, None, 4.0) == "none yet; next in 6 s"
    line = clock_text(10.0, True, 400.0, 100.0, 197, 300.0, step=6_152)
    assert line.startswith("last at step 197, 5 min ago, 5,955 steps behind; next overdue by 5 min")
    assert clock_text(10.0, False, 100.0, 90.0, 50, 4.0) == "last at step 50, 10 s ago; next after 6 s more training"


def test_the_wait_counts_training_seconds_only(qtbot, monkeypatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("studio.widgets.clock.time.monotonic", lambda: now[0])
    clock = MeasureClock(10.0)
    qtbot.addWidget(clock)
    clock.set_training(True)
    now[0] += 4
    clock.set_training(False)  # paused after 4 s of training
    now[0] += 600
    assert clock.waited() == pytest.approx(4.0)
    clock.set_training(True)
    now[0] += 3
    clock.refresh()
    assert clock.text() == "none yet; next in 3 s"
    clock.measured(120)
    now[0] += 2
    clock.set_step(400)
    clock.refresh()
    assert clock.text() == "last at step 120, 2 s ago, 280 steps behind; next in 8 s"


def test_the_panels_show_the_clock_and_it_follows_the_worker(qtbot) -> None:
    """Measured events and state changes reach each panel's clock through its controller."""
    from fakes import FakeClient
    from studio.features.coverage.controller import CoverageController
    from studio.features.disentanglement.controller import DisentanglementController
    from studio.services import Services
    from studio.state import LossHistory

    client = FakeClient(state="ready")
    services = Services(client)
    cov, dis = CoverageController(services, LossHistory()), DisentanglementController(services)
    for c in (cov, dis):
        qtbot.addWidget(c.view)
    client.state_changed.emit("training")
    assert cov.view.clock.training and dis.view.clock.training
    assert cov.view.clock.text().startswith("none yet; next in")
    client.coverage.emit(protocol.CoverageMeasured(step=197, result=None))
    assert cov.view.clock.text().startswith("last at step 197")
    dis.view.spin.setValue(0)
    assert dis.view.clock.text() == "measurements off"
    services.close(wait=True)


def test_the_clock_shows_the_cost_aware_spacing() -> None:
    """A 3 s measurement is spaced 30 s apart by the worker (10x its cost), and the line says so."""
    line = clock_text(10.0, True, 100.0, 95.0, 40, 5.0, step=60, cost=3.0)
    assert line == "last at step 40, 5 s ago, 20 steps behind; every 30 s: 10x its 3.0 s cost; next in 25 s"
