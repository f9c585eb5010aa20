"""The Map tab's controller: MapLatents and FindNearest out; clicks, paths and lassos out as signals.

Signals tell the shell what other features do: :attr:`MapController.point_requested` (a z for Explore),
:attr:`path_drawn` (keyframes for Interpolate) and :attr:`group_selected` (held-out positions for the
Directions tab's "two groups"). The shell feeds back the Explore point (:meth:`set_point`) and the
Interpolate keyframes (:meth:`set_path`), drawn on the map live.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QObject, Signal

from engines.shared import protocol
from studio.features.latent_map.state import LatentMap
from studio.features.latent_map.view import MapView
from studio.services import Services


#: Seconds between the maps "follow training" asks for.
FOLLOW_S = 5.0


def map_reason(ready: protocol.Ready | None) -> str:
    """Why the tab is off ("" when it applies): it needs a latent."""
    if ready is None:
        return "Build or open a model with a latent to map it"
    if ready.latent.dim == 0:
        return "This model has no latent (it draws pixel by pixel): nothing to map"
    return ""


class MapController(QObject):
    """Drives a :class:`MapView`.

    Signals
    -------
    point_requested(object)
        A clicked z (D,) float32 for Explore.
    path_drawn(object)
        (K, D) float32 keyframes along a drawn path.
    group_selected(str, list)
        "a" or "b" and the held-out positions a lasso enclosed.
    """

    point_requested = Signal(object)
    path_drawn = Signal(object)
    group_selected = Signal(str, list)

    def __init__(self, services: Services, parent: QObject | None = None) -> None:
        super().__init__(parent or services)
        self.services = services
        self.client = services.client
        self.view = MapView()
        self.map: LatentMap | None = None
        self.ready: protocol.Ready | None = None
        self.point: np.ndarray | None = None
        self.path: np.ndarray | None = None
        self.hovered: int | None = None
        self._asked: dict[str, int] = {}
        self._settings = ("pca", 1000, 30.0)  # the shown map's method, points and perplexity
        self._asked_settings = self._settings  # those of the map asked for last
        self._followed = 0.0  # when "follow training" last asked for a map (time.monotonic)
        c = self.client
        c.ready.connect(self._on_ready)
        c.progress.connect(self._on_progress)
        c.event_received.connect(self._on_event)
        v = self.view
        v.compute_requested.connect(self.compute)
        v.clicked.connect(self.click)
        v.hovered.connect(self.hover)
        v.stroke_finished.connect(self.stroke)
        v.colour_changed.connect(self.colour)
        v.nearest_requested.connect(self.find_nearest)
        v.job.cancel_requested.connect(self.client.cancel)

    def _on_ready(self, ready: protocol.Ready) -> None:
        self.ready = ready
        self.view.set_enabled(map_reason(ready))
        if self.map is not None and self.map.z.shape[1] != ready.latent.dim:
            self.map = None
            self.view.set_points(np.zeros((0, 2)), [])
        self._asked.clear()

    # -- computing -------------------------------------------------------------------------------
    def compute(self, method: str = "pca", n: int = 1000, perplexity: float = 30.0, init: np.ndarray | None = None) -> int:
        """Ask the worker for a map (request id, 0: none sent); ``init`` (N, 2) starts a t-SNE from a previous map."""
        if map_reason(self.ready) or not self.services.has_model():
            return 0
        rid = self._send("map", protocol.MapLatents(method=method, n=int(n), perplexity=float(perplexity), init=init))
        self._asked_settings = (method, int(n), float(perplexity))
        self.view.job.start(rid, "t-SNE" if method == "tsne" else "Mapping")
        self.view.compute_button.setEnabled(False)
        return rid

    def _on_mapped(self, event: protocol.LatentMapped) -> None:
        if self._asked.get("map") != event.request_id:
            return
        self.view.job.finish()
        self.view.compute_button.setEnabled(True)
        self._settings = self._asked_settings  # what "follow training" maps again: the map shown
        again = self.map is not None and len(self.map) == len(event.xy)
        self.map = LatentMap(event)
        options = self.map.colour_options()
        by = self.view.colour_combo.currentText() if again and self.view.colour_combo.currentText() in options \
            else options[0]
        if not again:
            self.view.set_colour_options(options)
        self.view.set_points(self.map.xy, self.map.colours(by), fit=not again)
        self.view.set_legend(self.map.legend(by))
        self.view.status.setText(f"{len(self.map)} points: {event.source} (step {event.step})")
        self._redraw_live()

    def on_weights(self) -> int:
        """New weights: with "follow training" on, map the same images again (at most every :data:`FOLLOW_S`
        seconds, never two at once; t-SNE from the last map). The request id, 0 if none was sent."""
        if not self.view.follow.isChecked() or self.map is None or self.view.job.request_id:
            return 0
        if time.monotonic() - self._followed < FOLLOW_S:
            return 0
        self._followed = time.monotonic()
        method, n, perplexity = self._settings
        return self.compute(method, n, perplexity, init=self.map.xy.astype(np.float32) if method == "tsne" else None)

    def colour(self, by: str) -> None:
        if self.map is not None:
            self.view.set_points(self.map.xy, self.map.colours(by))
            self.view.set_legend(self.map.legend(by))

    # -- the mouse -------------------------------------------------------------------------------
    def click(self, x: float, y: float, radius: float = 0.0) -> np.ndarray | None:
        """Decode the point under (x, y) into Explore: that point's z, or the latent between points; the z sent."""
        if self.map is None:
            return None
        z = self.map.z_at(x, y, radius)
        hit = self.map.pick(x, y, radius)
        self.view.status.setText(f"decoded {self.map.describe(hit)}" if hit is not None else
                                 f"decoded the latent at ({x:.2f}, {y:.2f}), between points")
        self.point_requested.emit(z)
        return z

    def hover(self, x: float, y: float, radius: float) -> None:
        """Show the image of the point under the mouse."""
        if self.map is None:
            return
        hit = self.map.pick(x, y, radius)
        if hit is None or hit == self.hovered:
            return
        self.hovered = hit
        image = self.map.thumbnail(hit)
        if image is not None:
            self.view.hover_view.set_image(image)
        self.view.hover_view.set_title(self.map.describe(hit))

    def stroke(self, mode: str, stroke: np.ndarray) -> None:
        """A drawn path becomes keyframes (:attr:`path_drawn`); a lasso a group (:attr:`group_selected`)."""
        if self.map is None or len(stroke) < 2:
            return
        if mode == "path":
            keys = self.map.path_keyframes(stroke)
            self.view.status.setText(f"path: {len(keys)} keyframes sent to the Interpolate tab")
            self.path_drawn.emit(keys)
        elif mode in ("lasso-a", "lasso-b"):
            inside = self.map.lasso(stroke)
            held = [int(self.map.indices[i]) for i in inside if self.map.indices[i] >= 0]
            self.view.set_group(mode, self.map.xy[inside])
            which = mode[-1]
            self.view.status.setText(f"group {which.upper()}: {len(held)} held-out images")
            self.group_selected.emit(which, held)

    # -- live marks ------------------------------------------------------------------------------
    def set_point(self, z: np.ndarray) -> None:
        """The Explore point (D,), marked on the map."""
        self.point = np.asarray(z, np.float32).reshape(-1)
        self._redraw_live()

    def set_path(self, keyframes: np.ndarray) -> None:
        """The Interpolate keyframes (K, D), drawn as a line on the map."""
        self.path = np.asarray(keyframes, np.float32)
        self._redraw_live()

    def _redraw_live(self) -> None:
        if self.map is None:
            return
        dim = self.map.z.shape[1]
        ok = self.point is not None and len(self.point) == dim
        self.view.set_marker(self.map.place(self.point)[0] if ok else None)
        ok = self.path is not None and self.path.ndim == 2 and len(self.path) >= 2 and self.path.shape[1] == dim
        self.view.set_path(self.map.place(self.path) if ok else None)

    # -- memorisation ----------------------------------------------------------------------------
    def find_nearest(self) -> int:
        """The training examples nearest the Explore point's image (request id, 0: none sent)."""
        if self.point is None or map_reason(self.ready) or not self.services.has_model():
            return 0
        rid = self._send("nearest", protocol.FindNearest(z=self.point.copy(), k=8))
        self.view.job.start(rid, "Nearest training examples")
        return rid

    def _on_nearest(self, event: protocol.NearestFound) -> None:
        if self._asked.get("nearest") != event.request_id:
            return
        self.view.job.finish()
        if event.image is None or event.image.ndim != 4:
            self.view.status.setText("nearest examples are shown for images only")
            return
        self.view.set_nearest(event.image, event.pixel_images, event.pixel_distances, event.latent_images,
                              event.latent_distances, event.n)

    # -- plumbing --------------------------------------------------------------------------------
    def _send(self, purpose: str, command: protocol.Command) -> int:
        self._asked[purpose] = rid = self.services.send_request(command)
        return rid

    def _on_progress(self, event: protocol.Progress) -> None:
        if event.request_id in self._asked.values() and self.view.job.update_progress(event):
            if event.message == "cancelled":
                self.view.compute_button.setEnabled(True)
                self.view.status.setText("cancelled")

    def _on_event(self, event: protocol.Event) -> None:
        if isinstance(event, protocol.LatentMapped):
            self._on_mapped(event)
        elif isinstance(event, protocol.NearestFound):
            self._on_nearest(event)
        elif isinstance(event, protocol.Error) and event.command in ("MapLatents", "FindNearest"):
            self.view.job.finish()
            self.view.compute_button.setEnabled(not map_reason(self.ready))
