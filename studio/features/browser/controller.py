"""The Data set browser's glue: pages of held-out examples, the user's own image files, and their actions.

:class:`BrowserController` asks the worker for pages of the held-out split
(:class:`~engines.shared.protocol.GetExamples`, newest page wins), loads image files the user drops on the
window or opens (:func:`engines.shared.image_files.load_image_file`, on the window's background thread;
results come back through a queued signal) and turns a picked image into a point of the latent
space through Encode: the posterior mean where the model has an encoder, otherwise the worker's
projection (slow; the browser says "projecting..." until the answer arrives, and nothing blocks).
"""

from __future__ import annotations

import math
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtWidgets import QFileDialog

from engines.shared import protocol
from engines.shared.datainfo import DataInfo
from engines.shared.image_files import load_image_file
from engines.shared.errors import LatentStudioError
from studio.client import MODEL_STATES
from studio.features.browser.view import BrowserPanel

if TYPE_CHECKING:
    from studio.shell.window import MainWindow

#: Thumbnails per page.
PAGE = 48
#: Most files loaded from one drop or one "Open images...".
MAX_FILES = 32
#: File dialog filter for "Open images...".
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.webp *.tif *.tiff);;All files (*)"


def load_images(paths: list[str], channels: int, size: int) -> list[tuple[str, np.ndarray | None, str]]:
    """Load image files as model inputs (runs on a background thread; never raises for a bad file).

    Parameters
    ----------
    paths : list of str
        Files the user handed us (untrusted).
    channels, size : int
        The model's image channels (1 or 3) and side in pixels.

    Returns
    -------
    list of (path, image or None, error)
        ``image`` (channels, size, size) float32 in [0, 1]; where a file cannot be used, None and an
        error message that names the file (not an image, too big, missing, ...).
    """
    out: list[tuple[str, np.ndarray | None, str]] = []
    for path in paths[:MAX_FILES]:
        try:
            out.append((path, load_image_file(path, channels, size), ""))
        except LatentStudioError as exc:
            out.append((path, None, str(exc)))
        except (OSError, ValueError) as exc:  # anything Pillow lets through: still the file's fault
            out.append((path, None, f"{path}: cannot be read as an image ({exc})"))
    for path in paths[MAX_FILES:]:
        out.append((path, None, f"{path}: skipped, at most {MAX_FILES} files at a time"))
    return out


class BrowserController(QObject):
    """Drives the Data set browser of ``window`` and its drag-and-drop of image files.

    Parameters
    ----------
    window : MainWindow
        Gives the client, the export thread (``window._executor``), the Messages panel, the
        Explore panel, the Interpolate controller (``window.interpolation``) and the Morph
        controller (``window.morph``). The controller accepts drops on the whole window (an
        event filter on it).

    Signals
    -------
    images_loaded(int)
        How many of the user's images were added (after a drop or "Open images...").
    """

    images_loaded = Signal(int)
    _loaded = Signal(object)  # list from load_images, queued from the background thread

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.view = BrowserPanel()
        self.info: DataInfo | None = None
        self.user: dict[int, tuple[np.ndarray, str]] = {}
        self._next_key = 1
        self._page_request = 0
        self._page_wanted = 0
        self._encodes: dict[int, str] = {}  # request id -> what it encodes
        self._has_encoder = False
        c = window.client
        c.ready.connect(self._on_ready)
        c.state_changed.connect(lambda s: self.view.set_can_encode(s in MODEL_STATES))
        c.encoded.connect(self._on_encoded)
        c.progress.connect(self._on_progress)
        c.error.connect(self._on_error)
        if hasattr(c, "examples"):
            c.examples.connect(self._on_examples)
        self._loaded.connect(self._on_loaded)
        self.view.page_requested.connect(self.request_page)
        self.view.action_requested.connect(self.act)
        self.view.open_requested.connect(self.ask_open)
        window.setAcceptDrops(True)
        window.installEventFilter(self)

    # -- pages -----------------------------------------------------------------------------------
    def n_pages(self) -> int:
        """Pages of :data:`PAGE` thumbnails in the held-out split (0 without image data)."""
        if self.info is None or self.info.kind != "image":
            return 0
        return math.ceil(self.info.n_test / PAGE)

    def request_page(self, page: int) -> int:
        """Ask for page ``page`` (clipped to the pages there are) of held-out examples; the request id (0: none)."""
        n = self.n_pages()
        if not n or self.window.client.state not in MODEL_STATES:
            return 0
        page = int(min(max(page, 0), n - 1))
        rid = next(self.window._ids)
        indices = list(range(page * PAGE, min((page + 1) * PAGE, self.info.n_test)))
        if not self.window.client.send(protocol.GetExamples(request_id=rid, indices=indices, split="test")):
            return 0
        self._page_request, self._page_wanted = rid, page
        return rid

    def _on_examples(self, event: protocol.Examples) -> None:
        if event.request_id != self._page_request or event.images is None:
            return  # another panel's examples, or an older page
        names = self.info.class_names if self.info is not None else None
        labels = []
        for k in range(len(event.indices)):
            y = None if event.labels is None or k >= len(event.labels) else int(event.labels[k])
            labels.append("" if y is None else (names[y] if names and 0 <= y < len(names) else str(y)))
        self.view.set_page(self._page_wanted, self.n_pages(), list(event.indices), event.images, labels)

    def _on_ready(self, ready: protocol.Ready) -> None:
        info = ready.data
        changed = self.info is None or info.spec != self.info.spec or info.shape != self.info.shape
        self.info, self._has_encoder = info, ready.capabilities.has_encoder
        self.view.set_kind(info.kind)
        self.view.set_can_encode(True)
        if changed:
            self.user.clear()
            self.view.clear_user_images()
        self.request_page(0 if changed else self.view.page)

    # -- the user's images -----------------------------------------------------------------------
    def open_files(self, paths: list[str]) -> Future | None:
        """Load image files on the background thread; they appear in "Your images" (errors in Messages).

        Returns the future of the load, or None when nothing is loaded (no model with image data:
        the reason goes to the Messages panel).
        """
        paths = [str(p) for p in paths if str(p)]
        if not paths:
            return None
        if self.info is None:
            self._log(f"Cannot use {Path(paths[0]).name}: build a model first (images are resized to its input size)")
            return None
        if self.info.kind != "image":
            self._log(f"Cannot use {Path(paths[0]).name}: the data set holds 2-D points, not images")
            return None
        channels, size = self.info.channels, self.info.image_size
        self.view.status.setText(f"loading {len(paths)} file{'s' * (len(paths) != 1)}...")
        future = self.window._executor.submit(load_images, paths, channels, size)
        future.add_done_callback(lambda f: self._loaded.emit(
            f.result() if f.exception() is None else [(paths[0], None, f"{paths[0]}: {f.exception()}")]))
        return future

    def _on_loaded(self, results: list) -> None:
        added = 0
        for path, image, error in results:
            if image is None:
                self._log(f"Could not use {error}")
                continue
            key, self._next_key = self._next_key, self._next_key + 1
            self.user[key] = (image, Path(path).name)
            self.view.add_user_image(key, image, Path(path).name)
            added += 1
        self.view.status.setText(f"added {added} image{'s' * (added != 1)}" if added else "no image added")
        if added:
            self.window.messages.log(f"Added {added} image{'s' * (added != 1)} to the Data set browser")
        self.images_loaded.emit(added)

    def ask_open(self) -> None:
        """"Open images...": a file dialog, then :meth:`open_files`."""
        paths, _ = QFileDialog.getOpenFileNames(self.window, "Open images", "", IMAGE_FILTER)
        if paths:
            self.open_files(paths)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        """Accept file drops anywhere on the window and load them."""
        if obj is self.window and event.type() in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
                event.acceptProposedAction()
                return True
        elif obj is self.window and event.type() == QEvent.Type.Drop and event.mimeData().hasUrls():
            paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
            event.acceptProposedAction()
            if "Data set" in self.window.docks:
                self.window.docks["Data set"].raise_()  # show where the images land
            self.open_files(paths)
            return True
        return super().eventFilter(obj, event)

    # -- actions ---------------------------------------------------------------------------------
    def act(self, action: str, source: str, key: int) -> int:
        """Run a thumbnail action ("sliders", "keyframe", "morph-a", "morph-b") on a held-out index or a user image.

        Returns the Encode request id (0: nothing sent). Until its answer the browser shows
        "encoding..." (or "projecting..." for a model without encoder).
        """
        w, c = self.window, self.window.client
        if c.state not in MODEL_STATES:
            return 0
        if source == "held-out":
            what = f"held-out #{key}"
            if action == "sliders":
                rid = c.request_encode([int(key)], view="explore", split="test")
                w._encode_index[rid] = int(key)
                w.explore_panel.index_spin.setValue(int(key))
            elif action == "keyframe":
                rid = w.interpolation.add_example(int(key))
            else:
                rid = w.morph.set_from_example("A" if action == "morph-a" else "B", int(key))
        else:
            if key not in self.user:
                return 0
            image, what = self.user[key]
            if action in ("sliders", "keyframe"):
                rid = c.request_encode_images(image[None], view="explore" if action == "sliders" else "interpolate")
            else:
                rid = w.morph.set_from_image("A" if action == "morph-a" else "B", image, what)
        if rid:
            self._encodes[rid] = what
            self._show_busy()
        return rid

    def busy_text(self) -> str:
        """What the browser says while Encode requests are unanswered ("" when none)."""
        if not self._encodes:
            return ""
        verb = "encoding" if self._has_encoder else "projecting"
        return f"{verb}... {', '.join(self._encodes.values())}"

    def _show_busy(self, extra: str = "") -> None:
        self.view.status.setText(self.busy_text() + extra)

    def _on_encoded(self, event: protocol.Encoded) -> None:
        if self._encodes.pop(event.request_id, None) is not None:
            self._show_busy()
            if not self._encodes:
                self.view.status.setText("done")

    def _on_progress(self, event: protocol.Progress) -> None:
        if self._encodes and "project" in event.task.lower():
            total = f"/{event.total}" if event.total else ""
            self._show_busy(f" ({event.done}{total} {event.message})".replace(" )", ")"))

    def _on_error(self, event: protocol.Error) -> None:
        if event.command == "Encode" and self._encodes:
            self._encodes.clear()
            self.view.status.setText(f"encode failed: {event.message}")

    def _log(self, message: str) -> None:
        self.window.messages.log(message, "error")
        self.window.statusBar().showMessage(message, 8000)
        self.view.status.setText(message)
