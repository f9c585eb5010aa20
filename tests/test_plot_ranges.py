"""The loss plot's view ranges follow the data but change rarely (each change repaints the axes)."""

from __future__ import annotations

import numpy as np
import pytest

from engines.shared import protocol
from studio.state import nice_ceiling, stable_range


@pytest.mark.parametrize("x, want", [(1, 1), (1.5, 2), (2, 2), (3, 5), (7, 10), (10, 10), (11, 20), (0.03, 0.05), (0, 1)])
def test_nice_ceiling(x: float, want: float) -> None:
    assert nice_ceiling(x) == pytest.approx(want)


def test_stable_range_keeps_a_range_that_still_fits() -> None:
    first = stable_range(None, 100.0, 600.0)
    assert first is not None and first[0] < 100 and first[1] > 600
    assert stable_range(first, 150.0, 550.0) is None  # inside and still filling it: keep
    grown = stable_range(first, 100.0, 900.0)  # data left the view: move
    assert grown is not None and grown[1] > 900
    shrunk = stable_range(first, 300.0, 310.0)  # data fill a sliver of the view: zoom in
    assert shrunk is not None and shrunk[1] - shrunk[0] < 50
    assert stable_range(None, 5.0, 5.0) is not None  # a flat line still gets a range
    assert stable_range(first, float("nan"), 1.0) is None


def test_loss_plot_follows_without_moving_on_every_redraw(qtbot) -> None:
    from studio.features.losses.view import LossPlotPanel

    panel = LossPlotPanel(refresh_hz=1)
    qtbot.addWidget(panel)
    vb = panel.plot.getPlotItem().vb

    def feed(start: int, values: np.ndarray) -> None:
        steps = np.arange(start, start + len(values))
        panel.add_metrics(protocol.StepMetrics(steps=steps, names=["recon", "kl"], values=values.astype(np.float32)))
        panel.refresh()

    feed(0, np.column_stack([np.linspace(600, 400, 12), np.linspace(1, 3, 12)]))
    (x0, x1), (y0, y1) = vb.viewRange()
    assert x0 <= 0 and x1 >= 20 and y0 <= 400 and y1 >= 600  # x grows to a 1-2-5 step: 0..20
    feed(12, np.column_stack([np.full(5, 450.0), np.full(5, 2.0)]))  # inside the view: nothing moves
    assert vb.viewRange() == [[x0, x1], [y0, y1]]
    feed(17, np.column_stack([np.full(20, 900.0), np.full(20, 2.0)]))  # out of view: it follows
    (_, x1b), (_, y1b) = vb.viewRange()
    assert x1b >= 36 and y1b >= 900
    vb.sigRangeChangedManually.emit([True, True])  # the user zoomed: stop following
    feed(37, np.column_stack([np.full(5, 5000.0), np.full(5, 2.0)]))
    assert vb.viewRange()[1][1] < 5000
    panel.fit()  # and "Fit" resumes
    assert vb.viewRange()[1][1] >= 5000
