"""The Data set browser's glue: pages of held-out examples, the user's own image files, and their actions.

:class:`BrowserController` asks the worker for pages of the held-out split
(:class:`~engines.shared.protocol.GetExamples`, newest page wins) and loads image files the user drops on the
window or opens (:func:`engines.shared.image_files.load_image_file`, on the export thread; results come
back through a queued signal). A thumbnail's action ("Set sliders", "Add as keyframe", "Morph: set A/B")
is a signal the shell connects to the feature that does it; that feature's Encode request is
tracked here, and the browser says "encoding..." (or "projecting..." for a model without an
encoder, which the worker answers by projection, slowly) until the answer arrives. Nothing blocks.
"""

from __future__ import annotations

import math
from concurrent.futures import Future
from pathlib import Path
import numpy as np
from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtWidgets import QFileDialog

from engines.shared import protocol
from engines.shared.datainfo import DataInfo
from engines.shared.image_files import load_image_file
from engines.shared.errors import LatentStudioError
from studio.features.browser.view import BrowserPanel
from studio.services import Services

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
    """Drives the Data set browser and the drag-and-drop of image files.

    Parameters
    ----------
    services : Services

    Signals
    -------
    images_loaded(int)
        How many of the user's images were added (after a drop or "Open images...").
    example_chosen(str, int)
        A thumbnail action ("sliders", "keyframe", "morph-a", "morph-b") on held-out example N.
    image_chosen(str, object, str)
        The same on one of the user's images: (action, image (C, H, W) float32, its name).
    drop_received()
        Files were dropped on the watched window (the shell shows the browser).
    """

    images_loaded = Signal(int)
    example_chosen = Signal(str, int)
    image_chosen = Signal(str, object, str)
    drop_received = Signal()
    _loaded = Signal(object)  # list from load_images, queued from the background thread

    def __init__(self, services: Services, parent: QObject | None = None) -> None:
        super().__init__(parent or services)
        self.services = services
        self.view = BrowserPanel()
        self.info: DataInfo | None = None
        self.user: dict[int, tuple[np.ndarray, str]] = {}
        self.requests = services.requests()
        self._next_key = 1
        self._page_wanted = 0
        self._encodes: dict[int, str] = {}  # request id -> what it encodes
        self._last_tracked = 0
        self._has_encoder = False
        self._watched: QObject | None = None
        c = services.client
        c.ready.connect(self._on_ready)
        c.state_changed.connect(lambda s: self.view.set_can_encode(services.has_model()))
        c.encoded.connect(self._on_encoded)
        c.progress.connect(self._on_progress)
        c.error.connect(self._on_error)
        c.examples.connect(self._on_examples)
        self._loaded.connect(self._on_loaded)
        self.view.page_requested.connect(self.request_page)
        self.view.action_requested.connect(self.act)
        self.view.open_requested.connect(self.ask_open)

    def accept_drops_on(self, widget) -> None:  # noqa: ANN001 - a QWidget
        """Load image files dropped anywhere on ``widget`` (the shell passes its main window)."""
        self._watched = widget
        widget.setAcceptDrops(True)
        widget.installEventFilter(self)

    # -- pages -----------------------------------------------------------------------------------
    def n_pages(self) -> int:
        """Pages of :data:`PAGE` thumbnails in the held-out split (0 without image data)."""
        if self.info is None or self.info.kind != "image":
            return 0
        return math.ceil(self.info.n_test / PAGE)

    def request_page(self, page: int) -> int:
        """Ask for page ``page`` (clipped to the pages there are) of held-out examples; the request id (0: none)."""
        n = self.n_pages()
        if not n or not self.services.has_model():
            return 0
        page = int(min(max(page, 0), n - 1))
        rid = self.requests.ask("page")
        indices = list(range(page * PAGE, min((page + 1) * PAGE, self.info.n_test)))
        if not self.services.send(protocol.GetExamples(request_id=rid, indices=indices, split="test")):
            return 0
        self._page_wanted = page
        return rid

    def _on_examples(self, event: protocol.Examples) -> None:
        if not self.requests.is_current("page", event.request_id) or event.images is None:
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
        future = self.services.submit(load_images, paths, channels, size)
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
            self.services.notify(f"Added {added} image{'s' * (added != 1)} to the Data set browser", status="")
        self.images_loaded.emit(added)

    def ask_open(self) -> None:
        """"Open images...": a file dialog, then :meth:`open_files`."""
        paths, _ = QFileDialog.getOpenFileNames(self.view, "Open images", "", IMAGE_FILTER)
        if paths:
            self.open_files(paths)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        """Accept file drops anywhere on the watched widget and load them."""
        if obj is self._watched and event.type() in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
                event.acceptProposedAction()
                return True
        elif obj is self._watched and event.type() == QEvent.Type.Drop and event.mimeData().hasUrls():
            paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
            event.acceptProposedAction()
            self.drop_received.emit()  # the shell shows where the images land
            self.open_files(paths)
            return True
        return super().eventFilter(obj, event)

    # -- actions ---------------------------------------------------------------------------------
    def act(self, action: str, source: str, key: int) -> int:
        """Run a thumbnail action ("sliders", "keyframe", "morph-a", "morph-b") on a held-out index or a user image.

        Emits :attr:`example_chosen` or :attr:`image_chosen`; the feature the shell connected sends
        its Encode and hands the request id to :meth:`track` before the emit returns. Returns that
        request id (0: nothing sent).
        """
        if not self.services.has_model():
            return 0
        self._last_tracked = 0
        if source == "held-out":
            self.example_chosen.emit(action, int(key))
        elif key in self.user:
            image, name = self.user[key]
            self.image_chosen.emit(action, image, name)
        return self._last_tracked

    def track(self, request_id: int, what: str) -> None:
        """Show "encoding... <what>" until the Encode ``request_id`` is answered (0: nothing was sent)."""
        if request_id:
            self._encodes[request_id] = what
            self._last_tracked = request_id
            self._show_busy()

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
        self.services.notify(message, "error")
        self.view.status.setText(message)
