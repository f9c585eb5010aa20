"""The Energy tab's glue: RunChains, GetFilters, InspectHidden and EstimateLogZ out; ChainFrame, Filters,
HiddenInspected and LogZEstimated in; the free-energy terms and a deep belief net's stage from StepMetrics.

Enabled from the declared capabilities (the ``chains`` extra: rbm, grbm, dbn; log Z where the likelihood is
"ais"); held-out examples for a clamped chain or the hidden units come from the worker (``GetExamples``).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject

from engines.shared import protocol
from studio.features.energy.state import (
    energy_reason, hidden_picture, hidden_title, known_mask, layer_count, log_z_reason, log_z_text, stage_text,
)
from studio.features.energy.view import EnergyView
from studio.services import Services
from studio.widgets.images import grid

#: Pause between two frames of the chains, ms: slow enough to watch them mix.
FRAME_DELAY_MS = 30.0
#: Frames of one run of the chains.
FRAMES = 400


class EnergyController(QObject):
    """Drives an :class:`EnergyView` from the worker."""

    def __init__(self, services: Services, parent: QObject | None = None) -> None:
        super().__init__(parent or services)
        self.services = services
        self.requests = services.requests()
        self.view = EnergyView()
        self.enabled = False
        self.shape: tuple[int, ...] = ()
        self._complete: tuple[str, int, int] | None = None  # (mask, n, sweeps) waiting for its example
        self._inspect: int | None = None  # the held-out index whose hidden units are asked for
        self._example: np.ndarray | None = None
        self.layers, self.layer_steps = 1, 0
        c = services.client
        c.ready.connect(self._on_ready)
        c.metrics.connect(self._on_metrics)
        c.examples.connect(self._on_examples)
        c.progress.connect(self.view.job.update_progress)
        c.event_received.connect(self._on_event)
        v = self.view
        v.run_requested.connect(self.run)
        v.stop_requested.connect(self.stop)
        v.complete_requested.connect(self.complete)
        v.filters_requested.connect(self.show_filters)
        v.hidden_requested.connect(self.inspect_hidden)
        v.log_z_requested.connect(self.estimate_log_z)
        v.job.cancel_requested.connect(lambda rid: self.services.client.cancel(rid))

    def _on_ready(self, ready: protocol.Ready) -> None:
        reason = energy_reason(ready)
        self.enabled = not reason
        self.shape = tuple(ready.data.shape)
        self.requests.forget()
        self.view.job.finish()
        self.view.log_z_label.setText("")
        self.layers = layer_count(ready.config) if self.enabled else 1
        self.layer_steps = int(ready.config.get("layer_steps", 0) or 0)
        self.view.set_enabled(reason, ready.data.n_test, log_z_reason(ready), self.layers)
        for picture, title in ((self.view.example, "No example inspected"), (self.view.chains, "No chains yet"),
                               (self.view.filters, "No filters shown"),
                               (self.view.hidden, "Hidden units: pick a held-out example and press Hidden units")):
            picture.clear()  # another model's pictures would mislead
            picture.set_title(title)

    def _on_metrics(self, event: protocol.StepMetrics) -> None:
        if not self.enabled or event.values is None or not len(event.steps):
            return
        if self.view.history.add(event.steps, event.names, event.values):
            self.view.show_free_energy()
        if self.layers > 1 and "layer" in event.names:
            col = np.asarray(event.values)[:, list(event.names).index("layer")]
            col = col[np.isfinite(col)]
            if len(col):
                self.view.set_stage(stage_text(float(col[-1]), self.layers, self.layer_steps))

    # -- chains ----------------------------------------------------------------------------------
    def run(self, n: int = 16, sweeps: int = 1, image: np.ndarray | None = None, known: np.ndarray | None = None) -> int:
        """Start ``n`` chains (clamped to ``image`` where ``known``); the request id (0: off)."""
        if not self.enabled:
            return 0
        self.stop()
        rid = self.requests.ask("chains")
        self.services.send(protocol.RunChains(request_id=rid, n=int(n), sweeps=int(sweeps), frames=FRAMES,
                                              delay_ms=FRAME_DELAY_MS, image=image, known=known))
        self.view.set_running(True)
        return rid

    def stop(self) -> None:
        """Stop the chains running (their last frame stays)."""
        rid = self.requests.asked("chains")
        if rid:
            self.services.client.cancel(rid)
            self.requests.forget("chains")
        self.view.set_running(False)

    def complete(self, index: int, mask: str, n: int, sweeps: int) -> int:
        """Clamp part of held-out example ``index`` and sample the rest (asks for the example first)."""
        if not self.enabled:
            return 0
        rid = self.requests.ask("example")
        self._complete = (mask, int(n), int(sweeps))
        self.services.send(protocol.GetExamples(request_id=rid, split="test", indices=[int(index)]))
        return rid

    def inspect_hidden(self, index: int) -> int:
        """Ask for held-out example ``index``, then its hidden units' probabilities; the request id."""
        if not self.enabled:
            return 0
        rid = self.requests.ask("hidden_example")
        self._inspect = int(index)
        self.services.send(protocol.GetExamples(request_id=rid, split="test", indices=[int(index)]))
        return rid

    def _on_examples(self, event: protocol.Examples) -> None:
        if self.requests.is_current("hidden_example", event.request_id) and self._inspect is not None:
            self.requests.take("hidden_example", event.request_id)
            self._example = np.asarray(event.images[:1], np.float32)
            rid = self.requests.ask("hidden")
            self.services.send(protocol.InspectHidden(request_id=rid, image=self._example))
            return
        if not self.requests.is_current("example", event.request_id) or self._complete is None:
            return
        self.requests.take("example", event.request_id)
        mask, n, sweeps = self._complete
        self._complete = None
        image = np.asarray(event.images[:1], np.float32)
        self.run(n, sweeps, image, known_mask(mask, *self.shape[1:]))

    # -- filters and log Z -----------------------------------------------------------------------
    def show_filters(self, layer: int = 0) -> int:
        """Ask for hidden ``layer``'s filters (0 the first); the request id."""
        if not self.enabled:
            return 0
        rid = self.requests.ask("filters")
        self.services.send(protocol.GetFilters(request_id=rid, layer=int(layer)))
        return rid

    def estimate_log_z(self, runs: int = 100, betas: int = 1000) -> int:
        """Estimate log Z by AIS (progress and Cancel in the tab); the request id."""
        if not self.enabled:
            return 0
        rid = self.requests.ask("log_z")
        self.services.send(protocol.EstimateLogZ(request_id=rid, runs=int(runs), betas=int(betas)))
        self.view.job.start(rid, "Annealing")
        return rid

    def _on_event(self, event: protocol.Event) -> None:
        if isinstance(event, protocol.ChainFrame) and self.requests.is_current("chains", event.request_id):
            n = len(event.images)
            self.view.chains.set_image(grid(event.images, ncols=int(np.ceil(np.sqrt(n)))))
            self.view.chains.set_title(f"{n} chains after {event.sweep:,} sweeps (model at step {event.step:,})")
            if event.final:
                self.requests.take("chains", event.request_id)
                self.view.set_running(False)
        elif isinstance(event, protocol.Filters) and self.requests.is_current("filters", event.request_id):
            self.requests.take("filters", event.request_id)
            k = len(event.images)
            self.view.filters.set_image(grid(event.images, ncols=int(np.ceil(np.sqrt(k)))))
            where = f"layer {event.layer + 1} of {event.layers}, " if event.layers > 1 else ""
            self.view.filters.set_title(f"{k} hidden units' filters ({where}step {event.step:,}; grey 0, white +, "
                                        f"black -)")
        elif isinstance(event, protocol.HiddenInspected) and self.requests.is_current("hidden", event.request_id):
            self.requests.take("hidden", event.request_id)
            if self._example is not None:
                self.view.example.set_image(grid(np.concatenate([self._example, event.recon]), ncols=2))
                self.view.example.set_title("The example | decoded from its top hidden layer")
            self.view.hidden.set_image(hidden_picture(event.probs, event.sizes))
            self.view.hidden.set_title(hidden_title(self._inspect or 0, event.probs, event.sizes, event.step))
        elif isinstance(event, protocol.LogZEstimated) and self.requests.is_current("log_z", event.request_id):
            self.requests.take("log_z", event.request_id)
            self.view.job.finish()
            self.view.log_z_label.setText(log_z_text(event))
        elif isinstance(event, protocol.Error) and event.command in ("RunChains", "GetFilters", "EstimateLogZ",
                                                                          "InspectHidden"):
            self.view.job.finish()
            self.view.set_running(False)
