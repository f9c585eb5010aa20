"""The Pixels tab's Qt-free part: masks for completion, the speed dial, a drawing's progress, the surprise map.

For models that sample pixel by pixel (``Capabilities.sampling == "autoregressive"``): the worker streams
:class:`~engines.shared.protocol.PixelFrame` s of a :class:`~engines.shared.protocol.DrawPixels`; Pause
cancels the job and keeps the partial images, Continue completes them with the pixels drawn so far as
the known part (in the model's order those come first, so the continued drawing is exact).
"""

from __future__ import annotations

import math

import numpy as np

from studio.state import COMPLETION_MASKS, known_mask  # noqa: F401 - known_mask is part of this module's face

#: The completion masks offered: name -> which part of the image is KEPT (the rest is drawn).
MASKS = COMPLETION_MASKS
#: Delay after each streamed frame (ms) at each notch of the speed dial, fastest first.
SPEED_DELAYS_MS = (0.0, 10.0, 30.0, 60.0, 120.0, 250.0)
#: Frames streamed over a whole drawing.
FRAMES = 64


def delay_for(notch: int) -> float:
    """Milliseconds to wait after each frame at speed-dial ``notch`` (0 fastest), clamped to the dial."""
    return SPEED_DELAYS_MS[max(0, min(len(SPEED_DELAYS_MS) - 1, int(notch)))]


def pixels_reason(capabilities: object | None) -> str:
    """Why the tab is off for a model ("" when it applies): only autoregressive models draw pixel by pixel."""
    if capabilities is None:
        return "Build a model first"
    if getattr(capabilities, "sampling", "") != "autoregressive":
        return ("This model does not sample pixel by pixel (it samples in one pass from z): "
                "build fvsbn, nade, made or pixelcnn to use this tab")
    return ""


class PixelRun:
    """The drawing being shown: its request, how far it got, and what Continue needs.

    Attributes
    ----------
    request_id : int
        The DrawPixels being streamed (0: none).
    images : ndarray or None
        (n, C, H, W) the latest frame.
    drawn : ndarray or None
        (H, W) bool: positions drawn (or given) so far.
    done, total : int
        Pixel positions drawn, of all.
    running : bool
    """

    def __init__(self) -> None:
        self.request_id = 0
        self.images: np.ndarray | None = None
        self.drawn: np.ndarray | None = None
        self.done = self.total = 0
        self.running = False

    def start(self, request_id: int) -> None:
        """A new DrawPixels was sent."""
        self.request_id, self.running = int(request_id), True
        self.done = self.total = 0

    def frame(self, request_id: int, images: np.ndarray, drawn: np.ndarray | None, done: int, total: int,
              final: bool) -> bool:
        """Take one PixelFrame; whether it belongs to the current drawing (stale ones are ignored)."""
        if int(request_id) != self.request_id:
            return False
        self.images = np.asarray(images, np.float32)
        self.drawn = None if drawn is None else np.asarray(drawn, bool)
        self.done, self.total = int(done), int(total)
        if final:
            self.running = False
        return True

    def stopped(self) -> None:
        """The drawing was paused (its job cancelled); the partial images stay."""
        self.running = False

    @property
    def can_continue(self) -> bool:
        """Whether Continue applies: a single partial image, not running."""
        return (not self.running and self.images is not None and self.drawn is not None
                and len(self.images) == 1 and 0 < self.done < self.total)

    def caption(self) -> str:
        """e.g. ``"pixel 212 of 784 (27%)"``, ``"8 samples, 784 pixels each"``."""
        if self.images is None:
            return "Nothing drawn yet"
        if self.running or self.done < self.total:
            state = "drawing" if self.running else "paused at"
            share = 100.0 * self.done / self.total if self.total else 0.0
            return f"{state} pixel {self.done:,} of {self.total:,} ({share:.0f}%)"
        return f"{len(self.images)} drawn, {self.total:,} pixels each"


def surprise_picture(log_probs: np.ndarray, ceiling: float | None = None) -> tuple[np.ndarray, float]:
    """-log p(x_d | x_<d) of each pixel scaled to [0, 1] for a heat map, and the ceiling used (nats).

    Parameters
    ----------
    log_probs : (C, H, W) or (H, W) float, nats (<= 0)
    ceiling : float, optional
        Nats shown as the hottest colour; default: the 99th percentile of the surprise (at least 1e-3).

    Returns
    -------
    (H, W) float32 in [0, 1] (channels summed), and the ceiling.
    """
    s = -np.asarray(log_probs, np.float64)
    if s.ndim == 3:
        s = s.sum(0)
    s = np.where(np.isfinite(s), s, np.nanmax(np.where(np.isfinite(s), s, 0.0)) if np.isfinite(s).any() else 0.0)
    top = float(np.percentile(s, 99)) if ceiling is None else float(ceiling)
    top = max(top, 1e-3)
    return np.clip(s / top, 0.0, 1.0).astype(np.float32), top


def surprise_caption(nats: float, bits_per_dim: float, top: float) -> str:
    """The caption of a surprise map: the image's log-likelihood and the colour scale."""
    if not math.isfinite(nats):
        return "not a finite likelihood"
    return (f"-log p(x) = {-nats:.1f} nats ({bits_per_dim:.3f} bits/dim); "
            f"bright: surprising pixels (up to {top:.2f} nats)")
