"""The Flow tab's glue: Encode, Decode, Score, FindDirections, Sample out; their answers in.

Enabled from the declared capabilities (an exact encoder and an image-shaped z); for any other model
the tab says why it is off. Every image shown gets its bits/dim (a Score of it) in its caption.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject

from engines.shared import protocol
from studio.features.flows.state import STRIP, FlowEdit, flow_reason, lerp_path, reconstruction_caption, space_caption
from studio.features.flows.view import FlowView
from studio.services import Services

__all__ = ["FlowController", "FlowView"]

#: Decode views of this tab (the client keeps the latest request of each).
RECON, EDIT, PATH = "flow-recon", "flow-edit", "flow-path"


class FlowController(QObject):
    """Drives a :class:`FlowView` from the worker.

    Attributes
    ----------
    view : FlowView
    edit : FlowEdit
        The inverted image's z and the directions it moves along.
    shown : dict of str to ndarray
        The images last shown in each picture ("original", "recon", "edited", "samples", "path").
    """

    def __init__(self, services: Services, parent: QObject | None = None) -> None:
        super().__init__(parent or services)
        self.services = services
        self.client = services.client
        self._asked: dict[str, int] = {}  # purpose -> the newest request id sent for it
        self.view = FlowView()
        self.edit = FlowEdit()
        self.enabled = False
        self.shown: dict[str, np.ndarray] = {}
        self.captions: dict[str, str] = {}
        self._path_frames = 0
        self._temperature = 1.0
        c = self.client
        c.ready.connect(self._on_ready)
        c.encoded.connect(self._on_encoded)
        c.decoded.connect(self._on_decoded)
        c.samples.connect(self._on_samples)
        c.event_received.connect(self._on_event)
        v = self.view
        v.invert_requested.connect(self.invert)
        v.directions_requested.connect(self.find_directions)
        v.coefficient_changed.connect(self.move)
        v.reset_requested.connect(self.reset)
        v.sample_requested.connect(self.sample)
        v.interpolate_requested.connect(self.interpolate)

    def _on_ready(self, ready: protocol.Ready) -> None:
        reason = flow_reason(ready.capabilities, ready.latent, ready.data.kind)
        self.enabled = not reason
        self.edit = FlowEdit()
        self.shown.clear()
        self.captions.clear()
        self._asked.clear()
        self.view.set_enabled(reason, ready.data.n_test, tuple(ready.data.class_names or ()))

    # -- invert and edit -------------------------------------------------------------------------
    def invert(self, index: int) -> int:
        """Encode held-out example ``index`` exactly; its reconstruction and bits/dim follow."""
        if not self.enabled:
            return 0
        return self._send("invert", lambda rid: protocol.Encode(request_id=rid, view="flow", indices=[int(index)],
                                                                split="test"))

    def _on_encoded(self, event: protocol.Encoded) -> None:
        if event.view != "flow" or event.z is None:
            return
        kind = next((k for k in ("invert", "ends") if self._asked.get(k) == event.request_id), None)
        if kind == "invert":
            self.edit.set_base(event.z[0])
            self._show("original", event.images[:1], "x")
            self.client.request_decode(event.z[:1], RECON)
            self._score("original", event.images[:1])
            if self.edit.names:
                self.view.set_directions(self.edit.names)
            self.move(-1, 0.0)
        elif kind == "ends":
            z = lerp_path(event.z[0], event.z[1], self._path_frames)
            self.client.request_decode(z, PATH)

    def move(self, i: int, value: float) -> None:
        """Direction ``i``'s coefficient (standard deviations) changed: decode the edited z."""
        if i >= 0:
            self.edit.set_coefficient(i, value)
        z = self.edit.z()
        if z is not None:
            self.client.request_decode(z[None], EDIT)

    def reset(self) -> None:
        self.edit.reset()
        self.move(-1, 0.0)

    def find_directions(self, method: str, k: int, from_class: int, to_class: int) -> int:
        """Ask the worker for directions in z (principal components, or a class difference)."""
        if not self.enabled:
            return 0
        rid = self._send("directions", lambda rid: protocol.FindDirections(
            request_id=rid, method=method, k=int(k), from_class=int(from_class), to_class=int(to_class)))
        self.view.find_button.setEnabled(False)
        return rid

    def _on_directions(self, event: protocol.DirectionsFound) -> None:
        if self._asked.get("directions") != event.request_id:
            return
        self.view.find_button.setEnabled(self.enabled)
        self.edit.set_directions(event.directions, event.scales, list(event.names))
        self.view.set_directions(self.edit.names)
        self.move(-1, 0.0)

    # -- samples and interpolation -----------------------------------------------------------------
    def sample(self, temperature: float, seed: int) -> int:
        """Set the live temperature and draw :data:`STRIP` samples."""
        if not self.enabled:
            return 0
        self.services.send(protocol.SetHyperparameter(name="temperature", value=float(temperature)))
        self._temperature = float(temperature)
        return self._send("samples", lambda rid: protocol.Sample(request_id=rid, n=STRIP, seed=int(seed)))

    def _on_samples(self, event: protocol.Samples) -> None:
        if event.request_id <= 0 or self._asked.get("samples") != event.request_id or event.images is None:
            return
        self._show("samples", event.images, f"T = {self._temperature:g}")
        self._score("samples", event.images)

    def interpolate(self, a: int, b: int, frames: int) -> int:
        """Encode held-out examples ``a`` and ``b`` and decode the line between their z."""
        if not self.enabled:
            return 0
        self._path_frames = int(frames)
        return self._send("ends", lambda rid: protocol.Encode(request_id=rid, view="flow", indices=[int(a), int(b)],
                                                              split="test"))

    def _on_decoded(self, event: protocol.Decoded) -> None:
        if event.images is None:
            return
        if event.view == RECON and "original" in self.shown:
            self._show("recon", event.images, reconstruction_caption(self.shown["original"], event.images))
        elif event.view == EDIT:
            self._show("edited", event.images, self.edit.caption())
            self._score("edited", event.images)
        elif event.view == PATH:
            self._show("path", event.images, "z_a -> z_b")
            self._score("path", event.images)

    # -- bits/dim in every caption ---------------------------------------------------------------
    def _show(self, where: str, images: np.ndarray, caption: str) -> None:
        self.shown[where] = np.asarray(images, np.float32)
        self.captions[where] = caption
        view = {"original": self.view.original, "recon": self.view.recon, "edited": self.view.edited,
                "samples": self.view.samples, "path": self.view.path}[where]
        FlowView.put(view, images, caption, ncols=len(images) if where in ("samples", "path") else None)

    def _send(self, purpose: str, command) -> int:  # noqa: ANN001 - (rid) -> Command
        rid = self.services.next_id()
        self._asked[purpose] = rid
        self.services.send(command(rid))
        return rid

    def _score(self, where: str, images: np.ndarray) -> None:
        self._send(f"score-{where}", lambda rid: protocol.Score(request_id=rid, images=np.asarray(images, np.float32)))

    def _on_event(self, event: protocol.Event) -> None:
        if isinstance(event, protocol.DirectionsFound):
            self._on_directions(event)
        elif isinstance(event, protocol.Scored):
            self._on_scored(event)
        elif isinstance(event, protocol.Error) and event.command == "FindDirections":
            self.view.find_button.setEnabled(self.enabled)

    def _on_scored(self, event: protocol.Scored) -> None:
        for where in ("original", "edited", "samples", "path"):
            if self._asked.get(f"score-{where}") == event.request_id and event.nats is not None:
                parts = [space_caption(float(n), float(b)) for n, b in zip(event.nats, event.bits_per_dim)]
                if len(parts) == 1:
                    text = f"{self.captions.get(where, '')}: {parts[0]}"
                else:
                    text = f"{self.captions.get(where, '')}  |  " + "  ".join(p.split(' ')[0] for p in parts)
                    text += " bits/dim" if "bits/dim" in parts[0] else " (log p, nats)"
                {"original": self.view.original, "edited": self.view.edited, "samples": self.view.samples,
                 "path": self.view.path}[where].set_title(text)
                self.captions[where + ":scored"] = text
