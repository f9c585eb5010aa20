"""The Traversal tab and the factor-labelled Explore sliders, each feature built alone on a fake client (offscreen, fast).

The shell's part (the rows and the slider point following Explore, the tab's visibility, new sample
grids refreshing the grid) is tested in test_shell_wiring.py.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from engines.shared import protocol
from fakes import FakeClient, caps
from engines.shared.datainfo import DataInfo
from engines.shared.spec import LatentDim, LatentSpec
from studio.features.explore.controller import ExploreController
from studio.features.traversal.controller import TraversalController
from studio.features.traversal.state import labelled_traversal, traversal_picture
from studio.features.explore.view import ExplorePanel
from studio.services import Services
from studio.state import factor_of

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

IMAGES = DataInfo(spec="test", kind="image", shape=(1, 8, 8), size=64, n_train=56, n_test=8)
D = 4


def ready() -> protocol.Ready:
    return protocol.Ready(model="vae", family="vae", data=IMAGES, capabilities=caps(True),
                          latent=LatentSpec.gaussian(D))


def traversed(command: protocol.Traverse, step: int = 10) -> protocol.Traversed:
    """A synthetic answer: row r is filled with (r + 1) / 10, column c adds c / 100."""
    r, s = len(command.dims), command.steps
    images = np.zeros((r, s, 1, 8, 8), np.float32)
    images += (np.arange(r, dtype=np.float32)[:, None, None, None, None] + 1) / 10
    images += np.arange(s, dtype=np.float32)[None, :, None, None, None] / 100
    return protocol.Traversed(request_id=command.request_id, step=step, dims=list(command.dims),
                              values=np.linspace(command.low, command.high, s, dtype=np.float32),
                              z=np.zeros((1, D), np.float32), images=images)


@pytest.fixture
def services():
    client = FakeClient()
    s = Services(client)
    yield s, client
    s.close()


@pytest.fixture
def traversal(qtbot, services):
    """A TraversalController alone, with a 4-dim VAE ready and Explore's rows in index order fed in (as the shell does)."""
    s, client = services
    t = TraversalController(s)
    qtbot.addWidget(t.view)
    client.ready.emit(ready())
    t.set_rows(list(range(D)), [f"z{d}" for d in range(D)])
    return t, client


def test_traversal_tab_requests_and_shows_grid(traversal, qtbot, tmp_path) -> None:
    t, client = traversal
    t.set_visible(True)
    t.set_rows([1, 3, 0, 2], ["z1", "z3", "z0", "z2"])  # Explore's order: most informative first
    rid = t.request()
    cmd = client.traverses()[-1]
    assert cmd.request_id == rid and cmd.dims == [1, 3, 0, 2]  # the rows in the order given
    assert cmd.steps == 9 and (cmd.low, cmd.high) == (-3.0, 3.0) and cmd.z is None and cmd.index is None
    client.traversed.emit(traversed(cmd))
    view = t.view
    assert view.labels == ["z1", "z3", "z0", "z2"]
    assert view.picture().shape == (4, 9, 1, 8, 8)
    assert view.item.image.shape == (4 * 9 - 1, 9 * 9 - 1)
    assert view.item.image[0, 0] == pytest.approx(0.1) and view.item.image[9 * 3, 9 * 8] == pytest.approx(0.48)
    ticks = view.plot.getAxis("left")._tickLevels[0]
    assert [t for _, t in ticks] == view.labels
    assert view.export_button.isEnabled()
    old = cmd
    # controls: base from the sliders, 5 steps over +-2: one new request each change, latest wins
    t.set_point(np.array([0.5, 0.0, 0.0, 0.0]))
    view.set_base("sliders")
    view.steps_spin.setValue(5)
    view.range_spin.setValue(2.0)
    cmd = client.traverses()[-1]
    assert cmd.steps == 5 and (cmd.low, cmd.high) == (-2.0, 2.0)
    np.testing.assert_allclose(cmd.z, [[0.5, 0, 0, 0]])
    client.traversed.emit(traversed(cmd, step=20))
    client.traversed.emit(traversed(old, step=5))  # a stale answer is not shown
    assert view.picture().shape == (4, 5, 1, 8, 8) and view.shown.step == 20
    view.set_base("example", index=3)
    cmd = client.traverses()[-1]
    assert cmd.index == 3 and cmd.z is None
    # export with labels, off the GUI thread
    client.traversed.emit(traversed(cmd, step=30))
    path = tmp_path / "traversal.png"
    with qtbot.waitSignal(t.services.exported, timeout=5000):
        t.export_png(path)
    png = Image.open(path)
    assert png.mode == "RGB" and png.width > 5 * 9 * 10 and png.height > 4 * 9 * 10
    # beside it, every cell's latent: the base with the row's dimension set to the column's value
    with open(tmp_path / "traversal.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 * 5 and list(rows[0])[:5] == ["row", "column", "dim", "label", "value"]
    for row in rows:
        z = np.array([float(row[f"z{i}"]) for i in range(D)])
        want = np.zeros(D)
        want[int(row["dim"])] = float(row["value"])
        np.testing.assert_allclose(z, want, atol=1e-6)
        assert row["label"] == view.labels[int(row["row"])]
    assert [float(r["value"]) for r in rows[:5]] == pytest.approx(np.linspace(-2, 2, 5))


def test_traversal_refreshes_while_training(traversal) -> None:
    t, client = traversal
    t.set_visible(True)
    n = len(client.traverses())
    assert n >= 1  # showing the tab asks for a grid
    t._asked_at = 0.0  # as if the last request were long ago
    t.refresh()  # what a new sample grid does (the shell connects it)
    assert len(client.traverses()) == n + 1
    t.refresh()
    assert len(client.traverses()) == n + 1  # not more often than every few seconds
    client.state_changed.emit("training")
    assert t.timer.isActive()
    client.state_changed.emit("paused")
    assert not t.timer.isActive()


def test_explore_labels_sliders_from_disentanglement(qtbot, services) -> None:
    s, client = services
    explore = ExploreController(s)
    qtbot.addWidget(explore.view)
    client.ready.emit(ready())
    mi = np.array([[0.71, 0.05], [0.02, 0.01], [0.3, 0.25], [0.0, 0.4]], np.float32)
    with qtbot.waitSignal(explore.rows_changed, timeout=1000) as rows:
        client.disentanglement.emit(protocol.DisentanglementMeasured(step=5, mi_matrix=mi, factor_names=["x", "y"]))
    assert [r.name.text() for r in explore.view.rows] == ["z0 \u00b7 x (0.71)", "z1", "z2", "z3 \u00b7 y (0.40)"]
    assert explore.view.row_label(0) == "z0: x (MI 0.71)"
    assert rows.args == [[0, 1, 2, 3], ["z0: x (MI 0.71)", "z1", "z2", "z3: y (MI 0.40)"]]  # what the traversal's rows get


def test_set_factor_labels() -> None:
    panel = ExplorePanel()
    panel.set_latent(LatentSpec((LatentDim("z0"), LatentDim("z1"), LatentDim("z2"))))
    panel.set_latent_kl(np.array([0.2, 1.5, 0.9]))
    panel.apply_order()
    order, kl_texts = panel.order.copy(), [r.kl.text() for r in panel.rows]
    mi = np.array([[0.05, 0.02, 0.0], [0.1, 0.9, 0.55], [0.12, 0.3, 0.25]])
    given = panel.set_factor_labels(mi, ["shape", "x", "y"])
    assert given == [None, "x", None]  # z0: below 0.1 nats; z2: 0.3 is not 1.5 x 0.25
    assert panel.rows[1].name.text() == "z1 \u00b7 x (0.90)"
    tip = panel.rows[1].name.toolTip()
    assert "x: 0.900" in tip and "y: 0.550" in tip and "shape: 0.100" in tip
    assert panel.rows[0].name.text() == "z0"
    assert np.array_equal(panel.order, order) and [r.kl.text() for r in panel.rows] == kl_texts
    # a collapsed dimension whose posterior mean follows a factor is not labelled by it (moving it does nothing)
    panel.set_latent_kl(np.array([0.2, 0.001, 0.9]))
    panel.apply_order()
    assert panel.rows[1].collapsed and panel.rows[1].name.text() == "z1" and panel.row_label(1) == "z1"
    assert "collapsed" in panel.rows[1].name.toolTip()
    assert panel.set_factor_labels(mi, ["shape", "x", "y"]) == [None, None, None]
    panel.set_latent_kl(np.array([0.2, 1.5, 0.9]))  # it opens again: the label comes back
    panel.apply_order()
    assert panel.row_label(1) == "z1: x (MI 0.90)"
    assert panel.set_factor_labels(None, []) == [None] * 3 and panel.rows[1].name.text() == "z1"
    assert panel.set_factor_labels(np.zeros((2, 3)), ["a", "b", "c"]) == [None] * 3  # wrong shape: cleared


@pytest.mark.parametrize("row, want", [
    ([0.71, 0.05], 0), ([0.09, 0.0], None), ([0.3, 0.25], None), ([0.3, 0.19], 0), ([0.0, 0.4, 0.1], 1),
    ([], None), ([np.nan, 0.2], 1),
])
def test_factor_of(row, want) -> None:
    assert factor_of(np.array(row)) == want


def test_labelled_traversal_picture() -> None:
    images = np.zeros((2, 3, 1, 4, 4), np.float32)
    images[1] = 1.0
    assert traversal_picture(images).shape == (1, 2 * 5 - 1, 3 * 5 - 1)
    out = np.asarray(labelled_traversal(images, ["z0: x (MI 0.71)", "z1"], np.array([-1, 0, 1]), target=140))
    assert out.ndim == 3 and out.shape[2] == 3
    assert (out == 255).all(axis=2).sum() >= 3 * 16 * 100  # the white row, upscaled 10x
    with pytest.raises(ValueError):
        labelled_traversal(images, ["only one"], np.array([-1, 0, 1]))


def test_the_menus_traversal_png_is_rendered_by_the_worker_with_its_sidecar(traversal, qtbot, tmp_path) -> None:
    """File > Export traversal sends an Export of kind traversal to a .png (the worker writes FILE.json
    beside it, as every export does) and writes every cell's latent to FILE.csv."""
    t, client = traversal
    t.set_visible(True)
    client.traversed.emit(traversed(client.traverses()[-1], step=30))
    path = tmp_path / "grid.png"
    with qtbot.waitSignal(t.services.exported, timeout=5000):
        rid = t.export_reproducible_png(path)
    export = client.of(protocol.Export)[-1]
    assert rid == export.request_id and export.kind == "traversal" and export.out == str(path)
    assert export.settings["labels"] is True and export.settings["size"] == 96
    assert (tmp_path / "grid.csv").is_file()
    with pytest.raises(ValueError, match=".png"):
        t.export_reproducible_png(tmp_path / "grid.gif")
