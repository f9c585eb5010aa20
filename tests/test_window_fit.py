"""The window on a laptop: it fits 1366x768 with every control reachable, and the first-hour rough edges.

Fake client, offscreen: the minimum size, the docks and tab bars as laid out at 1366x768 and
1920x1080, Build asking before it discards a trained model, Space for Start / Pause / Resume, the
focus staying put after Start, the shortcuts listed in Help, and the dock layout saved, restored
and reset.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QAbstractButton, QApplication, QMessageBox, QTabBar

from engines.shared import protocol
from engines.shared.datainfo import DataInfo
from engines.shared.spec import LatentSpec
from fakes import FakeClient, caps

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

SHAPES = DataInfo(spec="shapes", kind="image", shape=(1, 64, 64), size=1000, n_train=900, n_test=100,
                  factor_names=("shape", "scale", "orientation", "x", "y"))


def ready(dim: int = 10, step: int = 0) -> protocol.Ready:
    return protocol.Ready(model="vae", family="vae", data=SHAPES, capabilities=caps(True),
                          latent=LatentSpec.gaussian(dim), step=step)


@pytest.fixture
def window(qtbot):
    """``window(state, step)``: a MainWindow on a FakeClient in ``state`` after a VAE's Ready at ``step``."""
    made = []

    def build(state: str = "ready", step: int = 0, size: tuple[int, int] = (1366, 768)):
        from studio.shell.window import MainWindow

        client = FakeClient(state="idle")
        w = MainWindow(client=client)
        qtbot.addWidget(w)
        made.append(w)
        client.ready.emit(ready(step=step))
        client.state, client.step = state, step
        client.state_changed.emit(state)
        w.resize(*size)
        w.dock_layout.fit(*size)
        w.show()
        qtbot.waitExposed(w)
        QApplication.processEvents()
        return w, client

    yield build
    for w in made:
        w.close()


def _inside(w, widget) -> bool:
    """Whether ``widget`` lies wholly inside the window's client area."""
    top_left = widget.mapTo(w, widget.rect().topLeft())
    return (top_left.x() >= 0 and top_left.y() >= 0 and top_left.x() + widget.width() <= w.width()
            and top_left.y() + widget.height() <= w.height())


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)])
def test_the_window_fits_the_screen_and_every_button_is_whole(window, size) -> None:
    """At 1366x768 (and 1920x1080) the window keeps the size asked for and no button is clipped or off screen."""
    w, _ = window(size=size)
    hint = w.minimumSizeHint()
    assert hint.width() <= 1366 and hint.height() <= 768
    assert (w.width(), w.height()) == size
    for dock in w.docks.values():
        if dock.isVisible() and not dock.visibleRegion().isEmpty():  # shown, not a tab behind another
            assert _inside(w, dock), dock.windowTitle()
    for name, button in w.train_panel.buttons.items():
        assert _inside(w, button), name
        assert button.visibleRegion().boundingRect().size() == button.size(), f"{name} is clipped"
    assert w.data_panel.build_button.visibleRegion().boundingRect().size() == w.data_panel.build_button.size()
    assert w.loss_panel.height() >= 180, "the loss plot is readable"


def test_no_stray_tab_bar_is_left_over_the_docks(window) -> None:
    """Tabifying leaves Qt's old "Losses | Coverage" bar shown; the layout hides it, also after Reset layout."""
    w, _ = window()

    def visible_bars():
        return [b for b in w.findChildren(QTabBar) if b.isVisible() and b.parent() is w]

    for _ in range(2):
        QApplication.processEvents()
        bars = visible_bars()
        groups = sorted(tuple(b.tabText(i) for i in range(b.count())) for b in bars)
        assert groups == [("Data && Model", "Data set"), ("Losses", "Coverage", "Disentanglement", "Runs", "Messages")]
        w.dock_layout.reset()
        QApplication.processEvents()


def test_build_asks_before_discarding_a_trained_model(window, qtbot) -> None:
    """Build on a model at step 14,727 opens a question; Cancel sends nothing, Discard and build sends Configure."""
    w, client = window(step=14_727)
    w.data_panel.build_button.click()
    box = w.data_model.confirm
    assert isinstance(box, QMessageBox) and box.isVisible() and "14,727" in box.text()
    assert not client.of(protocol.Configure)
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert not client.of(protocol.Configure) and w.data_model.confirm is None
    w.data_panel.build_button.click()
    w.data_model.confirm.button(QMessageBox.StandardButton.Discard).click()
    assert len(client.of(protocol.Configure)) == 1


def test_build_of_an_untrained_model_does_not_ask(window) -> None:
    w, client = window(step=0)
    w.data_panel.build_button.click()
    assert w.data_model.confirm is None and len(client.of(protocol.Configure)) == 1


def test_space_starts_pauses_and_resumes(window) -> None:
    """The Train menu's Space action presses whichever of Start, Pause and Resume the state enables."""
    w, client = window()
    act = w.shortcut_actions["start_pause"]
    assert act.shortcut().toString() == "Space"
    act.trigger()
    assert isinstance(client.sent[-1], protocol.Train)
    client.state = "training"
    client.state_changed.emit("training")
    act.trigger()
    assert isinstance(client.sent[-1], protocol.Pause)
    client.state = "paused"
    client.state_changed.emit("paused")
    act.trigger()
    assert isinstance(client.sent[-1], protocol.Resume)
    w.shortcut_actions["step"].trigger()  # paused: F10 trains one more step only when ready
    client.state = "ready"
    client.state_changed.emit("ready")
    w.shortcut_actions["step"].trigger()
    assert client.sent[-1] == protocol.Train(steps=1)


def test_start_leaves_the_focus_where_it_was(window, qtbot) -> None:
    """Start disables itself; the focus does not jump into "Train for" with its text selected."""
    w, client = window()
    w.explore_panel.setFocus()
    before = QApplication.focusWidget()
    w.train_panel.buttons["start"].click()
    client.state = "training"
    client.state_changed.emit("training")
    QApplication.processEvents()
    assert QApplication.focusWidget() is before
    assert QApplication.focusWidget() is not w.train_panel.steps_spin


def test_help_lists_every_shortcut(window) -> None:
    from studio.shell.menus import shortcuts, show_shortcuts

    w, _ = window()
    keys = dict(shortcuts(w))
    assert keys["Space"] == "Start / Pause / Resume" and keys["Ctrl+B"] == "Build model"
    assert keys["Ctrl+1"] == "Samples & decode tab" and keys["F10"] == "Train one step"
    box = show_shortcuts(w)
    assert box.isVisible() and not box.isModal() and "Build model" in box.text()
    box.close()


def test_view_menu_items_are_enabled(window) -> None:
    w, _ = window()
    view = next(a.menu() for a in w.menuBar().actions() if a.text() == "&View")
    assert all(a.isEnabled() for a in view.actions() if not a.isSeparator())


def test_dock_layout_is_saved_restored_and_reset(window, tmp_path) -> None:
    """Closing saves the docks to the settings they were restored from; Reset layout shows every dock again."""
    settings = QSettings(str(tmp_path / "studio.ini"), QSettings.Format.IniFormat)
    w, _ = window()
    assert not w.dock_layout.restore(settings)  # nothing saved yet
    w.docks["Messages"].hide()
    w.docks["Explore"].hide()
    w.close()
    w2, _ = window()
    assert w2.dock_layout.restore(QSettings(str(tmp_path / "studio.ini"), QSettings.Format.IniFormat))
    QApplication.processEvents()
    assert not w2.docks["Explore"].isVisible()
    w2.dock_layout.reset()
    QApplication.processEvents()
    assert not any(d.isHidden() for d in w2.docks.values())  # every dock shown again, the two hidden ones too
    assert w2.docks["Explore"].isVisible()


def test_every_train_and_build_control_explains_itself(window) -> None:
    w, _ = window()
    controls: list[QAbstractButton] = [w.data_panel.build_button]
    assert all(c.toolTip() for c in controls)
    assert w.train_panel.steps_spin.toolTip()


def test_open_demo_lists_the_demo_runs_and_loads_one(window, tmp_path) -> None:
    """File > Open demo lists run folders with a checkpoint; choosing one loads it, asking first over a trained model."""
    from studio.shell.menus import demos, open_demo

    for name in ("vae-digits", "gan-ring"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(b"")
    (tmp_path / "not-a-run").mkdir()
    found = demos(tmp_path)
    assert list(found) == ["gan-ring", "vae-digits"] and demos(tmp_path / "missing") == {}
    w, client = window(step=0)
    open_demo(w, found["vae-digits"])
    assert client.of(protocol.LoadCheckpoint)[-1].path == str(found["vae-digits"])
    w2, client2 = window(step=500)
    open_demo(w2, found["gan-ring"])
    assert not client2.of(protocol.LoadCheckpoint) and "gan-ring" in w2.data_model.confirm.text()
    w2.data_model.confirm.button(QMessageBox.StandardButton.Discard).click()
    assert client2.of(protocol.LoadCheckpoint)[-1].path == str(found["gan-ring"])
    file_menu = next(a.menu() for a in w.menuBar().actions() if a.text() == "&File")
    assert any(a.text() == "Open demo" for a in file_menu.actions())


def test_startup_timings_are_written_at_the_first_ready(qtbot, tmp_path) -> None:
    """benchmarks/cold_start.py's probe: paint, answering, worker start and model ready, in launch seconds."""
    import json
    import time

    from studio.shell.window import MainWindow
    from studio.timings import StartupTimings

    client = FakeClient(state="idle")
    w = MainWindow(client=client)
    qtbot.addWidget(w)
    timings = StartupTimings(w, tmp_path / "t.json", time.time() - 1.0)
    w.show()
    qtbot.waitUntil(lambda: "answers_clicks" in timings.times and "first_paint" in timings.times, timeout=5000)
    client.started.emit(protocol.Started(pid=1, device="cpu"))
    client.ready.emit(ready())
    got = json.loads((tmp_path / "t.json").read_text())
    assert set(got) >= {"window_built", "first_paint", "answers_clicks", "worker_started", "model_ready"}
    assert all(1.0 <= v < 60 for v in got.values())
    w.close()


def test_every_control_has_a_tooltip(window) -> None:
    """Every button, spin box and combo box of the window says what it does on hover (tab and dock
    title-bar buttons, Qt's own, aside)."""
    from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QDockWidget, QTableWidget

    from studio.shell.tooltips import TOOLTIPS, apply_tooltips

    w, _ = window()
    assert apply_tooltips(w) == 0  # all applied at construction, every key still names a control
    assert len(TOOLTIPS) > 40
    bare = []
    for cls in (QAbstractButton, QAbstractSpinBox, QComboBox):
        for control in w.findChildren(cls):
            if isinstance(control.parent(), (QTabBar, QDockWidget, QTableWidget)) or control.parent() is None:
                continue
            if isinstance(control.parent().parent(), QTableWidget) or control.objectName().startswith("qt_"):
                continue  # Qt's own: table corners, the menu bar's overflow arrow
            if getattr(control, "text", lambda: "")() in ("Cancel", "Dismiss"):
                continue  # says what it does
            if not control.toolTip():
                bare.append((type(control).__name__, getattr(control, "text", lambda: "")()))
    assert not bare, bare


@pytest.mark.parametrize("size,columns", [((1366, 768), 1), ((1920, 1080), 2)])
def test_the_flow_tab_stacks_its_boxes_when_two_columns_do_not_fit(window, size, columns) -> None:
    """On a laptop the Flow tab's four boxes go one under another (scrolling down, not sideways)."""
    w, _ = window(size=size)
    w.central_tabs.setCurrentWidget(w.flow.view)
    QApplication.processEvents()
    assert w.flow.view.columns == columns
    room = _viewport(w.flow.view)
    assert w.flow.view.width() <= room.width() + 1  # nothing hidden to the right


def test_the_flow_tab_still_fits_with_a_trained_models_captions_and_sliders(window) -> None:
    """At 1920x1080 the captions a trained flow writes (bits/dim of every frame) and six direction sliders
    do not push the tab wider than its room: long captions are elided, whole in their tooltips."""
    w, _ = window(size=(1920, 1080))
    v = w.flow.view
    w.central_tabs.setCurrentWidget(v)
    v.set_directions([f"PC{i + 1} ({4.3 - 0.4 * i:.1f}% of variance)" for i in range(6)])
    caption = "T = 0.7  |  " + "  ".join(["1.697"] * 8) + " bits/dim"
    v.samples.set_title(caption)
    v.recon.set_title("f^-1(f(x)): max |error| 1.8e-07 and a caption far longer than its picture")
    QApplication.processEvents()
    QApplication.processEvents()
    room = _viewport(v)
    assert v.width() <= room.width() + 1 and v.height() <= room.height() + 1  # no scroll bar either way
    assert v.samples.title.toolTip() == caption


def _viewport(page):
    """The viewport of the scroll area ``page`` is in."""
    from PySide6.QtWidgets import QScrollArea

    area = page.parentWidget()
    while not isinstance(area, QScrollArea):
        area = area.parentWidget()
    return area.viewport()


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)])
def test_no_tab_or_dock_scrolls_when_its_minimum_fits(window, size) -> None:
    """A page scrolls only where its minimum size does not fit: word-wrapped text (the Flow and Pixels tabs'
    notes, Explore's header) does not make a page taller than its room, and no tab scrolls sideways."""
    from PySide6.QtWidgets import QDockWidget, QScrollArea

    from studio.widgets.scrolling import page_of

    w, _ = window(size=size)
    tabs = w.central_tabs
    tall, seen = [], []
    for area in w.findChildren(QScrollArea):
        page = page_of(area)
        for i in range(tabs.count()):
            if tabs.page(i) is page:
                tabs.setCurrentIndex(i)
        if isinstance(area.parentWidget(), QDockWidget):
            area.parentWidget().raise_()  # a dock tabbed behind another comes to the front
        QApplication.processEvents()
        QApplication.processEvents()  # a page that re-arranges when shown settles in the next pass
        if page is None or not area.isVisibleTo(w):
            continue  # a dock tabbed behind another
        seen.append(type(page).__name__)
        room, need = area.viewport().size(), page.minimumSizeHint()
        if page.height() > max(room.height(), need.height()) + 1 or page.width() > max(room.width(), need.width()) + 1:
            tall.append((type(page).__name__, page.size().toTuple(), room.toTuple()))
        if type(page).__name__ not in ("CoveragePanel", "DisentanglementPanel"):  # wide tables scroll sideways
            assert need.width() <= room.width() + 1, (type(page).__name__, need.toTuple(), room.toTuple())
    assert not tall, tall
    assert {"FlowView", "PixelsView", "MorphView", "ExplorePanel", "DataModelPanel", "BrowserPanel"} <= set(seen)
