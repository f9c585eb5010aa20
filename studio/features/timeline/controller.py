"""The timeline feature: scrub back through the run's weight snapshots and branch a new run from one.

The worker keeps a snapshot every N steps (:mod:`engines.worker.timeline`) and says so with
:class:`~engines.shared.protocol.TimelineChanged`. Moving the slider asks for the fixed-z grid and the
Explore image by the model as it was (:class:`~engines.shared.protocol.ScrubTimeline`); the answer goes
out as :attr:`TimelineController.shown`, which the shell hands to the samples and to every plot over steps.
"Branch from here" opens the snapshot as a new run (a :class:`~engines.shared.protocol.LoadCheckpoint`).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from engines.shared import protocol
from studio.features.timeline.state import TimelineState
from studio.features.timeline.view import TimelineBar
from studio.services import Services


class TimelineController(QObject):
    """Drives a :class:`TimelineBar`.

    Signals
    -------
    shown(int step, object grid, object image)
        The model at snapshot ``step``: the grid (N, C, H, W) or (N, 2), and the Explore image (C, H, W) or None.
    live()
        Back to now.
    """

    shown = Signal(int, object, object)
    live = Signal()

    def __init__(self, services: Services, parent: QObject | None = None) -> None:
        super().__init__(parent or services)
        self.services = services
        self.state = TimelineState()
        self.view = TimelineBar(self.state)
        self.requests = services.requests()
        self.point: np.ndarray | None = None
        self.view.moved.connect(self.scrub)
        self.view.branch_requested.connect(self.branch)
        services.client.event_received.connect(self._on_event)
        services.model_changed.connect(self._on_model)

    @property
    def step(self) -> int | None:
        """The scrubbed step (None when live)."""
        return self.state.step_at(self.state.index)

    def _on_model(self, *_args: object) -> None:
        if not self.state.live:
            self.state.index = len(self.state.steps)
            self.live.emit()
        self.requests.forget("scrub")
        self.view.refresh()

    def _on_event(self, event: protocol.Event) -> None:
        if isinstance(event, protocol.TimelineChanged):
            was_live = self.state.live
            self.state.update(event.steps, event.nbytes, event.max_bytes, event.every, event.folder)
            self.view.refresh()
            if not was_live and self.state.live:  # the scrubbed snapshot was thinned away
                self.live.emit()
        elif isinstance(event, protocol.TimelineFrame) and self.requests.is_current("scrub", event.request_id):
            self.requests.take("scrub", event.request_id)
            if not self.state.live and event.step == self.step:
                self.shown.emit(event.step, event.grid, event.image)

    def scrub(self, index: int) -> int:
        """Go to snapshot ``index`` (``len(steps)``: live); the request id (0 when live or nothing to ask)."""
        self.state.index = max(0, min(int(index), len(self.state.steps)))
        self.view.refresh()
        if self.state.live:
            self.requests.forget("scrub")
            self.live.emit()
            return 0
        return self._ask()

    def set_point(self, z: np.ndarray) -> None:
        """The Explore point moved: while scrubbed, decode it by the past model too."""
        self.point = np.asarray(z, np.float32).reshape(-1)
        if not self.state.live:
            self._ask()

    def _ask(self) -> int:
        rid = self.requests.ask("scrub")
        z = self.point if self.point is not None and len(self.point) else None
        self.services.send(protocol.ScrubTimeline(request_id=rid, step=int(self.step), z=z))
        return rid

    def branch(self) -> bool:
        """Continue training from the scrubbed snapshot as a new run (the current run stays on disk)."""
        if self.state.live:
            return False
        return self.services.send(protocol.LoadCheckpoint(path=str(self.state.path_at(self.step))))

    def configure(self, every: int, max_mb: int) -> bool:
        """Keep a snapshot every ``every`` steps within ``max_mb`` MB of disk."""
        return self.services.send(protocol.SetTimeline(every=int(every), max_mb=int(max_mb)))
