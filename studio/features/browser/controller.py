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

from concurrent.futures import Future
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtWidgets import QFileDialog

from engines.shared import protocol
from engines.shared.datainfo import DataInfo
from studio.features.browser.state import MAX_FILES, PAGE, BrowserState, load_images, plural
from studio.features.browser.view import BrowserPanel
from studio.services import Services

#: File dialog filter for "Open images...".
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.webp *.tif *.tiff);;All files (*)"

__all__ = ["BrowserController", "BrowserState", "IMAGE_FILTER", "MAX_FILES", "PAGE", "load_images"]


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
        self.state = BrowserState()
        self.requests = services.requests()
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

    # -- the state's names ------------------------------------------------------------------------
    @property
    def info(self) -> DataInfo | None:
        """The data set of the model built (None before the first)."""
        return self.state.info

    @property
    def user(self) -> dict:
        """The user's images: key -> ((C, H, W) image, name)."""
        return self.state.user

    # -- pages -----------------------------------------------------------------------------------
    def n_pages(self) -> int:
        """Pages of :data:`PAGE` thumbnails in the held-out split (0 without image data)."""
        return self.state.n_pages()

    def request_page(self, page: int) -> int:
        """Ask for page ``page`` (clipped to the pages there are) of held-out examples; the request id (0: none)."""
        if not self.state.n_pages() or not self.services.has_model():
            return 0
        page, indices = self.state.page_indices(page)
        rid = self.requests.ask("page")
        if not self.services.send(protocol.GetExamples(request_id=rid, indices=indices, split="test")):
            return 0
        self.state.page_wanted = page
        return rid

    def _on_examples(self, event: protocol.Examples) -> None:
        if not self.requests.is_current("page", event.request_id) or event.images is None:
            return  # another panel's examples, or an older page
        labels = self.state.labels(len(event.indices), event.labels)
        self.view.set_page(self.state.page_wanted, self.state.n_pages(), list(event.indices), event.images, labels)

    def _on_ready(self, ready: protocol.Ready) -> None:
        changed = self.state.set_data(ready.data, ready.capabilities.has_encoder)
        self.view.set_kind(ready.data.kind)
        self.view.set_can_encode(True)
        if changed:
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
        why = self.state.cannot_load(Path(paths[0]).name)
        if why:
            self._log(why)
            return None
        channels, size = self.info.channels, self.info.image_size
        self.view.status.setText(f"loading {plural(len(paths), 'file')}...")
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
            key = self.state.add_user_image(image, Path(path).name)
            self.view.add_user_image(key, image, Path(path).name)
            added += 1
        self.view.status.setText(f"added {plural(added, 'image')}" if added else "no image added")
        if added:
            self.services.notify(f"Added {plural(added, 'image')} to the Data set browser", status="")
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
        """Run a thumbnail action (a key of :data:`~studio.features.browser.view.ACTIONS`) on a held-out index or a user image.

        Emits :attr:`example_chosen` or :attr:`image_chosen`; the feature the shell connected sends
        its Encode and hands the request id to :meth:`track` before the emit returns. Returns that
        request id (0: nothing sent).
        """
        if not self.services.has_model():
            return 0
        self.state.last_tracked = 0
        if source == "held-out":
            self.example_chosen.emit(action, int(key))
        elif key in self.user:
            image, name = self.user[key]
            self.image_chosen.emit(action, image, name)
        return self.state.last_tracked

    def track(self, request_id: int, what: str) -> None:
        """Show "encoding... <what>" until the Encode ``request_id`` is answered (0: nothing was sent)."""
        if self.state.track(request_id, what):
            self.view.status.setText(self.state.busy_text())

    def busy_text(self) -> str:
        """What the browser says while Encode requests are unanswered ("" when none)."""
        return self.state.busy_text()

    def _on_encoded(self, event: protocol.Encoded) -> None:
        if self.state.answered(event.request_id):
            self.view.status.setText(self.state.busy_text() or "done")

    def _on_progress(self, event: protocol.Progress) -> None:
        if self.state.encodes and "project" in event.task.lower():
            self.view.status.setText(self.state.progress_text(event.done, event.total, event.message))

    def _on_error(self, event: protocol.Error) -> None:
        if event.command == "Encode" and self.state.encodes:
            self.state.encodes.clear()
            self.view.status.setText(f"encode failed: {event.message}")

    def _log(self, message: str) -> None:
        self.services.notify(message, "error")
        self.view.status.setText(message)
