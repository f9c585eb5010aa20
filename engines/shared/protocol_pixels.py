"""The pixel-by-pixel messages of autoregressive models (re-exported by :mod:`engines.shared.protocol`).

DrawPixels streams PixelFrame events from the worker's job thread; PixelSurprise is answered by
PixelSurprised from the host thread. numpy and the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engines.shared.codec import Command, Event

#: Most images one DrawPixels may draw at once.
MAX_PIXEL_IMAGES = 64


def _arr(default: Any = None) -> Any:
    return field(default=default, compare=False)


@dataclass(frozen=True)
class DrawPixels(Command):
    """Sample an autoregressive model pixel by pixel, streaming the partial images; a job (:class:`Cancel` stops it).

    Without ``image`` it draws ``n`` fresh samples; with ``image`` and ``known`` it completes the image: the
    pixels marked known are kept and the rest drawn in the model's order, conditioned on them (exact
    for the pixels after the known ones in that order, e.g. a bottom half in raster order). Answered by
    :class:`PixelFrame` events, the last with ``final`` True.

    Attributes
    ----------
    n : int
        Images drawn (1..:data:`MAX_PIXEL_IMAGES`).
    seed : int
    image : ndarray or None
        (1, C, H, W) float32 in [0, 1]: the image to complete (or continue).
    known : ndarray or None
        (H, W) bool: True where ``image`` is kept.
    frames : int
        About how many frames to stream over the whole drawing (>= 1).
    delay_ms : float
        Pause after each frame, milliseconds (0: as fast as the model draws), to watch it slowly.
    """

    request_id: int = 0
    n: int = 8
    seed: int = 0
    image: np.ndarray | None = _arr()
    known: np.ndarray | None = _arr()
    frames: int = 64
    delay_ms: float = 0.0


@dataclass(frozen=True)
class PixelFrame(Event):
    """One frame of a :class:`DrawPixels`: ``images`` (n, C, H, W) in [0, 1] with the pixels drawn so far (the
    rest at the image's given values, or 0); ``done`` of ``total`` pixel positions drawn; ``drawn`` (H, W) bool."""

    request_id: int = 0
    step: int = 0
    images: np.ndarray | None = _arr()
    drawn: np.ndarray | None = _arr()
    done: int = 0
    total: int = 0
    final: bool = False


@dataclass(frozen=True)
class PixelSurprise(Command):
    """Each pixel's conditional log-probability under an autoregressive model; answered by :class:`PixelSurprised`.

    Attributes
    ----------
    image : ndarray or None
        (1, C, H, W) float32 in [0, 1].
    index : int
        A held-out example instead (when ``image`` is None).
    """

    request_id: int = 0
    image: np.ndarray | None = _arr()
    index: int = 0


@dataclass(frozen=True)
class PixelSurprised(Event):
    """Answer to :class:`PixelSurprise`: ``image`` (1, C, H, W), ``log_probs`` (C, H, W) float32 nats (<= 0 for a
    normalised model: log p(x_d | x_<d) of each observed pixel), ``nats`` their sum (log p(x)) and ``bits_per_dim``."""

    request_id: int = 0
    step: int = 0
    image: np.ndarray | None = _arr()
    log_probs: np.ndarray | None = _arr()
    nats: float = 0.0
    bits_per_dim: float = 0.0
