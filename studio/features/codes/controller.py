"""The Codes tab's glue: GetCodebook, Encode (view "codes") and Decode (views "codes-A" / "codes-B") out;
Codebook, Encoded and Decoded in; the categorical VAE's ``grad_var/<estimator>`` terms from StepMetrics.

Enabled from the declared capabilities: the codebook's usage and the code grids for a model with the
``codebook`` extra (vq-vae), the gradient-variance plot for any model with categorical latents.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QTimer

from engines.shared import protocol
from studio.features.codes.state import (
    code_grid_shape, codes_of, codes_reason, one_hot, swap_region, usage_text, with_code,
)
from studio.features.codes.view import CodesView
from studio.services import Services
from studio.widgets.images import grid

#: Milliseconds between two refreshes of the codebook's usage while the tab is shown.
USAGE_EVERY_MS = 2000


class CodesController(QObject):
    """Drives a :class:`CodesView` from the worker."""

    def __init__(self, services: Services, parent: QObject | None = None) -> None:
        super().__init__(parent or services)
        self.services = services
        self.requests = services.requests()
        self.view = CodesView()
        self.enabled = self.codebook = False
        self.side = self.k = 0
        self.codes: dict[str, np.ndarray | None] = {"A": None, "B": None}
        self.originals: dict[str, np.ndarray | None] = {"A": None, "B": None}
        self._encoding: dict[int, str] = {}
        self._usage_step = -1  # the step of the usage on screen
        c = services.client
        c.ready.connect(self._on_ready)
        c.metrics.connect(self._on_metrics)
        c.encoded.connect(self._on_encoded)
        c.decoded.connect(self._on_decoded)
        c.event_received.connect(self._on_event)
        v = self.view
        v.usage_requested.connect(self.request_usage)
        v.encode_requested.connect(self.encode)
        v.paint_requested.connect(self.paint)
        v.swap_requested.connect(self.swap)
        self.timer = QTimer(self)
        self.timer.setInterval(USAGE_EVERY_MS)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _on_ready(self, ready: protocol.Ready) -> None:
        reason = codes_reason(ready)
        self.enabled = not reason
        shape = code_grid_shape(ready.latent) if ready.capabilities.has("codebook") else None
        self.codebook = self.enabled and shape is not None
        self.side, self.k = shape or (0, 0)
        self.codes = {"A": None, "B": None}
        self.originals = {"A": None, "B": None}
        self._encoding.clear()
        self._usage_step = -1
        self.requests.forget()
        self.view.set_enabled(reason, self.codebook, ready.data.n_test, self.k)
        if self.codebook:
            self.request_usage()

    def _on_metrics(self, event: protocol.StepMetrics) -> None:
        if self.enabled and event.values is not None and len(event.steps):
            if self.view.history.add(event.steps, event.names, event.values):
                self.view.show_variance()

    # -- the codebook ----------------------------------------------------------------------------
    def request_usage(self) -> int:
        """Ask for the codebook's usage; the request id (0: off or one is on its way)."""
        if not self.codebook or self.requests.asked("usage"):
            return 0
        rid = self.requests.ask("usage")
        self.services.send(protocol.GetCodebook(request_id=rid))
        return rid

    def _tick(self) -> None:
        """While the tab is shown: the usage again, once the weights have moved on from the last answer's."""
        if (self.codebook and self.view.live_check.isChecked() and self.view.isVisible()
                and self.services.client.step != self._usage_step):
            self.request_usage()

    # -- the code grids --------------------------------------------------------------------------
    def encode(self, slot: str, index: int) -> int:
        """Encode held-out example ``index`` into ``slot`` ("A" or "B"); the request id."""
        if not self.codebook:
            return 0
        rid = self.requests.ask(f"encode-{slot}")
        self._encoding[rid] = slot
        self.services.send(protocol.Encode(request_id=rid, view="codes", indices=[int(index)], split="test"))
        return rid

    def set_codes(self, slot: str, codes: np.ndarray) -> int:
        """Show ``codes`` (G, G) in ``slot`` and decode them; the decode's request id."""
        self.codes[slot] = np.asarray(codes, np.int64)
        self.view.grids[slot].set_codes(self.codes[slot], self.k)
        return self.services.client.request_decode(one_hot(self.codes[slot], self.k)[None], view=f"codes-{slot}")

    def paint(self, slot: str, row: int, col: int) -> int:
        """Set position (row, col) of ``slot``'s grid to the Paint code and decode; the request id (0: no grid)."""
        if self.codes[slot] is None:
            return 0
        return self.set_codes(slot, with_code(self.codes[slot], row, col, self.view.paint_spin.value()))

    def swap(self, cells: list[tuple[int, int]] | None = None) -> bool:
        """Exchange the codes at ``cells`` (default: the region selected in A) between A and B and decode both."""
        a, b = self.codes["A"], self.codes["B"]
        cells = self.view.grids["A"].selected_cells() if cells is None else cells
        if a is None or b is None or not cells:
            self.services.notify("Codes: encode A and B, then drag out a region in A to swap", "info")
            return False
        a2, b2 = swap_region(a, b, cells)
        self.set_codes("A", a2)
        self.set_codes("B", b2)
        return True

    def _on_encoded(self, event: protocol.Encoded) -> None:
        slot = self._encoding.pop(event.request_id, None)
        if slot is None or not self.requests.is_current(f"encode-{slot}", event.request_id) or event.z is None:
            return
        self.requests.take(f"encode-{slot}", event.request_id)
        self.originals[slot] = None if event.images is None else np.asarray(event.images[:1], np.float32)
        self.set_codes(slot, codes_of(event.z[0], self.side, self.k))

    def _on_decoded(self, event: protocol.Decoded) -> None:
        slot = {"codes-A": "A", "codes-B": "B"}.get(event.view)
        if slot is None or event.images is None or not len(event.images):
            return
        decoded = np.asarray(event.images[:1], np.float32)
        original = self.originals[slot]
        pictures = decoded if original is None else np.concatenate([original, decoded])
        self.view.images[slot].set_image(grid(pictures, ncols=len(pictures)))
        self.view.images[slot].set_title(f"{slot}: the example | decoded from the grid above (step {event.step:,})")

    def _on_event(self, event: protocol.Event) -> None:
        if isinstance(event, protocol.Codebook) and self.requests.is_current("usage", event.request_id):
            self.requests.take("usage", event.request_id)
            self._usage_step = event.step
            self.view.show_usage(event.usage, event.dead,
                                 usage_text(event.usage, event.dead, event.perplexity, event.step,
                                            event.images))
        elif isinstance(event, protocol.Error) and event.command == "GetCodebook":
            self.requests.forget("usage")
