"""The Interpolate tab's glue: keyframes in, Interpolate commands out, Interpolated events shown and exported.

:class:`InterpolateController` sits between the main window's :class:`~studio.client.WorkerClient`
and its :class:`~studio.panels.interpolate.InterpolateView`: held-out keyframes go through the
client's Encode path (view ``"interpolate"``), keyframe thumbnails through Decode (view
``"interpolate-keys"``), paths through :class:`~engines.protocol.Interpolate` (newest answer
wins). Exports run on the window's export thread and each writes a JSON sidecar.
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog

from engines import protocol
from engines.data.base import DataInfo
from engines.spec import LatentSpec
from studio.panels.interpolate import InterpolateView, write_gif, write_strip_png

if TYPE_CHECKING:
    from studio.window import MainWindow

#: Client states in which the worker holds a model (as :data:`studio.window.MODEL_STATES`).
MODEL_STATES = ("ready", "training", "paused")


class InterpolateController(QObject):
    """Drives the Interpolate tab of ``window``.

    Parameters
    ----------
    window : MainWindow
        Gives the client, the Explore panel, the export thread (``window._write_png``) and the log.

    Attributes
    ----------
    view : InterpolateView
    """

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.view = InterpolateView()
        self._request = self._shown = 0
        self._encodes: dict[int, int] = {}
        c = window.client
        c.ready.connect(self._on_ready)
        c.interpolated.connect(self._on_interpolated)
        c.encoded.connect(self._on_encoded)
        c.decoded.connect(self._on_decoded)
        v = self.view
        v.render_requested.connect(self.request_interpolation)
        v.keyframes_changed.connect(self._request_thumbnails)
        v.add_sliders_requested.connect(lambda: self.add_keyframe(window.explore_panel.z(), "current sliders"))
        v.add_example_requested.connect(self.add_example)
        v.export_requested.connect(self.ask_export)

    # -- keyframes -------------------------------------------------------------------------------
    def add_keyframe(self, z: np.ndarray, label: str) -> int:
        """Append keyframe ``z`` (D,) labelled ``label``; its position (see :meth:`InterpolateView.add_keyframe`)."""
        return self.view.add_keyframe(z, label)

    def add_example(self, index: int) -> int:
        """Encode held-out example ``index``; its posterior mean becomes a keyframe when it arrives (request id, 0: none)."""
        if self.window.client.state not in MODEL_STATES:
            return 0
        rid = self.window.client.request_encode([int(index)], view="interpolate", split="test")
        self._encodes[rid] = int(index)
        return rid

    def _on_encoded(self, event: protocol.Encoded) -> None:
        index = self._encodes.pop(event.request_id, None)
        if event.view == "interpolate" and event.z is not None and len(event.z):
            self.add_keyframe(event.z[0], "encoded" if index is None else f"held-out #{index}")

    def _request_thumbnails(self) -> None:
        keys = self.view.keyframes()
        if len(keys) and self.window.client.state in MODEL_STATES:
            self.window.client.request_decode(keys, view="interpolate-keys")

    def _on_decoded(self, event: protocol.Decoded) -> None:
        if event.view == "interpolate-keys" and event.images is not None:
            self.view.set_thumbnails(event.images)

    # -- paths -----------------------------------------------------------------------------------
    def request_interpolation(self) -> int:
        """Send an Interpolate for the keyframes and settings shown; the request id (0: none sent)."""
        keys = self.view.keyframes()
        p = self.view.params()
        if len(keys) < 2 or self.window.client.state not in MODEL_STATES:
            return 0
        rid = next(self.window._ids)
        command = protocol.Interpolate(request_id=rid, keyframes=keys, frames=max(p["frames"], len(keys)),
                                       method=p["method"], constant_speed=p["constant_speed"])
        if not self.window.client.send(command):
            return 0
        self._request = rid
        self._request_thumbnails()
        return rid

    def _on_interpolated(self, event: protocol.Interpolated) -> None:
        if event.request_id < self._shown or event.images is None:
            return  # older than the path shown
        try:
            self.view.set_interpolated(event)
        except ValueError as exc:
            self.window.messages.log(f"Interpolate: {exc}", "error")
            return
        self._shown = event.request_id

    def _on_ready(self, ready: protocol.Ready) -> None:
        info = DataInfo.from_json(ready.data)
        modes = np.asarray(info.modes, np.float64) if info.modes else None
        self.view.set_latent(LatentSpec.from_json(ready.latent), modes)
        self.view.set_encoder(ready.has_encoder, info.n_test)
        self._shown = 0
        self._request_thumbnails()
        self.view.schedule_render()

    # -- exports ---------------------------------------------------------------------------------
    def metadata(self) -> dict:
        """The sidecar of an export: keyframes (lists), method, frames, constant_speed, fps, model, step, checkpoint."""
        event = self.view.shown
        p = self.view.params()
        ready = self.window.ready_event
        return {
            "kind": "interpolation",
            "keyframes": self.view.keyframes().astype(float).tolist(),
            "labels": [label for _, label in self.view.keys],
            "method": p["method"], "frames": self.view.n_frames(), "constant_speed": p["constant_speed"],
            "fps": p["fps"], "model": None if ready is None else ready.model,
            "data": None if ready is None else ready.data_summary,
            "step": None if event is None else int(event.step),
            "checkpoint": self.window.client.last_checkpoint,
        }

    def _frames(self) -> np.ndarray:
        event = self.view.shown
        if event is None or event.images is None or not len(event.images):
            raise ValueError("no interpolation to export yet: add two keyframes and press Render")
        return np.asarray(event.images, np.float32)

    def export_gif(self, path: str | Path) -> Future:
        """Write the path as an animated GIF (and ``<path>.json``) on the export thread.

        Raises
        ------
        ValueError
            If no path has arrived yet.
        """
        frames, meta, modes, fps = self._frames(), self.metadata(), self.view.modes, self.view.params()["fps"]
        return self.window._write_png(frames, path, writer=lambda x, p: write_gif(x, p, fps, modes, meta))

    def export_strip(self, path: str | Path) -> Future:
        """Write the film strip as a PNG (and ``<path>.json``) on the export thread.

        Raises
        ------
        ValueError
            If no path has arrived yet.
        """
        frames, meta, modes = self._frames(), self.metadata(), self.view.modes
        return self.window._write_png(frames, path, writer=lambda x, p: write_strip_png(x, p, modes, meta))

    def ask_export(self, kind: str) -> None:
        """Ask for a file name and export ("gif" or "strip")."""
        gif = kind == "gif"
        path, _ = QFileDialog.getSaveFileName(self.window, "Export interpolation", "interpolation.gif" if gif
                                              else "interpolation.png", "GIF (*.gif)" if gif else "PNG images (*.png)")
        if not path:
            return
        try:
            (self.export_gif if gif else self.export_strip)(path)
        except ValueError as exc:
            self.window.statusBar().showMessage(str(exc), 5000)
