"""The Pixels tab's glue: DrawPixels and PixelSurprise out, PixelFrame and PixelSurprised in.

Enabled from the declared capabilities (``sampling == "autoregressive"``); for any other model the tab
says why it is off. Held-out examples come from the worker (``GetExamples``, view "pixels").
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject

from engines.shared import protocol
from studio.features.pixels.state import FRAMES, PixelRun, delay_for, known_mask, pixels_reason, surprise_caption
from studio.features.pixels.view import PixelsView
from studio.services import Services

__all__ = ["PixelsController", "PixelsView"]


class PixelsController(QObject):
    """Drives a :class:`PixelsView` from the worker.

    Attributes
    ----------
    view : PixelsView
    run : PixelRun
        The drawing shown.
    """

    def __init__(self, services: Services, parent: QObject | None = None) -> None:
        super().__init__(parent or services)
        self.services = services
        self.requests = services.requests()
        self.view = PixelsView()
        self.run = PixelRun()
        self.shape: tuple[int, ...] = ()
        self.enabled = False
        self._pending_complete: tuple[str, int, int] | None = None
        c = services.client
        c.ready.connect(self._on_ready)
        c.pixel_frame.connect(self._on_frame)
        c.pixel_surprise.connect(self._on_surprise)
        c.examples.connect(self._on_examples)
        c.progress.connect(self._on_progress)
        v = self.view
        v.draw_requested.connect(self.draw)
        v.pause_requested.connect(self.pause)
        v.continue_requested.connect(self.resume)
        v.complete_requested.connect(self.complete)
        v.surprise_requested.connect(self.surprise)

    def _on_ready(self, ready: protocol.Ready) -> None:
        reason = pixels_reason(ready.capabilities)
        if not reason and ready.data.kind != "image":
            reason = "Pixel-by-pixel drawing needs image data"
        self.enabled = not reason
        self.shape = tuple(ready.data.shape)
        self.run = PixelRun()
        self.requests.forget()
        self.view.set_enabled(reason, ready.data.n_test)
        self.view.frames.clear()
        self.view.frames.set_title("Nothing drawn yet")

    # -- drawing ---------------------------------------------------------------------------------
    def _send_draw(self, n: int, seed: int, image: np.ndarray | None = None, known: np.ndarray | None = None) -> int:
        if not self.enabled:
            return 0
        if self.run.running:  # one drawing at a time: the old one stops
            self.services.send(protocol.Cancel(request_id=self.run.request_id))
        rid = self.services.next_id()
        self.run.start(rid)
        self.services.send(protocol.DrawPixels(
            request_id=rid, n=int(n), seed=int(seed), image=image, known=known, frames=FRAMES,
            delay_ms=delay_for(self.view.delay_notch())))
        self.view.set_running(True, False)
        return rid

    def draw(self, n: int, seed: int) -> int:
        """Draw ``n`` fresh samples pixel by pixel; the request id (0: the tab is off)."""
        return self._send_draw(n, seed)

    def pause(self) -> None:
        """Stop the drawing; its partial images stay (a single one can Continue)."""
        if self.run.running:
            self.services.send(protocol.Cancel(request_id=self.run.request_id))
            self.run.stopped()
            self.view.set_running(False, self.run.can_continue)
            self.view.frames.set_title(self.run.caption())

    def resume(self) -> int:
        """Continue a paused single image from the pixels drawn so far (sent as the known part)."""
        if not self.run.can_continue:
            return 0
        image, drawn = self.run.images, self.run.drawn
        return self._send_draw(1, self.view.seed_spin.value() + self.run.done, image[:1].copy(), drawn.copy())

    def complete(self, index: int, mask: str, n: int, seed: int) -> int:
        """Ask for held-out example ``index``; when it arrives, draw ``n`` completions of it under ``mask``."""
        if not self.enabled:
            return 0
        self._pending_complete = (mask, n, seed)
        rid = self.requests.ask("complete-example", int(index))
        self.services.send(protocol.GetExamples(request_id=rid, split="test", indices=[int(index)]))
        return rid

    def _on_examples(self, event: protocol.Examples) -> None:
        if not self.requests.is_current("complete-example", event.request_id) or event.images is None:
            return
        self.requests.shown("complete-example", event.request_id)
        if self._pending_complete is None:
            return
        mask, n, seed = self._pending_complete
        self._pending_complete = None
        x = np.asarray(event.images[:1], np.float32)
        known = known_mask(mask, x.shape[-2], x.shape[-1])
        self.view.show_example(x[0], known)
        self._send_draw(n, seed, x, known)

    def _on_frame(self, event: protocol.PixelFrame) -> None:
        if event.images is None or not self.run.frame(event.request_id, event.images, event.drawn, event.done,
                                                       event.total, event.final):
            return
        self.view.show_frame(self.run.images, self.run.caption())
        if event.final:
            self.view.set_running(False, self.run.can_continue)

    def _on_progress(self, event: protocol.Progress) -> None:
        if event.request_id == self.run.request_id and event.message == "cancelled":
            self.run.stopped()
            self.view.set_running(False, self.run.can_continue)

    # -- surprise --------------------------------------------------------------------------------
    def surprise(self, index: int) -> int:
        """Ask for the per-pixel log-probabilities of held-out example ``index``."""
        if not self.enabled:
            return 0
        rid = self.requests.ask("surprise", int(index))
        self.services.send(protocol.PixelSurprise(request_id=rid, index=int(index)))
        return rid

    def _on_surprise(self, event: protocol.PixelSurprised) -> None:
        if not self.requests.is_current("surprise", event.request_id) or event.log_probs is None:
            return
        self.requests.shown("surprise", event.request_id)
        if event.image is not None:
            self.view.show_example(np.asarray(event.image, np.float32)[0])
        top = self.view.show_surprise(event.log_probs, "")
        self.view.surprise.set_title(surprise_caption(event.nats, event.bits_per_dim, top))
