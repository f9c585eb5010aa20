"""The Explore panel's controller: slider moves become Decode requests, held-out examples become sliders.

Every slider move asks the worker to decode the new z (the client keeps one decode in flight per
view, the newest pending one replacing older ones); "Set from image" encodes a held-out example and
moves the sliders to its posterior mean. The panel's rows follow the per-dimension KL the trainer
streams (or, for a model whose latent is binary units, each unit's effect on the decoded image) and the
factor labels the disentanglement measurements give.

Signals tell the shell what other features follow: :attr:`ExploreController.point_changed` (the
current z), :attr:`rows_changed` (the continuous dimensions in display order, with their labels)
and :attr:`input_shown` (the image an encoded z came from).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from engines.shared import protocol
from studio.features.explore.view import ExplorePanel
from studio.services import Services


class ExploreController(QObject):
    """Drives an :class:`ExplorePanel` from the worker.

    Parameters
    ----------
    services : Services

    Signals
    -------
    point_changed(object)
        The current z, (D,) float32, after every slider move or encode.
    rows_changed(list, list)
        Indices of the continuous dimensions in the panel's order (most informative first) and their labels.
    input_shown(object, str)
        An image (C, H, W) whose encoding set the sliders, and its title.
    """

    point_changed = Signal(object)
    rows_changed = Signal(list, list)
    input_shown = Signal(object, str)

    def __init__(self, services: Services, parent: QObject | None = None) -> None:
        super().__init__(parent or services)
        self.services = services
        self.view = ExplorePanel()
        self._encoding: dict[int, int] = {}  # Encode request id -> the held-out index it encodes
        c = services.client
        c.ready.connect(self._on_ready)
        c.encoded.connect(self._on_encoded)
        c.metrics.connect(self._on_metrics)
        c.disentanglement.connect(self._on_disentanglement)
        self.view.z_changed.connect(self._on_z)
        self.view.encode_requested.connect(self.encode_example)
        self.view.order_changed.connect(self._emit_rows)

    # -- rows ------------------------------------------------------------------------------------
    def rows(self) -> tuple[list[int], list[str]]:
        """The continuous dimensions in the panel's order, and their labels."""
        spec = self.view.spec
        dims = [int(i) for i in self.view.order if spec.dims[int(i)].continuous]
        return dims, [self.view.row_label(d) for d in dims]

    def _emit_rows(self) -> None:
        self.rows_changed.emit(*self.rows())

    # -- worker ----------------------------------------------------------------------------------
    def _on_ready(self, ready: protocol.Ready) -> None:
        self.view.set_latent(ready.latent)
        self.view.set_encoder(ready.capabilities.has_encoder, ready.data.n_test)
        self._encoding.clear()
        self._emit_rows()
        self.point_changed.emit(np.asarray(self.view.z(), np.float32))  # the prior centre of the new model
        self.decode()

    def decode(self) -> None:
        """Ask for the image at the current z (the Explore view)."""
        z = self.view.z()
        if self.services.has_model() and len(z):
            self.services.client.request_decode(np.asarray(z, np.float32)[None], view="explore")

    def _on_z(self, z: np.ndarray) -> None:
        self.services.note_interaction()
        self.decode()
        self.point_changed.emit(np.asarray(z, np.float32))

    def encode_example(self, index: int) -> int:
        """Encode held-out example ``index``; the sliders move to its posterior mean when it arrives (request id, 0: none)."""
        if not self.services.has_model():
            return 0
        rid = self.services.client.request_encode([int(index)], view="explore", split="test")
        self._encoding[rid] = int(index)
        self.view.index_spin.setValue(int(index))
        return rid

    def encode_image(self, image: np.ndarray) -> int:
        """Encode (or, without an encoder, project) an image (C, H, W) the user handed us; the sliders follow."""
        if not self.services.has_model():
            return 0
        return self.services.client.request_encode_images(np.asarray(image, np.float32)[None], view="explore")

    def _on_encoded(self, event: protocol.Encoded) -> None:
        index = self._encoding.pop(event.request_id, None)
        if event.view != "explore" or event.z is None or not len(event.z):
            return
        if event.images is not None and len(event.images):
            self.input_shown.emit(event.images[0], "Input" if index is None else f"Input: held-out #{index}")
        self.view.set_z(event.z[0])

    def _on_metrics(self, event: protocol.StepMetrics) -> None:
        if event.latent_kl is not None:
            self.view.set_latent_kl(event.latent_kl)  # re-sorts on a timer, then order_changed
        elif event.unit_effect is not None:
            self.view.set_unit_effect(event.unit_effect)  # binary units: by how much flipping each changes the image

    def _on_disentanglement(self, event: protocol.DisentanglementMeasured) -> None:
        if event.mi_matrix is not None:
            self.view.set_factor_labels(event.mi_matrix, list(event.factor_names))
            self._emit_rows()
