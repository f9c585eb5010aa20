"""The Traversal tab's controller: Traverse requests out, Traversed grids shown, PNG/CSV and GIF/MP4 exports.

Rows follow the Explore panel's order (fed by :meth:`TraversalController.set_rows`, which the shell
connects); the base is the prior mean, the current sliders (:meth:`set_point`) or the posterior
mean of a held-out example. The newest answer wins. While training, the grid refreshes every
:data:`REFRESH_S` seconds when the tab is visible. GIF and MP4 animations of the sweep (one frame
per value, every row in it) are rendered by the worker (an :class:`~engines.shared.protocol.Export`
of kind "traversal"), so ``latent-studio render`` reproduces them from their sidecar.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QFileDialog

from engines.shared import protocol
from studio.features.traversal.state import TraversalRows, write_traversal_csv, write_traversal_png
from studio.features.traversal.view import TraversalView
from studio.services import Services

#: Seconds between automatic refreshes while training (a new sample grid also triggers one).
REFRESH_S = 3.0


class TraversalController(QObject):
    """Drives a :class:`TraversalView` from the worker.

    Parameters
    ----------
    services : Services

    Attributes
    ----------
    view : TraversalView
    rows : TraversalRows
        The dimensions swept, their labels and the current slider point.
    """

    def __init__(self, services: Services, parent: QObject | None = None) -> None:
        super().__init__(parent or services)
        self.services = services
        self.view = TraversalView()
        self.rows = TraversalRows()
        self.requests = services.requests()
        self.visible = False
        self._asked_at = 0.0
        self.timer = QTimer(self)
        self.timer.setInterval(int(REFRESH_S * 1000))
        self.timer.timeout.connect(lambda: self.refresh(force=False))
        c = services.client
        c.ready.connect(self._on_ready)
        c.state_changed.connect(self._on_state)
        c.traversed.connect(self._on_traversed)
        self.view.controls_changed.connect(self.request)
        self.view.export_requested.connect(self.ask_export_png)
        self.view.animation_requested.connect(self.ask_export_animation)
        self.view.job.cancel_requested.connect(services.exports.cancel)

    # -- what the shell feeds in -----------------------------------------------------------------
    def set_rows(self, dims: list[int], labels: list[str]) -> None:
        """The continuous dimensions to sweep, in the Explore panel's order, with their row labels."""
        self.rows.dims, self.rows.labels = [int(d) for d in dims], list(labels)

    def set_point(self, z: np.ndarray) -> None:
        """The current slider point; refreshes at once when it is the base."""
        self.rows.z = np.asarray(z, np.float32).reshape(-1)
        if self.view.base() == "sliders":
            self.refresh(min_age=0.0)

    def set_visible(self, visible: bool) -> None:
        """Whether the tab is on screen (it only refreshes then)."""
        self.visible = bool(visible)
        if self.visible:
            self.refresh(min_age=0.5)

    # -- requests --------------------------------------------------------------------------------
    def request(self) -> int:
        """Ask the worker for a traversal grid as the controls describe; the request id (0: none sent)."""
        if not self.services.has_model() or not self.rows.dims:
            return 0
        p = self.view.params()
        z = self.rows.z[None] if p["base"] == "sliders" and len(self.rows.z) else None
        index = p["index"] if p["base"] == "example" else None
        rid = self.requests.ask("traverse", payload=list(self.rows.labels))  # the labels as asked
        command = protocol.Traverse(request_id=rid, z=z, index=index, dims=list(self.rows.dims), steps=p["steps"],
                                    low=p["low"], high=p["high"])
        if not self.services.send(command):
            return 0
        self._asked_at = time.monotonic()
        return rid

    def refresh(self, force: bool = False, min_age: float = REFRESH_S) -> None:
        """Re-request the grid when the tab is shown and the last request is ``min_age`` s old (or ``force``)."""
        if force or (self.visible and time.monotonic() - self._asked_at >= min_age):
            self.request()

    def _on_traversed(self, event: protocol.Traversed) -> None:
        if event.images is None or not self.requests.is_newer("traverse", event.request_id):
            return  # an older answer than the one shown
        labels = self.requests.payload("traverse", event.request_id)
        if labels is None or len(labels) != len(event.dims):
            labels = [f"z{int(d)}" for d in event.dims]
        try:
            self.view.set_traversal(event, labels)
        except ValueError as exc:
            self.services.notify(f"Traversal: {exc}", "error", status="")
            return
        self.requests.shown("traverse", event.request_id)

    def _on_ready(self, ready: protocol.Ready) -> None:
        self.view.set_encoder(ready.capabilities.has_encoder, ready.data.n_test)
        self.view.clear()
        self.requests.forget("traverse")
        self._asked_at = 0.0

    def _on_state(self, state: str) -> None:
        if state == "training":
            self.timer.start()
        else:
            self.timer.stop()

    # -- exports ---------------------------------------------------------------------------------
    def export_png(self, path: str | Path) -> Future:
        """Write the grid shown, with its row labels and column values, to a PNG on the export thread, and
        beside it (same name, ``.csv``) every cell's latent (:func:`~studio.features.traversal.state.write_traversal_csv`).

        Raises
        ------
        ValueError
            If no traversal has arrived yet.
        """
        view = self.view
        images = view.picture()
        if images is None or view.shown is None:
            raise ValueError("no traversal to export yet")
        event, labels = view.shown, list(view.labels)
        values = np.asarray(event.values, np.float32)

        def write(x: np.ndarray, p: str) -> None:
            write_traversal_png(x, labels, values, p)
            write_traversal_csv(event, labels, Path(p).with_suffix(".csv"))

        return self.services.write(images, path, write)

    def export_animation(self, path: str | Path, fps: int = 4, size: int = 512) -> int:
        """Ask the worker for an animation of the sweep at ``path`` (.gif or .mp4); the request id (0: none).

        Raises
        ------
        ValueError
            Another suffix, or no model.
        """
        path = Path(path)
        if path.suffix.lower() not in (".gif", ".mp4"):
            raise ValueError(f"{path}: export a traversal animation to .gif or .mp4")
        return self._send_export(path, {"fps": int(fps), "size": int(size), "resample": "nearest", "labels": True})

    def export_reproducible_png(self, path: str | Path, size: int = 96) -> int:
        """The traversal grid as a PNG rendered by the worker, with its sidecar (``FILE.json``: checkpoint,
        latents, settings) so ``latent-studio render FILE.json`` makes it again, and every cell's latent
        in ``FILE.csv`` when a grid is shown; the request id (0: none). ``size`` is a cell's side in px.

        Raises
        ------
        ValueError
            A suffix other than .png, or no model.
        """
        path = Path(path)
        if path.suffix.lower() != ".png":
            raise ValueError(f"{path}: export a traversal grid to .png")
        rid = self._send_export(path, {"fps": 4, "size": int(size), "resample": "nearest", "labels": True})
        if rid and self.view.shown is not None:
            event, labels = self.view.shown, list(self.view.labels)
            self.services.write(None, path.with_suffix(".csv"), lambda _x, p: write_traversal_csv(event, labels, p))
        return rid

    def _send_export(self, path: Path, settings: dict) -> int:
        if not self.services.has_model():
            raise ValueError("no model is loaded")
        return self.services.exports.send("traversal", path, self.rows.latents(self.view.params()), settings,
                                          self.view.job)

    def ask_export_png(self) -> None:
        """Ask for a file name, then :meth:`export_png`."""
        path, _ = QFileDialog.getSaveFileName(self.view, "Export traversal", "traversal.png", "PNG images (*.png)")
        if path:
            self._try(lambda: self.export_reproducible_png(Path(path).with_suffix(".png")))

    def ask_export_animation(self, kind: str) -> None:
        """Ask for a file name and export the animation ("gif" or "mp4")."""
        suffix = ".mp4" if kind == "mp4" else ".gif"
        path, _ = QFileDialog.getSaveFileName(self.view, "Export traversal animation", f"traversal{suffix}",
                                              "MP4 video (*.mp4)" if kind == "mp4" else "GIF (*.gif)")
        if path:
            self._try(lambda: self.export_animation(Path(path).with_suffix(suffix)))

    def _try(self, export) -> None:  # noqa: ANN001 - a callable
        try:
            export()
        except ValueError as exc:
            self.services.notify("", status=str(exc))
