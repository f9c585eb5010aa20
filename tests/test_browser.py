"""The Data set browser and drag-and-drop of image files, driven by synthetic events (offscreen, fast)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent

from engines.shared import protocol
from engines.shared.datainfo import DataInfo
from engines.shared.spec import LatentSpec
from fakes import FakeClient, caps
from studio.features.browser.controller import PAGE
from workers import real_window

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

DIGITS = DataInfo(spec="digits", kind="image", shape=(1, 8, 8), size=1000, n_train=900, n_test=100,
                  class_names=tuple(f"digit {k}" for k in range(10)))
RING = DataInfo(spec="ring", kind="points", shape=(2,), size=100, n_train=80, n_test=20,
                modes=((1.0, 0.0), (0.0, 1.0)))
D = 4


def make_window(qtbot, info: DataInfo = DIGITS, has_encoder: bool = True):
    from studio.shell.window import MainWindow

    client = FakeClient()
    w = MainWindow(client=client)
    qtbot.addWidget(w)
    client.ready.emit(protocol.Ready(model="m", family="vae" if has_encoder else "gan", data=info,
                                     capabilities=caps(has_encoder), latent=LatentSpec.gaussian(D), step=1))
    return w, client


def answer_page(client: FakeClient) -> protocol.GetExamples:
    """Answer the newest GetExamples: image i is filled with i / 100, its label is i % 10."""
    cmd = client.of(protocol.GetExamples)[-1]
    idx = np.asarray(cmd.indices)
    images = np.ones((len(idx), 1, 8, 8), np.float32) * (idx / 100.0).astype(np.float32)[:, None, None, None]
    client.examples.emit(protocol.Examples(request_id=cmd.request_id, indices=list(cmd.indices), images=images,
                                           labels=(idx % 10).astype(np.int64)))
    return cmd


def drop(w, paths) -> None:
    """Drag files over the window and drop them.

    Qt delivers drag events only within a real drag session, so the window's event filter (the
    browser controller, installed on the window) is handed the events directly.
    """
    assert w.acceptDrops()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    assert w.browser.eventFilter(w, enter) and enter.isAccepted()
    event = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    assert w.browser.eventFilter(w, event) and event.isAccepted()


def test_pages_and_labels(qtbot) -> None:
    w, client = make_window(qtbot)
    view = w.browser.view
    assert "Data set" in w.docks and view.held_list.isVisibleTo(view)
    cmd = answer_page(client)
    assert cmd.split == "test" and cmd.indices == list(range(PAGE))
    assert view.held_list.count() == PAGE
    assert view.held_labels()[:2] == ["#0: digit 0", "#1: digit 1"] and view.held_labels()[13] == "#13: digit 3"
    assert view.page_label.text() == "page 1 / 3" and not view.prev_button.isEnabled()
    view.next_button.click()
    view.next_button.click()  # the second click asks for page 2 again (page 1 not shown yet): newest wins
    first, last = client.of(protocol.GetExamples)[-2:]
    assert first.indices == list(range(PAGE, 2 * PAGE))
    stale = protocol.Examples(request_id=first.request_id, indices=first.indices,
                              images=np.zeros((PAGE, 1, 8, 8), np.float32))
    client.examples.emit(stale)
    assert view.held_labels()[0] == "#0: digit 0"  # an older page is not shown
    answer_page(client)
    assert view.held_labels()[0] == f"#{PAGE}: digit {PAGE % 10}" and view.page_label.text() == "page 2 / 3"
    w.browser.request_page(99)  # clipped to the last page
    assert client.of(protocol.GetExamples)[-1].indices == list(range(2 * PAGE, 100))
    answer_page(client)
    assert view.held_list.count() == 100 - 2 * PAGE and not view.next_button.isEnabled()
    # actions on a held-out thumbnail
    view.held_list.setCurrentRow(1)
    view.buttons["sliders"].click()
    enc = client.of(protocol.Encode)[-1]
    assert enc.view == "explore" and enc.indices == [2 * PAGE + 1]
    assert view.status.text() == f"encoding... held-out #{2 * PAGE + 1}"
    client.encoded.emit(protocol.Encoded(request_id=enc.request_id, view="explore",
                                         z=np.full((1, D), 0.5, np.float32), images=np.zeros((1, 1, 8, 8), np.float32)))
    np.testing.assert_allclose(w.explore_panel.z(), 0.5)
    assert view.status.text() == "done"
    view.buttons["keyframe"].click()
    assert client.of(protocol.Encode)[-1].view == "interpolate"
    view.buttons["morph-b"].click()
    enc = client.of(protocol.Encode)[-1]
    assert enc.view == "morph" and enc.indices == [2 * PAGE + 1]
    client.encoded.emit(protocol.Encoded(request_id=enc.request_id, view="morph", z=np.ones((1, D), np.float32)))
    np.testing.assert_array_equal(w.morph.slots["B"].z, np.ones(D))
    w.close()


def test_points_data_has_a_note(qtbot) -> None:
    w, client = make_window(qtbot, RING)
    view = w.browser.view
    assert not client.of(protocol.GetExamples)
    assert not view.held_list.isVisibleTo(view) and "2-D points" in view.note.text()
    w.close()


def test_drop_png_and_non_image(qtbot, tmp_path) -> None:
    w, client = make_window(qtbot, has_encoder=False)  # a GAN: images are projected
    view = w.browser.view
    png = tmp_path / "my digit.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 32, dtype=np.uint8), (32, 1))).save(png)
    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    wide = tmp_path / "banner.png"
    Image.new("L", (5000, 1)).save(wide)  # too big: wider than any image we accept
    with qtbot.waitSignal(w.browser.images_loaded, timeout=10_000) as sig:
        drop(w, [png, text, wide])
    assert sig.args == [1]
    assert view.yours_list.count() == 1 and view.yours_list.item(0).text() == "my digit.png"
    (image, name), = w.browser.user.values()
    assert image.shape == (1, 8, 8) and image.dtype == np.float32 and 0.0 <= image.min() < image.max() <= 1.0
    errors = [t for level, t in w.messages.lines if level == "error"]
    assert len(errors) == 2 and "notes.png" in errors[0] and "banner.png" in errors[1] and "5000" in errors[1]
    # a dropped image becomes a point: Encode with images, "projecting..." until Encoded arrives
    view.yours_list.setCurrentRow(0)
    view.buttons["morph-a"].click()
    enc = client.of(protocol.Encode)[-1]
    assert enc.view == "morph" and enc.indices is None and enc.images.shape == (1, 1, 8, 8)
    np.testing.assert_array_equal(enc.images[0], image)
    assert view.status.text().startswith("projecting... my digit.png")
    assert w.morph.view.captions["A"].text() == "projecting..."
    client.progress.emit(protocol.Progress(task="project", done=40, total=200))
    assert "40/200" in view.status.text()
    client.encoded.emit(protocol.Encoded(request_id=enc.request_id, view="morph", z=np.full((1, D), 0.1, np.float32),
                                         images=enc.images))
    assert view.status.text() == "done" and w.morph.view.captions["A"].text() == "my digit.png"
    view.buttons["sliders"].click()
    enc = client.of(protocol.Encode)[-1]
    assert enc.view == "explore" and enc.images.shape == (1, 1, 8, 8)
    client.error.emit(protocol.Error(message="projection failed", command="Encode"))
    assert "projection failed" in view.status.text()
    # a file that is gone by the time it is loaded: a DataError naming it, in Messages
    with qtbot.waitSignal(w.browser.images_loaded, timeout=10_000) as sig:
        w.browser.open_files([str(tmp_path / "missing.png")])
    assert sig.args == [0] and "missing.png" in w.messages.lines[-1][1]
    w.close()


def test_drop_before_a_model_is_reported(qtbot, tmp_path) -> None:
    from studio.shell.window import MainWindow

    w = MainWindow(client=FakeClient(state="idle"))
    qtbot.addWidget(w)
    drop(w, [tmp_path / "a.png"])
    assert "build a model first" in w.messages.lines[-1][1] and "a.png" in w.messages.lines[-1][1]
    w.close()


@pytest.mark.qt_log_ignore("propagateSizeHints")
def test_real_worker_browser_to_morph(qtbot, tmp_path) -> None:
    """End to end on digits: a page of thumbnails, a dropped PNG encoded into B, held-out #0 into A, a live morph."""
    with real_window(tmp_path / "home") as w:
        client = w.client
        qtbot.waitUntil(lambda: client.state == "idle", timeout=90_000)
        w.send_metric_schedule()
        with qtbot.waitSignal(client.ready, timeout=60_000):
            w.configure(protocol.Configure(data="digits", model="vae", image_size=16, latent_dim=D, seed=3,
                                           batch_size=32))
        qtbot.waitUntil(lambda: w.browser.view.held_list.count() == PAGE, timeout=20_000)
        assert w.browser.view.held_labels()[0].startswith("#0: ")
        png = tmp_path / "mine.png"
        Image.fromarray(np.tile(np.linspace(0, 255, 20, dtype=np.uint8), (20, 1))).save(png)
        with qtbot.waitSignal(w.browser.images_loaded, timeout=10_000):
            drop(w, [png])
        key = w.browser.view.user_keys()[0]
        assert w.browser.act("morph-b", "yours", key) and w.browser.act("morph-a", "held-out", 0)
        qtbot.waitUntil(lambda: w.morph.slots["A"].z is not None and w.morph.slots["B"].z is not None, timeout=20_000)
        w.morph.view.row("z1").check.setChecked(True)
        want = w.morph.result_z()
        np.testing.assert_array_equal(want[[0, 2, 3]], w.morph.slots["A"].z[[0, 2, 3]])
        assert want[1] == w.morph.slots["B"].z[1]
        rid = client.last_requested("morph")
        qtbot.waitUntil(lambda: client.last_delivered("morph") >= rid, timeout=20_000)
        assert w.morph.view.result_picture().shape == (1, 16, 16)
