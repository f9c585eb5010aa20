"""The "Samples & decode" tab: the fixed-z sample grid beside the image decoded at the Explore sliders.

The worker sends a fresh grid from the same fixed z as the model learns (``Samples`` with request id
-1). For 2-D points 64 samples are too few to see a density, so the first grid asks for
:data:`POINT_SAMPLES` more. Every new grid means new weights: :attr:`SamplesController.weights_changed`
tells the shell, which has the Explore point decoded again and the traversal refreshed.
"""

from __future__ import annotations

import time

from concurrent.futures import Future
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QSplitter

from engines.shared import protocol
from studio.features.samples.state import POINT_SAMPLES, SampleFeed
from studio.features.samples.view import DecodedView, SamplesView
from studio.services import Services
from studio.services.core import INTERACTIVE_HOLD, MAX_HOLD
from studio.widgets.basic import FpsCounter
from studio.widgets.images import write_png

__all__ = ["POINT_SAMPLES", "SampleFeed", "SamplesController"]


class SamplesController(QObject):
    """Shows the sample grid and the decoded image; exports both to PNG.

    Parameters
    ----------
    services : Services
    fps : FpsCounter, optional
        Ticked by both views on every redraw.

    Attributes
    ----------
    view : QSplitter
        The tab: :attr:`samples_view` beside :attr:`decoded_view`.

    Signals
    -------
    weights_changed()
        A new fixed-z grid arrived: the model moved on.
    """

    weights_changed = Signal()

    def __init__(self, services: Services, fps: FpsCounter | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent or services)
        self.services = services
        self.requests = services.requests()
        self._held: protocol.Samples | None = None  # a grid waiting for the sliders to rest
        self._held_since = 0.0
        self._hold_timer = QTimer(self)
        self._hold_timer.setSingleShot(True)
        self._hold_timer.timeout.connect(self._release_held)
        self.samples_view = SamplesView(fps=fps)
        self.decoded_view = DecodedView(fps=fps)
        self.view = QSplitter(Qt.Orientation.Horizontal)
        self.view.addWidget(self.samples_view)
        self.view.addWidget(self.decoded_view)
        self.view.setSizes([500, 500])
        self.state = SampleFeed()
        self.past: int | None = None  # the timeline's scrubbed step: live grids and decodes wait
        self._latest: protocol.Samples | None = None
        c = services.client
        c.ready.connect(self._on_ready)
        c.samples.connect(self._on_samples)
        c.decoded.connect(self._on_decoded)
        c.coverage.connect(self.samples_view.set_coverage)

    def _on_ready(self, ready: protocol.Ready) -> None:
        self._held = self._latest = None  # a grid of the old model
        self.past = None
        self._hold_timer.stop()
        self.samples_view.set_data(ready.data)
        self.decoded_view.set_data(ready.data)
        self.requests.forget("points")
        self.state.reset()  # the worker sends a first grid after Ready

    def _on_samples(self, event: protocol.Samples) -> None:
        if event.images is None:
            return
        points = event.images.ndim == 2
        if event.request_id == -1:  # the fixed-z grid: the model moved on
            self._latest = event
            if self.past is not None:
                return
            if points and not self.requests.asked("points"):  # 64 points are too few to see a density
                rid = self.requests.ask("points")
                self.services.send(protocol.Sample(request_id=rid, n=POINT_SAMPLES, seed=0))
            if self.state.show_grid(points):
                self._show_when_idle(event)
            self.weights_changed.emit()
        elif self.requests.is_current("points", event.request_id):
            self.requests.take("points", event.request_id)
            self._show(event, large_sample=True)

    def _show_when_idle(self, event: protocol.Samples) -> None:
        """Show a new fixed-z grid now, or, while a slider is dragged, once it rests (at most
        :data:`~studio.services.core.MAX_HOLD` s late): the decode answer gets the GUI thread first."""
        now = time.monotonic()
        if not self.services.interacting() or (self._held is not None and now - self._held_since >= MAX_HOLD):
            self._held = None
            self._show(event)
            return
        if self._held is None:
            self._held_since = now
        self._held = event
        self._hold_timer.start(int(INTERACTIVE_HOLD * 1000))

    def _release_held(self) -> None:
        if self._held is not None:
            self._show_when_idle(self._held)

    def _show(self, event: protocol.Samples, large_sample: bool = False) -> None:
        self.state.shown(event.step, large_sample)
        self.samples_view.set_samples(event.images, event.step)
        if event.images.ndim == 2:
            self.decoded_view.set_samples_backdrop(event.images)

    def _on_decoded(self, event: protocol.Decoded) -> None:
        if event.view == "explore" and event.images is not None and len(event.images) and self.past is None:
            self.decoded_view.set_decoded(event.images, event.step)

    def show_past(self, step: int, grid: np.ndarray | None, image: np.ndarray | None) -> None:
        """The timeline is at snapshot ``step``: show its fixed-z grid and Explore image (C, H, W); the live ones
        wait for :meth:`show_live`."""
        self.past = int(step)
        if grid is not None and len(grid):
            self.samples_view.set_samples(grid, step)
            if np.asarray(grid).ndim == 4:
                self.samples_view.images.set_title(f"{len(grid)} samples from a fixed z, step {step:,} (timeline)")
        if image is not None:
            self.decoded_view.set_decoded(np.asarray(image)[None], step)

    def show_live(self) -> None:
        """Back from the timeline: the latest live grid again, and the Explore point decoded by the live model."""
        if self.past is None:
            return
        self.past = None
        if self._latest is not None:
            self._show(self._latest)
        self.weights_changed.emit()

    def show_input(self, image: np.ndarray, title: str) -> None:
        """Show the image the Explore point came from (an encoded example) beside the decode."""
        self.decoded_view.set_input(image, title)

    # -- exports ---------------------------------------------------------------------------------
    def export_image(self, path: str | Path) -> Future:
        """Write the decoded image to a PNG (nearest upscaling) on the export thread.

        Raises
        ------
        ValueError
            If nothing has been decoded yet.
        """
        picture = self.decoded_view.picture()
        if picture is None:
            raise ValueError("no decoded image to export yet")
        return self.services.write(picture, path, write_png)

    def export_grid(self, path: str | Path) -> Future:
        """Write the sample grid to a PNG on the export thread.

        Raises
        ------
        ValueError
            If no samples have arrived yet.
        """
        picture = self.samples_view.picture()
        if picture is None:
            raise ValueError("no sample grid to export yet")
        return self.services.write(picture, path, write_png)
