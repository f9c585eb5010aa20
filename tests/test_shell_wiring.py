"""The shell's wiring: each cross-feature connection MainWindow makes, one small test each (fake client, offscreen).

Every feature is tested alone in its own file (test_traversal_view.py, test_interpolate_view.py,
test_browser.py, test_metric_panels.py, ...); here a whole :class:`~studio.shell.window.MainWindow`
checks only that a signal of one feature reaches the one that acts on it.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QTabBar

from engines.shared import protocol
from engines.shared.results import DisentanglementScores, MixtureCoverage
from engines.shared.datainfo import DataInfo
from engines.shared.spec import LatentSpec
from fakes import FakeClient, caps

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

IMAGES = DataInfo(spec="digits", kind="image", shape=(1, 8, 8), size=1000, n_train=900, n_test=100,
                  class_names=tuple(f"digit {k}" for k in range(10)))
RING = DataInfo(spec="ring", kind="points", shape=(2,), size=1000, n_train=900, n_test=100,
                modes=tuple((float(np.cos(a)), float(np.sin(a))) for a in np.linspace(0, 2 * np.pi, 8, endpoint=False)),
                mode_std=0.05)
D = 4
#: Every score the Disentanglement panel plots (a curve with none would be all NaN).
SCORES = DisentanglementScores(mig=0.3, factor_vae_score=0.5, dci_disentanglement=0.3, sap=0.05, dci_completeness=0.4)


def ready(info: DataInfo = IMAGES, has_encoder: bool = True, dim: int = D) -> protocol.Ready:
    return protocol.Ready(model="vae" if has_encoder else "gan", family="vae" if has_encoder else "gan", data=info,
                          capabilities=caps(has_encoder), latent=LatentSpec.gaussian(dim), step=1)


@pytest.fixture
def make(qtbot):
    """``make(state, ready_event)``: a MainWindow on a FakeClient, the model of ``ready_event`` (None: none) ready."""
    windows = []

    def build(state: str = "ready", ready_event: protocol.Ready | None = ready()):
        from studio.shell.window import MainWindow

        client = FakeClient(state=state)
        w = MainWindow(client=client)
        qtbot.addWidget(w)
        windows.append(w)
        if ready_event is not None:
            client.ready.emit(ready_event)
        return w, client

    yield build
    for w in windows:
        w.close()


def traversed(command: protocol.Traverse) -> protocol.Traversed:
    r, s = len(command.dims), command.steps
    return protocol.Traversed(request_id=command.request_id, step=1, dims=list(command.dims),
                              values=np.linspace(command.low, command.high, s, dtype=np.float32),
                              z=np.zeros((1, D), np.float32), images=np.zeros((r, s, 1, 8, 8), np.float32))


def drop(w, paths) -> None:  # noqa: ANN001 - the MainWindow
    """Drop files on the window (handed to its event filter directly: Qt drags need a real drag session)."""
    assert w.acceptDrops()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    assert w.browser.eventFilter(w, enter) and enter.isAccepted()
    event = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    assert w.browser.eventFilter(w, event) and event.isAccepted()


def raised_dock(w, title: str) -> str:  # noqa: ANN001
    """The title of the dock on top in the tab group that holds the dock titled ``title``."""
    for bar in w.findChildren(QTabBar):
        titles = [bar.tabText(i).replace("&&", "&") for i in range(bar.count())]
        if title in titles:
            return titles[bar.currentIndex()]
    raise AssertionError(f"no dock tab titled {title!r}")


# -- Traversal: the tab, the rows, the slider point, new weights ---------------------------------------------------
def test_showing_the_traversal_tab_asks_for_a_grid(make) -> None:
    """central_tabs.currentChanged -> traversal.set_visible."""
    w, client = make()
    assert [w.central_tabs.tabText(i) for i in range(4)] == ["Samples && decode", "Traversal", "Interpolate", "Morph"]
    n = len(client.traverses())
    w.central_tabs.setCurrentWidget(w.traversal_view)
    assert w.traversal.visible and len(client.traverses()) == n + 1
    w.central_tabs.setCurrentWidget(w.interpolate_view)
    assert not w.traversal.visible


def test_traversal_rows_follow_explore(make, qtbot) -> None:
    """explore.rows_changed -> traversal.set_rows: the Explore panel's labels and its order (most informative first)."""
    w, client = make()
    assert w.traversal.rows.dims == [0, 1, 2, 3]
    mi = np.array([[0.71, 0.05], [0.02, 0.01], [0.3, 0.25], [0.0, 0.4]], np.float32)
    client.disentanglement.emit(protocol.DisentanglementMeasured(step=5, mi_matrix=mi, factor_names=["x", "y"],
                                                                 scores=SCORES))
    assert w.traversal.rows.labels == ["z0: x (MI 0.71)", "z1", "z2", "z3: y (MI 0.40)"]
    client.metrics.emit(protocol.StepMetrics(steps=np.zeros(0, np.int64), names=[], values=np.zeros((0, 0), np.float32),
                                             latent_kl=np.array([0.1, 2.0, 0.01, 1.0], np.float32)))
    qtbot.waitUntil(lambda: list(w.explore_panel.order) == [1, 3, 0, 2], timeout=3000)  # the panel re-sorts
    rid = w.traversal.request()
    cmd = client.traverses()[-1]
    assert cmd.request_id == rid and cmd.dims == [1, 3, 0, 2]  # most informative first, as Explore shows them
    client.traversed.emit(traversed(cmd))
    assert w.traversal_view.labels == [w.explore_panel.row_label(d) for d in (1, 3, 0, 2)]


def test_slider_moves_reach_the_traversal(make) -> None:
    """explore.point_changed -> traversal.set_point: around the sliders, a slider move asks for a new grid."""
    w, client = make()
    w.central_tabs.setCurrentWidget(w.traversal_view)
    w.traversal_view.set_base("sliders")
    w.explore_panel.set_z(np.array([0.5, 0.0, 0.0, 0.0]))
    cmd = client.traverses()[-1]
    np.testing.assert_allclose(cmd.z, [[0.5, 0, 0, 0]])


def test_the_traversal_knows_the_sliders_of_a_new_model(make, tmp_path) -> None:
    """Right after Ready, before any slider moves, "current sliders" is the Explore point (the prior centre)."""
    w, client = make()
    w.traversal_view.set_base("sliders")
    rid = w.traversal.export_animation(tmp_path / "sweep.mp4")
    cmd = client.of(protocol.Export)[-1]
    assert cmd.request_id == rid and cmd.latents["dims"] == [0, 1, 2, 3]
    assert cmd.latents["z"] is not None and len(cmd.latents["z"]) == D
    np.testing.assert_allclose(cmd.latents["z"], w.explore_panel.z())


def test_a_new_sample_grid_refreshes_the_traversal(make) -> None:
    """samples.weights_changed -> traversal.refresh (throttled: not more often than every few seconds)."""
    w, client = make()
    w.central_tabs.setCurrentWidget(w.traversal_view)
    n = len(client.traverses())
    assert n >= 1
    w.traversal._asked_at = 0.0  # as if the last request were long ago
    grid = protocol.Samples(request_id=-1, step=50, images=np.zeros((4, 1, 8, 8), np.float32))
    client.samples.emit(grid)
    assert len(client.traverses()) == n + 1
    client.samples.emit(protocol.Samples(request_id=-1, step=60, images=np.zeros((4, 1, 8, 8), np.float32)))
    assert len(client.traverses()) == n + 1


# -- Interpolate: the slider point -------------------------------------------------------------------------------
def test_slider_point_becomes_a_keyframe(make) -> None:
    """explore.point_changed -> interpolation.set_point: "Add current sliders" adds the Explore point."""
    w, client = make()
    view = w.interpolate_view
    w.explore_panel.set_z(np.array([0.5, -1.0, 0.0, 2.0]))
    view.sliders_button.click()
    view.random_button.click()
    np.testing.assert_allclose(w.explore_panel.z(), [0.5, -1.0, 0.0, 2.0])  # the sliders did not move
    assert [view.key_list.item(i).text() for i in range(2)] == ["1. current sliders", "2. random"]
    np.testing.assert_allclose(view.keyframes()[0], [0.5, -1.0, 0.0, 2.0])


# -- Data set browser: its actions, drops on the window -----------------------------------------------------------------
def _effect(w, action: str):  # noqa: ANN001, ANN202 - what the feature that did the action holds afterwards
    if action == "sliders":
        return w.explore_panel.z()
    if action == "keyframe":
        return w.interpolate_view.keyframes()[-1]
    return w.morph.slots["A" if action == "morph-a" else "B"].z


ACTIONS = [("sliders", "explore"), ("keyframe", "interpolate"), ("morph-a", "morph"), ("morph-b", "morph")]


@pytest.mark.parametrize("action, view", ACTIONS)
def test_browser_example_actions_reach_their_feature(make, action, view) -> None:
    """browser.example_chosen -> the feature's Encode of held-out #N, tracked by the browser until answered."""
    w, client = make()
    status = w.browser.view.status
    rid = w.browser.act(action, "held-out", 7)
    enc = client.of(protocol.Encode)[-1]
    assert rid and rid == enc.request_id and enc.view == view and enc.indices == [7] and enc.split == "test"
    assert status.text() == "encoding... held-out #7"
    client.encoded.emit(protocol.Encoded(request_id=rid, view=view, z=np.full((1, D), 0.5, np.float32),
                                         images=np.zeros((1, 1, 8, 8), np.float32)))
    assert status.text() == "done"
    np.testing.assert_allclose(_effect(w, action), np.full(D, 0.5))
    if action == "keyframe":
        assert w.interpolate_view.keys[-1][1] == "held-out #7"


@pytest.mark.parametrize("action, view", ACTIONS)
def test_browser_image_actions_reach_their_feature(make, qtbot, tmp_path, action, view) -> None:
    """browser.image_chosen -> the feature's Encode of the user's image (projected by a GAN), tracked until answered."""
    w, client = make(ready_event=ready(has_encoder=False))
    png = tmp_path / "my digit.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 32, dtype=np.uint8), (32, 1))).save(png)
    with qtbot.waitSignal(w.browser.images_loaded, timeout=10_000):
        w.browser.open_files([str(png)])
    key = w.browser.view.user_keys()[0]
    image = w.browser.user[key][0]
    rid = w.browser.act(action, "yours", key)
    enc = client.of(protocol.Encode)[-1]
    assert rid and rid == enc.request_id and enc.view == view and enc.indices is None
    np.testing.assert_array_equal(enc.images, image[None])
    assert w.browser.view.status.text().startswith("projecting... my digit.png")
    slot = {"morph-a": "A", "morph-b": "B"}.get(action)
    if slot:
        assert w.morph.view.captions[slot].text() == "projecting..."
    client.encoded.emit(protocol.Encoded(request_id=rid, view=view, z=np.full((1, D), 0.1, np.float32),
                                         images=enc.images))
    assert w.browser.view.status.text() == "done"
    np.testing.assert_allclose(_effect(w, action), np.full(D, 0.1))
    if slot:
        assert w.morph.view.captions[slot].text() == "my digit.png"


def test_files_dropped_on_the_window_go_to_the_browser(make, tmp_path) -> None:
    """browser.accept_drops_on(window), and browser.drop_received -> the "Data set" dock comes to the front."""
    w, client = make(state="idle", ready_event=None)
    assert "Data set" in w.docks and raised_dock(w, "Data set") == "Data & Model"
    drop(w, [tmp_path / "a.png"])
    assert raised_dock(w, "Data set") == "Data set"
    level, text = w.messages.lines[-1]
    assert level == "error" and "build a model first" in text and "a.png" in text


# -- Coverage and Disentanglement: schedules; notices ---------------------------------------------------------------
def test_metric_schedules_go_to_the_worker(make) -> None:
    """coverage/disentanglement schedule_changed -> one SetMetricSchedule of both; a new model gets it again."""
    w, client = make(state="idle", ready_event=None)
    assert len(w.tabifiedDockWidgets(w.docks["Losses"])) == 4  # Coverage, Disentanglement, Runs, Messages
    gan = ready(RING, has_encoder=False, dim=2)
    client.ready.emit(gan)
    w.coverage_panel.spin.setValue(0)
    assert client.sent[-1] == protocol.SetMetricSchedule(coverage_every=0.0,
                                                         disentanglement_every=w.disentangle_panel.schedule())
    w.disentangle_panel.spin.setValue(w.disentangle_panel.schedule() + 5)
    assert client.sent[-1] == protocol.SetMetricSchedule(coverage_every=0.0,
                                                         disentanglement_every=w.disentangle_panel.schedule())
    n = len(client.of(protocol.SetMetricSchedule))
    client.ready.emit(gan)  # a new model: the non-default schedule is sent again
    assert isinstance(client.sent[-1], protocol.SetMetricSchedule) and len(client.of(protocol.SetMetricSchedule)) == n + 1


def test_feature_notices_reach_the_messages_log(make) -> None:
    """services.notice -> the Messages log and the status bar (here: the Coverage feature's collapse warning)."""
    w, client = make(state="idle", ready_event=ready(RING, has_encoder=False, dim=2))
    for step, captured in ((100, 8), (200, 1)):
        result = MixtureCoverage(n=200, modes_total=8, modes_captured=captured, high_quality_share=0.9, reverse_kl=0.1,
                                 per_mode_counts=(25,) * captured + (0,) * (8 - captured))
        client.coverage.emit(protocol.CoverageMeasured(step=step, metric="mixture", result=result))
    assert any("Mode collapse at step 200" in text for level, text in w.messages.lines if level == "warning")
    assert "Mode collapse at step 200" in w.statusBar().currentMessage()


def test_worker_warnings_reach_the_messages_panel(make) -> None:
    """The worker's warnings.showwarning sends Warned; the window logs it as a warning, not on the terminal."""
    import types
    import warnings

    from engines.worker.serve import Worker

    sent = []
    Worker.show_warning(types.SimpleNamespace(send=sent.append), "lbfgs failed to converge", UserWarning,
                        "/x/sklearn/linear_model/_logistic.py", 469)
    assert sent == [protocol.Warned(category="UserWarning", message="lbfgs failed to converge", where="_logistic.py:469")]
    w, client = make()
    client.warned.emit(sent[0])
    level, text = w.messages.lines[-1]
    assert level == "warning" and "lbfgs failed to converge" in text and "_logistic.py:469" in text
    assert warnings.showwarning is not Worker.show_warning


def test_while_a_slider_moves_the_grid_and_loss_plot_wait_for_it_to_rest(make, qtbot) -> None:
    """A slider move holds background redraws for a moment (the decoded image gets the GUI thread first):
    a new fixed-z grid is shown once the sliders rest, at most about a second late; the loss plot
    redraws at most once a second meanwhile."""
    import time

    from studio.features.losses.view import HELD_REDRAW_S

    w, client = make()
    w.explore_panel.set_value(0, 1.0)  # as a drag does
    assert w.services.interacting()
    client.samples.emit(protocol.Samples(request_id=-1, step=70, images=np.ones((4, 1, 8, 8), np.float32)))
    assert w.samples_view.step != 70  # held
    qtbot.waitUntil(lambda: w.samples_view.step == 70, timeout=3000)  # shown once the slider rests
    lp = w.loss_panel
    w.explore_panel.set_value(0, -1.0)
    lp._drawn_at = time.monotonic()
    lp.history.version += 1
    lp.refresh()
    assert lp._drawn_version != lp.history.version  # held while dragging
    lp._drawn_at -= HELD_REDRAW_S
    lp.refresh()
    assert lp._drawn_version == lp.history.version


def test_a_flows_density_is_drawn_and_named_as_a_density_not_a_critic(make) -> None:
    """A CoverageMeasured with a log-density map: the Samples view says "log-density" (not "judged real"),
    coloured dark to bright over its top nats, in the Coverage panel too."""
    from studio.widgets.basic import DENSITY_MAP

    w, client = make(ready_event=ready(RING, has_encoder=True, dim=2))
    grid = np.linspace(-20.0, -1.0, 16 * 16, dtype=np.float32).reshape(16, 16)
    grid[0, 0] = -np.inf
    event = protocol.CoverageMeasured(step=1500, metric="mixture", critic_units="log-density", critic=grid,
                                      extent=[-1.5, 1.5, -1.5, 1.5], samples=np.zeros((10, 2), np.float32),
                                      result=MixtureCoverage(modes_total=8, modes_captured=7, high_quality_share=0.1, n=10,
                                                                     reverse_kl=0.5))
    client.coverage.emit(event)
    title = w.samples_view.points.title.text()
    assert "log-density at step 1,500" in title and "judged real" not in title
    for item in (w.samples_view.points.critic, w.coverage_panel.critic):
        assert item.levels is not None and tuple(np.round(item.levels, 3)) == (-11.0, -1.0)
        assert item.getColorMap() is DENSITY_MAP
