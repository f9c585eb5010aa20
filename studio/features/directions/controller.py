"""The Directions tab's controller: FindDirections out, sliders that move the Explore point, local grids, a - b + c.

The Explore point is the base (:meth:`DirectionsController.set_point`, from Explore's
``point_changed``); a direction slider asks the shell to move Explore to the moved point
(:attr:`point_requested`), and that echo is not taken as a new base. Local directions are found around
the point (again after each move when "follow the point" is on, debounced). Direction sets save and load as
JSON (:class:`~engines.shared.directions.DirectionSet`, ``directions.json`` beside the checkpoint by
default) and export traversals along them through the worker, with a sidecar.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from engines.shared import protocol
from engines.shared.directions import DirectionSet
from engines.shared.errors import ConfigError
from studio.features.directions.state import SLOTS, Arithmetic, DirectionEdit, Groups, local_grid
from studio.features.directions.view import DirectionsView
from studio.services import Services

#: Milliseconds the point must rest before local directions follow it.
FOLLOW_MS = 400


def directions_reason(ready: protocol.Ready | None) -> str:
    """Why the tab is off ("" when it applies): it needs a latent with continuous dimensions or an image-shaped z."""
    if ready is None:
        return "Build or open a model with a latent to find directions in it"
    latent = ready.latent
    if latent.dim == 0:
        return "This model has no latent (it draws pixel by pixel): nothing to find directions in"
    if latent.shape is None and not latent.continuous:
        return "This model's latent has no continuous dimension: pick its codes in Explore instead"
    return ""


class DirectionsController(QObject):
    """Drives a :class:`DirectionsView`.

    Signals
    -------
    point_requested(object)
        A z (D,) float32 for the Explore point (moved along directions, or a - b + c).
    """

    point_requested = Signal(object)

    def __init__(self, services: Services, parent: QObject | None = None) -> None:
        super().__init__(parent or services)
        self.services = services
        self.client = services.client
        self.view = DirectionsView()
        self.edit = DirectionEdit()
        self.arith = Arithmetic()
        self.local: DirectionSet | None = None
        self.groups = Groups()
        self.point: np.ndarray | None = None
        self.ready: protocol.Ready | None = None
        self.run_folder: Path | None = None
        self.step = 0
        self._asked: dict[str, int] = {}
        self._slot_of: dict[int, str] = {}  # Encode request id -> arithmetic slot
        self._echo = False
        self._follow = QTimer(self)
        self._follow.setSingleShot(True)
        self._follow.setInterval(FOLLOW_MS)
        self._follow.timeout.connect(self.find_local)
        c = self.client
        c.ready.connect(self._on_ready)
        c.encoded.connect(self._on_encoded)
        c.decoded.connect(self._on_decoded)
        c.progress.connect(self._on_progress)
        c.event_received.connect(self._on_event)
        c.checkpoint_saved.connect(lambda e: self._set_folder(e.path))
        v = self.view
        v.find_requested.connect(self.find)
        v.coefficient_changed.connect(self.move)
        v.reset_requested.connect(self.reset)
        v.local_requested.connect(self.find_local)
        v.slot_from_point.connect(self.slot_from_point)
        v.slot_from_example.connect(self.use_example)
        v.arithmetic_requested.connect(self.go_to_result)
        v.clear_groups_requested.connect(self.clear_groups)
        v.job.cancel_requested.connect(self.client.cancel)

    @property
    def enabled(self) -> bool:
        return not directions_reason(self.ready)

    def _on_ready(self, ready: protocol.Ready) -> None:
        self.ready = ready
        data = ready.data
        self.view.set_enabled(directions_reason(ready), data.n_test if data else 0,
                              tuple(data.class_names or ()) if data else (), tuple(data.factor_names or ()) if data else (),
                              ready.capabilities.has_encoder)
        self._set_folder(ready.checkpoint)
        if not self.edit.fits(ready.latent.dim):
            self.edit.set_directions(None)
            self.view.set_directions([])
            self.view.source.setText("")
        self.arith.clear()
        self.local = None
        self.groups = Groups()
        self._asked.clear()

    def _set_folder(self, path: str | None) -> None:
        if path:
            p = Path(path)
            self.run_folder = p.parent if p.suffix else p

    # -- the point and the sliders ---------------------------------------------------------------
    def set_point(self, z: np.ndarray) -> None:
        """The Explore point moved: unless this tab moved it, it becomes the base and the sliders go back to 0."""
        self.point = np.asarray(z, np.float32).reshape(-1)
        if self.view.follow.isChecked() and self.enabled:  # local directions follow every move, echoes too
            self._follow.start()
        if self._echo:
            return
        self.edit.set_base(self.point)
        self.view.zero_sliders()

    def move(self, i: int, value: float) -> None:
        """Direction ``i``'s coefficient (standard deviations) changed: move the Explore point."""
        if i >= 0 and i < len(self.edit.coefficients):
            self.edit.set_coefficient(i, value)
        z = self.edit.z()
        if z is None:
            return
        self.view.moved.setText(self.edit.caption())
        self._echo = True
        try:
            self.point_requested.emit(z)
        finally:
            self._echo = False

    def reset(self) -> None:
        self.edit.reset()
        self.move(-1, 0.0)

    # -- finding ---------------------------------------------------------------------------------
    def find(self, request: dict) -> int:
        """Ask the worker for directions (the view's request dict); the request id (0: none sent)."""
        if not self.enabled or not self.services.has_model():
            return 0
        method = request["method"]
        extra: dict = {}
        if method == "groups":
            if not self.groups.ready():
                self.services.notify("Lasso group A and group B on the Map tab (or add images to them from the "
                                     "data set browser) first", "warning")
                return 0
            extra = self.groups.fields()
        rid = self._send("directions", protocol.FindDirections(
            method=method, k=int(request["k"]), n_examples=int(request["n"]), factor=str(request.get("factor", "")),
            from_class=int(request.get("from_class", 0)), to_class=int(request.get("to_class", 1)),
            estimator=str(request.get("estimator", "mean")), **extra))
        self.view.job.start(rid, "Finding directions")
        self.view.find_button.setEnabled(False)
        return rid

    def find_local(self) -> int:
        """Local directions around the current point; their grid follows (request id, 0: none)."""
        if not self.enabled or self.point is None or not self.services.has_model():
            return 0
        return self._send("local", protocol.FindDirections(method="local", k=self.view.local_k.value(),
                                                           n_examples=1000, point=self.point.copy()))

    def set_group(self, which: str, positions: list[int]) -> None:
        """Group ``which`` ("a" or "b") of held-out positions, for "two groups" directions (from the Map's lasso)."""
        self.groups.positions[which] = [int(p) for p in positions]
        self._groups_changed()

    def add_to_group(self, which: str, index: int) -> int:
        """Add held-out example ``index`` to group ``which`` (the browser's "group A / B" buttons); 0 (no request)."""
        if int(index) not in self.groups.positions[which]:
            self.groups.positions[which].append(int(index))
        self._groups_changed()
        return 0

    def add_image_to_group(self, which: str, image: np.ndarray, name: str = "") -> int:
        """Add an image (C, H, W) the user dropped to group ``which``; encoded with the group; 0 (no request)."""
        self.groups.images[which].append(np.asarray(image, np.float32))
        self._groups_changed()
        return 0

    def clear_groups(self) -> None:
        self.groups = Groups()
        self._groups_changed()

    def _groups_changed(self) -> None:
        self.view.groups_label.setText(self.groups.caption())
        if self.groups.ready():
            self.view.method_combo.setCurrentIndex(self.view.method_combo.findData("groups"))

    def _on_directions(self, event: protocol.DirectionsFound) -> None:
        try:
            found = DirectionSet(event.directions, event.scales, [n.split(" (")[0] for n in event.names],
                                 event.explained if event.explained is not None else [], event.method, event.source,
                                 self.ready.model if self.ready else "", event.step)
        except ConfigError as e:
            self.services.notify(f"Directions could not be used: {e}", "warning")
            return
        if self._asked.get("local") == event.request_id:
            self.local = found
            if self.point is not None:
                self.client.request_decode(local_grid(self.point, found), view="directions-local")
            return
        if self._asked.get("directions") != event.request_id:
            return
        self.view.job.finish()
        self.view.find_button.setEnabled(True)
        self.show_set(found, list(event.names))
        self.view.source.setText(f"from {event.source} (step {event.step})")

    def show_set(self, found: DirectionSet | None, labels: list[str] | None = None) -> None:
        """Use ``found`` (a fresh or loaded set): one slider each, labelled with its share of variance."""
        self.edit.set_directions(found)
        if found is not None and self.point is not None:
            self.edit.set_base(self.point)
        if found is not None and labels is None:
            labels = [n if not np.isfinite(e) else f"{n} ({100 * e:.1f}% of variance)"
                      for n, e in zip(found.names, found.explained)]
        self.view.set_directions(labels or [])
        self.view.moved.setText("the point itself")

    # -- files -----------------------------------------------------------------------------------
    def default_path(self) -> Path:
        """Where Save proposes to write: ``directions.json`` in the run folder (else the working folder)."""
        return (self.run_folder or Path.cwd()) / "directions.json"

    def save(self, path: str | Path) -> Path:
        """Write the current set as JSON.

        Raises
        ------
        ValueError
            Without directions.
        """
        if self.edit.found is None:
            raise ValueError("no directions to save yet: press Find directions")
        p = self.edit.found.write(path)
        self.services.file_written(str(p), "")
        return p

    def load(self, path: str | Path) -> DirectionSet:
        """Read a set (checked as untrusted) and show it.

        Raises
        ------
        ValueError
            A file that is not a direction set (ConfigError names it), or one for another width of z.
        """
        found = DirectionSet.read(path)
        dim = self.ready.latent.dim if self.ready else 0
        if found.dim != dim:
            raise ValueError(f"{path}: directions in a z of {found.dim} values; this model's z has {dim}")
        self.show_set(found)
        self.view.source.setText(f"loaded from {Path(path).name}: {found.source}")
        return found

    def export(self, path: str | Path) -> int:
        """A traversal along every direction from the moved point (PNG grid or GIF), with its sidecar (request id).

        Raises
        ------
        ValueError
            Without directions or a point.
        """
        latents = self.edit.traversal_latents()
        settings = {"fps": 8, "size": None, "resample": "nearest", "labels": Path(path).suffix.lower() == ".png"}
        return self.services.exports.send("traversal", path, latents, settings, self.view.job)

    # -- arithmetic ------------------------------------------------------------------------------
    def slot_from_point(self, slot: str) -> None:
        """Slot ``slot`` takes the current point."""
        if self.point is not None:
            self._set_slot(slot, self.point, "point")

    def use_example(self, slot: str, index: int) -> int:
        """Slot ``slot`` takes held-out example ``index`` (encoded, or projected); the request id."""
        if not self.services.has_model():
            return 0
        rid = self.client.request_encode([int(index)], view=f"directions-{slot}", split="test")
        self._slot_of[rid] = f"held-out #{index}"
        return rid

    def use_image(self, slot: str, image: np.ndarray, name: str) -> int:
        """Slot ``slot`` takes an image (C, H, W) the user dropped (encoded, or projected); the request id."""
        if not self.services.has_model():
            return 0
        rid = self.client.request_encode_images(np.asarray(image, np.float32)[None], view=f"directions-{slot}")
        self._slot_of[rid] = name
        return rid

    def _set_slot(self, slot: str, z: np.ndarray, label: str) -> None:
        self.arith.set(slot, z, label)
        self.view.set_slot(slot, None, f"{slot}: {label}")
        self.client.request_decode(np.asarray(z, np.float32)[None], view=f"directions-{slot}")
        result = self.arith.result()
        self.view.go_button.setEnabled(result is not None)
        if result is not None:
            self.view.set_slot("result", None, self.arith.caption())
            self.client.request_decode(result[None], view="directions-result")

    def go_to_result(self) -> None:
        """Move the Explore point to a - b + c (a new base)."""
        result = self.arith.result()
        if result is not None:
            self.point_requested.emit(result)

    def _on_encoded(self, event: protocol.Encoded) -> None:
        label = self._slot_of.pop(event.request_id, None)
        if label is None or not event.view.startswith("directions-") or event.z is None or not len(event.z):
            return
        self._set_slot(event.view.split("-", 1)[1], event.z[0], label)

    def _on_decoded(self, event: protocol.Decoded) -> None:
        if not event.view.startswith("directions-") or event.images is None or event.images.ndim != 4:
            return
        where = event.view.split("-", 1)[1]
        if where == "local" and self.local is not None:
            self.view.set_local(event.images, self.local.names)
        elif where in (*SLOTS, "result"):
            self.view.set_slot(where, event.images[0], self.view.slot_views[where].title.text()
                               if where in SLOTS else self.arith.caption())

    # -- plumbing --------------------------------------------------------------------------------
    def _send(self, purpose: str, command: protocol.Command) -> int:
        self._asked[purpose] = rid = self.services.send_request(command)
        return rid

    def _on_progress(self, event: protocol.Progress) -> None:
        if self._asked.get("directions") == event.request_id and self.view.job.update_progress(event):
            if event.message == "cancelled":
                self.view.find_button.setEnabled(True)

    def _on_event(self, event: protocol.Event) -> None:
        if isinstance(event, protocol.DirectionsFound):
            self._on_directions(event)
        elif isinstance(event, protocol.Error) and event.command == "FindDirections":
            if self.view.job.request_id == self._asked.get("directions"):
                self.view.job.finish()
            self.view.find_button.setEnabled(self.enabled)
