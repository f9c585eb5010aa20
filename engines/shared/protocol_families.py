"""Messages of the views the likelihood families bring (re-exported by :mod:`engines.shared.protocol`).

- Pixel by pixel (autoregressive models): DrawPixels streams PixelFrame events from the worker's job
  thread; PixelSurprise is answered by PixelSurprised from the host thread.
- Any model with a likelihood: Score is answered by Scored (each image's log-likelihood in nats and
  bits/dim) from the host thread.
- Image-shaped z (flows): FindDirections is answered by DirectionsFound (principal components of the
  encoded held-out set, or a class's mean difference) from the job thread.

numpy and the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engines.shared.codec import Command, Event

#: Most images one DrawPixels may draw at once.
MAX_PIXEL_IMAGES = 64
#: Most directions one FindDirections may ask for.
MAX_DIRECTIONS = 16


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


@dataclass(frozen=True)
class Score(Command):
    """Each image's log-likelihood (or the model's declared bound); answered by :class:`Scored`.

    Attributes
    ----------
    images : ndarray or None
        (N, C, H, W) float32 in [0, 1] (or (N, 2) points).
    indices : list or None
        Positions in ``split`` instead (when ``images`` is None).
    split : {"test", "train"}
    """

    request_id: int = 0
    images: np.ndarray | None = _arr()
    indices: list | None = None
    split: str = "test"


@dataclass(frozen=True)
class Scored(Event):
    """Answer to :class:`Score`: ``nats`` (N,) float32 log p(x) (or the bound, ``kind`` "elbo"), and
    ``bits_per_dim`` (N,) float32 = -nats / (D ln 2) where the data space is discrete (NaN elsewhere);
    ``space`` names that space (a key of ``engines.shared.results.LIKELIHOOD_SPACES``)."""

    request_id: int = 0
    step: int = 0
    nats: np.ndarray | None = _arr()
    bits_per_dim: np.ndarray | None = _arr()
    kind: str = "exact"
    space: str = ""


@dataclass(frozen=True)
class FindDirections(Command):
    """Directions in z to edit an encoded image along; answered by :class:`DirectionsFound` (a job).

    Attributes
    ----------
    method : {"pca", "class"}
        "pca": the top ``k`` principal components of the encodings of ``n_examples`` held-out images
        (GANSpace-style, Harkonen et al. 2020, in a flow's exact z); "class": the difference of the
        mean encodings of class ``to_class`` and class ``from_class`` (held-out images with labels).
    k : int
        Directions for "pca" (1..:data:`MAX_DIRECTIONS`).
    n_examples : int
        Held-out images encoded (at most all of them).
    from_class, to_class : int
        Class indices for "class".
    """

    request_id: int = 0
    method: str = "pca"
    k: int = 6
    n_examples: int = 500
    from_class: int = 0
    to_class: int = 1


@dataclass(frozen=True)
class DirectionsFound(Event):
    """Answer to :class:`FindDirections`: ``directions`` (k, D) float32 of unit length, ``scales`` (k,) the
    standard deviation of the encodings along each (a class difference: its length), so a slider can move
    in those units, ``names`` one label each (e.g. "PC1 (12% of variance)", "3 - 1"), and ``n`` the
    images encoded."""

    request_id: int = 0
    step: int = 0
    directions: np.ndarray | None = _arr()
    scales: np.ndarray | None = _arr()
    names: list = field(default_factory=list)
    n: int = 0
