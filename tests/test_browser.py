"""The Data set browser and drag-and-drop of image files, built alone on a fake client (offscreen, fast).

The browser only says which action was chosen on which thumbnail (``example_chosen``/``image_chosen``)
and tracks the Encode a feature sends for it; which feature does the action is the shell's wiring,
tested in test_shell_wiring.py. The last test is the end-to-end one: the whole window on a real CPU
worker, from a page of thumbnails to a live morph.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QWidget

from engines.shared import protocol
from engines.shared.datainfo import DataInfo
from engines.shared.spec import LatentSpec
from fakes import FakeClient, caps
from studio.features.browser.controller import PAGE, BrowserController
from studio.services import Services
from workers import real_window

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

DIGITS = DataInfo(spec="digits", kind="image", shape=(1, 8, 8), size=1000, n_train=900, n_test=100,
                  class_names=tuple(f"digit {k}" for k in range(10)))
RING = DataInfo(spec="ring", kind="points", shape=(2,), size=100, n_train=80, n_test=20,
                modes=((1.0, 0.0), (0.0, 1.0)))
D = 4


class Browser:
    """A BrowserController alone on a FakeClient, with what it emits and the notices it gives, recorded."""

    def __init__(self, qtbot, client: FakeClient) -> None:  # noqa: ANN001
        self.client = client
        self.services = Services(client)
        self.browser = BrowserController(self.services)
        self.view = self.browser.view
        qtbot.addWidget(self.view)
        self.notices: list[tuple[str, str, str]] = []  # (message, level, status)
        self.examples: list[tuple[str, int]] = []
        self.images: list[tuple[str, np.ndarray, str]] = []
        self.services.notice.connect(lambda *args: self.notices.append(args))
        self.browser.example_chosen.connect(lambda *args: self.examples.append(args))
        self.browser.image_chosen.connect(lambda *args: self.images.append(args))

    def ready(self, info: DataInfo = DIGITS, has_encoder: bool = True) -> None:
        self.client.ready.emit(protocol.Ready(model="m", family="vae" if has_encoder else "gan", data=info,
                                              capabilities=caps(has_encoder), latent=LatentSpec.gaussian(D), step=1))

    def errors(self) -> list[str]:
        return [message for message, level, _ in self.notices if level == "error"]


@pytest.fixture
def make(qtbot):
    """``make(info, has_encoder, state)``: a :class:`Browser`, its model ready unless ``state`` says there is none."""
    built: list[Browser] = []

    def build(info: DataInfo = DIGITS, has_encoder: bool = True, state: str = "ready") -> Browser:
        b = Browser(qtbot, FakeClient(state=state))
        built.append(b)
        if state == "ready":
            b.ready(info, has_encoder)
        return b

    yield build
    for b in built:
        b.services.close()


def answer_page(client: FakeClient) -> protocol.GetExamples:
    """Answer the newest GetExamples: image i is filled with i / 100, its label is i % 10."""
    cmd = client.of(protocol.GetExamples)[-1]
    idx = np.asarray(cmd.indices)
    images = np.ones((len(idx), 1, 8, 8), np.float32) * (idx / 100.0).astype(np.float32)[:, None, None, None]
    client.examples.emit(protocol.Examples(request_id=cmd.request_id, indices=list(cmd.indices), images=images,
                                           labels=(idx % 10).astype(np.int64)))
    return cmd


def drop(host: QWidget, browser: BrowserController, paths) -> None:
    """Drag files over ``host`` (the widget the browser accepts drops on) and drop them.

    Qt delivers drag events only within a real drag session, so the browser's event filter
    (installed on ``host``) is handed the events directly.
    """
    assert host.acceptDrops()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    assert browser.eventFilter(host, enter) and enter.isAccepted()
    event = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    assert browser.eventFilter(host, event) and event.isAccepted()


def drop_host(qtbot, browser: BrowserController) -> QWidget:  # noqa: ANN001
    """A stand-in for the main window: a widget the browser accepts drops on."""
    host = QWidget()
    qtbot.addWidget(host)
    browser.accept_drops_on(host)
    return host


def test_pages_and_labels(make) -> None:
    b = make()
    client, view, browser = b.client, b.view, b.browser
    assert view.held_list.isVisibleTo(view)
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
    browser.request_page(99)  # clipped to the last page
    assert client.of(protocol.GetExamples)[-1].indices == list(range(2 * PAGE, 100))
    answer_page(client)
    assert view.held_list.count() == 100 - 2 * PAGE and not view.next_button.isEnabled()
    # actions on a held-out thumbnail: the browser says which (the shell hands it to the feature that does it)
    view.held_list.setCurrentRow(1)
    view.buttons["sliders"].click()
    view.buttons["keyframe"].click()
    view.buttons["morph-b"].click()
    assert b.examples == [("sliders", 2 * PAGE + 1), ("keyframe", 2 * PAGE + 1), ("morph-b", 2 * PAGE + 1)]
    assert not b.images and not client.of(protocol.Encode)  # the browser itself encodes nothing


def test_act_returns_the_request_the_chosen_feature_tracks(make) -> None:
    """``act`` emits the choice; the feature connected to it sends its Encode and ``track``s it before the emit returns."""
    b = make()
    client, view, browser = b.client, b.view, b.browser

    def encode_for_sliders(action: str, index: int) -> None:  # what the Explore feature does, through the shell
        browser.track(client.request_encode([index], view="explore"), f"held-out #{index}")

    browser.example_chosen.connect(encode_for_sliders)
    rid = browser.act("sliders", "held-out", 2 * PAGE + 1)
    enc = client.of(protocol.Encode)[-1]
    assert rid == enc.request_id and enc.indices == [2 * PAGE + 1] and b.examples == [("sliders", 2 * PAGE + 1)]
    assert view.status.text() == f"encoding... held-out #{2 * PAGE + 1}"
    client.encoded.emit(protocol.Encoded(request_id=rid + 1, view="explore", z=np.zeros((1, D), np.float32)))
    assert view.status.text() == f"encoding... held-out #{2 * PAGE + 1}"  # another request's answer
    client.encoded.emit(protocol.Encoded(request_id=enc.request_id, view="explore",
                                         z=np.full((1, D), 0.5, np.float32), images=np.zeros((1, 1, 8, 8), np.float32)))
    assert view.status.text() == "done"
    browser.example_chosen.disconnect(encode_for_sliders)
    assert browser.act("keyframe", "held-out", 3) == 0  # nothing tracked: nothing sent
    assert b.examples[-1] == ("keyframe", 3)
    assert browser.act("morph-a", "yours", 12345) == 0 and not b.images  # no such image of the user's
    idle = make(state="idle")
    assert idle.browser.act("sliders", "held-out", 0) == 0 and not idle.examples  # no model: nothing chosen


def test_points_data_has_a_note(make) -> None:
    b = make(RING)
    view = b.view
    assert not b.client.of(protocol.GetExamples)
    assert not view.held_list.isVisibleTo(view) and "2-D points" in view.note.text()


def test_drop_png_and_non_image(make, qtbot, tmp_path) -> None:
    b = make(has_encoder=False)  # a GAN: images are projected
    client, view, browser = b.client, b.view, b.browser
    host = drop_host(qtbot, browser)
    png = tmp_path / "my digit.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 32, dtype=np.uint8), (32, 1))).save(png)
    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    wide = tmp_path / "banner.png"
    Image.new("L", (5000, 1)).save(wide)  # too big: wider than any image we accept
    with qtbot.waitSignal(browser.images_loaded, timeout=10_000) as sig:
        drop(host, browser, [png, text, wide])
    assert sig.args == [1]
    assert view.yours_list.count() == 1 and view.yours_list.item(0).text() == "my digit.png"
    (image, name), = browser.user.values()
    assert image.shape == (1, 8, 8) and image.dtype == np.float32 and 0.0 <= image.min() < image.max() <= 1.0
    errors = b.errors()
    assert len(errors) == 2 and "notes.png" in errors[0] and "banner.png" in errors[1] and "5000" in errors[1]
    # a dropped image's action: the browser hands on the image and its name ...
    view.yours_list.setCurrentRow(0)
    view.buttons["morph-a"].click()
    (action, chosen, chosen_name), = b.images
    assert action == "morph-a" and chosen_name == "my digit.png" and chosen.shape == (1, 8, 8)
    np.testing.assert_array_equal(chosen, image)
    # ... and says "projecting..." until the Encode the feature sent (and tracked) is answered
    rid = client.request_encode_images(chosen[None], view="morph")
    browser.track(rid, chosen_name)
    assert view.status.text().startswith("projecting... my digit.png")
    client.progress.emit(protocol.Progress(task="project", done=40, total=200))
    assert "40/200" in view.status.text()
    client.encoded.emit(protocol.Encoded(request_id=rid, view="morph", z=np.full((1, D), 0.1, np.float32),
                                         images=chosen[None]))
    assert view.status.text() == "done"
    view.buttons["sliders"].click()
    assert b.images[-1][0] == "sliders" and b.images[-1][2] == "my digit.png"
    browser.track(client.request_encode_images(b.images[-1][1][None], view="explore"), "my digit.png")
    client.error.emit(protocol.Error(message="projection failed", command="Encode"))
    assert "projection failed" in view.status.text()
    # a file that is gone by the time it is loaded: a DataError naming it, in Messages
    with qtbot.waitSignal(browser.images_loaded, timeout=10_000) as sig:
        browser.open_files([str(tmp_path / "missing.png")])
    assert sig.args == [0] and "missing.png" in b.notices[-1][0]


def test_drop_before_a_model_is_reported(make, qtbot, tmp_path) -> None:
    b = make(state="idle")
    drop(drop_host(qtbot, b.browser), b.browser, [tmp_path / "a.png"])
    message, level, _ = b.notices[-1]
    assert "build a model first" in message and "a.png" in message and level == "error"


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
            drop(w, w.browser, [png])
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
