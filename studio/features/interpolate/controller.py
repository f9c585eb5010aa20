"""The Interpolate tab's controller: keyframes in, Interpolate commands out, Interpolated events shown and exported.

:class:`InterpolateController` sits between the :class:`~studio.client.WorkerClient` and its
:class:`InterpolateView`: held-out keyframes go through the
client's Encode path (view ``"interpolate"``), keyframe thumbnails through Decode (view
``"interpolate-keys"``), paths through :class:`~engines.shared.protocol.Interpolate` (newest answer
wins). While training, the path shown is re-rendered as the weights change (at most every
:data:`LIVE_RENDER_S` seconds, only while the tab is visible).

GIF, MP4 and PNG-strip exports are rendered by the worker (:class:`~engines.shared.protocol.Export`), so
each has a sidecar that ``latent-studio render`` reproduces; the view's job widget shows their
progress and cancels them. The path's latents (.npy and .json) are written on the export thread.
The current slider point (for "Add current sliders") is fed in by the shell (:meth:`set_point`).
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog

from engines.shared import protocol
from studio.features.interpolate.state import SUFFIXES, write_path_latents
from studio.features.interpolate.view import InterpolateView
from studio.services import Services

#: Least seconds between two re-renders of the path while training.
LIVE_RENDER_S = 2.0
#: Longest side of exported frames, px (nearest-neighbour upscaling by an integer factor).
EXPORT_SIZE = 256


class InterpolateController(QObject):
    """Drives the Interpolate tab.

    Parameters
    ----------
    services : Services

    Attributes
    ----------
    view : InterpolateView
    """

    def __init__(self, services: Services, parent: QObject | None = None) -> None:
        super().__init__(parent or services)
        self.services = services
        self.view = InterpolateView()
        self.requests = services.requests()
        self.point = np.zeros(0, np.float32)
        self._encodes: dict[int, int] = {}
        self.exports = services.exports
        self._live_at = 0.0
        c = services.client
        c.ready.connect(self._on_ready)
        c.samples.connect(self._on_samples)
        c.interpolated.connect(self._on_interpolated)
        c.encoded.connect(self._on_encoded)
        c.decoded.connect(self._on_decoded)
        v = self.view
        v.render_requested.connect(self.request_interpolation)
        v.keyframes_changed.connect(self._request_thumbnails)
        v.add_sliders_requested.connect(lambda: self.add_keyframe(self.point, "current sliders"))
        v.add_example_requested.connect(self.add_example)
        v.export_requested.connect(self.ask_export)
        v.job.cancel_requested.connect(self._cancel_job)
        c.progress.connect(self._on_progress)
        self._has_encoder = True

    # -- keyframes -------------------------------------------------------------------------------
    def set_point(self, z: np.ndarray) -> None:
        """The current slider point, for "Add current sliders"."""
        self.point = np.asarray(z, np.float32).reshape(-1)

    def add_keyframe(self, z: np.ndarray, label: str) -> int:
        """Append keyframe ``z`` (D,) labelled ``label``; its position (see :meth:`InterpolateView.add_keyframe`)."""
        return self.view.add_keyframe(z, label)

    def add_example(self, index: int) -> int:
        """Encode held-out example ``index``; its z becomes a keyframe when it arrives (request id, 0: none).

        For a model without an encoder the worker projects the example (optimises z through the
        decoder); the view's job widget then shows its progress and can cancel it.
        """
        if not self.services.has_model():
            return 0
        rid = self.services.client.request_encode([int(index)], view="interpolate", split="test")
        self._encodes[rid] = int(index)
        if not self._has_encoder and rid:
            self.view.job.start(rid, f"Projecting held-out #{index}")
        return rid

    def add_image(self, image: np.ndarray) -> int:
        """Encode (or project) an image (C, H, W) the user handed us; its z becomes a keyframe (request id, 0: none)."""
        if not self.services.has_model():
            return 0
        return self.services.client.request_encode_images(np.asarray(image, np.float32)[None], view="interpolate")

    def _on_progress(self, event: protocol.Progress) -> None:
        """Progress of a projection (a model without an encoder) of a held-out example."""
        if event.task == "project" and event.request_id in self._encodes and self.view.job.update_progress(event):
            if event.message == "cancelled":
                self._encodes.pop(event.request_id, None)

    def _cancel_job(self, request_id: int) -> None:
        if request_id in self._encodes:
            self.services.client.cancel(request_id)
        else:
            self.exports.cancel(request_id)

    def _on_encoded(self, event: protocol.Encoded) -> None:
        index = self._encodes.pop(event.request_id, None)
        if index is not None and self.view.job.request_id == event.request_id:
            self.view.job.finish()
        if event.view == "interpolate" and event.z is not None and len(event.z):
            self.add_keyframe(event.z[0], "encoded" if index is None else f"held-out #{index}")

    def _request_thumbnails(self) -> None:
        keys = self.view.keyframes()
        if len(keys) and self.services.has_model():
            self.services.client.request_decode(keys, view="interpolate-keys")

    def _on_decoded(self, event: protocol.Decoded) -> None:
        if event.view == "interpolate-keys" and event.images is not None:
            self.view.set_thumbnails(event.images)

    # -- paths -----------------------------------------------------------------------------------
    def request_interpolation(self) -> int:
        """Send an Interpolate for the keyframes and settings shown; the request id (0: none sent)."""
        keys = self.view.keyframes()
        p = self.view.params()
        if len(keys) < 2 or not self.services.has_model():
            return 0
        rid = self.requests.ask("path")
        command = protocol.Interpolate(request_id=rid, keyframes=keys, frames=max(p["frames"], len(keys)),
                                       method=p["method"], constant_speed=p["constant_speed"])
        if not self.services.send(command):
            return 0
        self._request_thumbnails()
        return rid

    def _on_interpolated(self, event: protocol.Interpolated) -> None:
        if event.images is None or not self.requests.is_newer("path", event.request_id):
            return  # older than the path shown
        try:
            self.view.set_interpolated(event)
        except ValueError as exc:
            self.services.notify(f"Interpolate: {exc}", "error", status="")
            return
        self.requests.shown("path", event.request_id)

    def _on_ready(self, ready: protocol.Ready) -> None:
        info = ready.data
        modes = np.asarray(info.modes, np.float64) if info.modes else None
        self.view.set_latent(ready.latent, modes)
        self._has_encoder = ready.capabilities.has_encoder
        self.view.set_encoder(True, info.n_test)  # without an encoder the worker projects (with progress)
        self.requests.forget("path")
        self._request_thumbnails()
        self.view.schedule_render()

    def _on_samples(self, event: protocol.Samples) -> None:
        """A new training grid: the weights changed, so re-render the path (throttled, visible tab only)."""
        if event.request_id != -1 or self.services.client.state != "training" or not self.view.isVisible():
            return
        now = time.monotonic()
        if now - self._live_at >= LIVE_RENDER_S and self.request_interpolation():
            self._live_at = now

    # -- exports ---------------------------------------------------------------------------------
    def metadata(self) -> dict:
        """What the path's latents file records: keyframes, labels, method, frames, fps, model, step, checkpoint."""
        event = self.view.shown
        p = self.view.params()
        ready = self.services.ready
        return {
            "kind": "interpolation",
            "keyframes": self.view.keyframes().astype(float).tolist(),
            "labels": [label for _, label in self.view.keys],
            "method": p["method"], "frames": self.view.n_frames(), "constant_speed": p["constant_speed"],
            "fps": p["fps"], "model": None if ready is None else ready.model,
            "data": None if ready is None else ready.data_summary,
            "step": None if event is None else int(event.step),
            "checkpoint": self.services.client.last_checkpoint,
        }

    def export(self, path: str | Path) -> int:
        """Ask the worker to render the path to ``path`` (.gif, .mp4 or .png strip) with a sidecar.

        The keyframes, method, frame count and speed option shown go in the sidecar's latents;
        fps, export size (default :data:`EXPORT_SIZE` px) and nearest or Lanczos upscaling come
        from the view. Progress and Cancel show in ``view.job``; the services' ``exported`` signal
        fires when the file is written.

        Returns
        -------
        int
            The Export's request id (0 if no worker took it).

        Raises
        ------
        ValueError
            Fewer than two keyframes, an unknown suffix, or no model loaded.
        """
        keys, p = self.view.keyframes(), self.view.params()
        path = Path(path)
        if len(keys) < 2:
            raise ValueError("an interpolation needs at least two keyframes")
        if path.suffix.lower() not in SUFFIXES.values():
            raise ValueError(f"{path}: export to .gif, .mp4 or .png")
        if not self.services.has_model():
            raise ValueError("no model is loaded")
        latents = {"keyframes": keys.astype(float).tolist(), "method": p["method"],
                   "frames": max(int(p["frames"]), len(keys)), "constant_speed": bool(p["constant_speed"])}
        settings = {"fps": int(p["fps"]), "size": int(p.get("size", EXPORT_SIZE)),
                    "resample": p.get("resample", "nearest"), "labels": False}
        return self.exports.send("interpolation", path, latents, settings, self.view.job)

    def export_gif(self, path: str | Path) -> int:
        """:meth:`export` to an animated GIF; the request id."""
        return self.export(Path(path).with_suffix(".gif"))

    def export_mp4(self, path: str | Path) -> int:
        """:meth:`export` to an H.264 MP4; the request id."""
        return self.export(Path(path).with_suffix(".mp4"))

    def export_strip(self, path: str | Path) -> int:
        """:meth:`export` to a PNG film strip; the request id."""
        return self.export(Path(path).with_suffix(".png"))

    def export_latents(self, path: str | Path) -> Future:
        """Write the path's z as .npy and .json (:func:`write_path_latents`) on the export thread.

        Raises
        ------
        ValueError
            If no path has arrived yet.
        """
        event = self.view.shown
        if event is None or event.z is None or not len(event.z):
            raise ValueError("no interpolation to export yet: add two keyframes and press Render")
        meta = self.metadata()
        return self.services.write(np.asarray(event.z, np.float32), path, lambda z, p: write_path_latents(z, p, meta))

    def ask_export(self, kind: str) -> None:
        """Ask for a file name and export: "gif", "mp4", "strip" (by the worker) or "latents" (.npy + .json)."""
        names = {"gif": ("interpolation.gif", "GIF (*.gif)"), "mp4": ("interpolation.mp4", "MP4 video (*.mp4)"),
                 "strip": ("interpolation.png", "PNG images (*.png)"),
                 "latents": ("interpolation.npy", "NumPy and JSON (*.npy *.json)")}
        name, filt = names.get(kind, names["gif"])
        path, _ = QFileDialog.getSaveFileName(self.view, "Export interpolation", name, filt)
        if not path:
            return
        try:
            if kind == "latents":
                self.export_latents(path)
            else:
                self.export(Path(path).with_suffix(SUFFIXES.get(kind, ".gif")))
        except ValueError as exc:
            self.services.notify("", status=str(exc))
