"""Messages of the views the likelihood families bring (re-exported by :mod:`engines.shared.protocol`).

- Pixel by pixel (autoregressive models): DrawPixels streams PixelFrame events from the worker's job
  thread; PixelSurprise is answered by PixelSurprised from the host thread.
- Any model with a likelihood: Score is answered by Scored (each image's log-likelihood in nats and
  bits/dim) from the host thread.
- Any model with a latent: FindDirections is answered by DirectionsFound (principal, independent, attribute,
  group and local directions), MapLatents by LatentMapped (a 2-D map of the latents) and FindNearest by
  NearestFound (a generated image's nearest training examples), all from the job thread.

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
#: Most latents one FindDirections gathers.
MAX_DIRECTION_POOL = 20000
#: Most points one MapLatents may map.
MAX_MAP_POINTS = 5000


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
    """Directions in z to move the current point along; answered by :class:`DirectionsFound` (a job).

    The latents they are found in: posterior means (or a flow's exact z) of held-out images for a model
    with an encoder; for one without, prior draws pushed through the generator's first layer (PCA and
    ICA there, regressed back to z: GANSpace, Harkonen et al. 2020). Only continuous dimensions move.

    Attributes
    ----------
    method : {"pca", "ica", "class", "attribute", "groups", "local"}
        "pca" / "ica": the top ``k`` principal / independent components; "class": the difference of the
        mean latents of class ``to_class`` and ``from_class``; "attribute": factor ``factor`` (a
        ground-truth factor's name, or "class" with ``to_class`` against the rest) by ``estimator``;
        "groups": held-out examples ``group_b`` against ``group_a``; "local": principal directions of
        the latents nearest ``point``.
    k : int
        Directions for "pca", "ica" and "local" (1..:data:`MAX_DIRECTIONS`).
    n_examples : int
        Held-out images encoded, or prior draws (at most all of them / :data:`MAX_DIRECTION_POOL`).
    from_class, to_class : int
        Class indices for "class" (and ``to_class`` for "attribute" with factor "class").
    factor : str
    estimator : {"mean", "linear"}
        Mean difference, or a linear model's normal (logistic regression for groups, ridge for a factor).
    group_a, group_b : list of int or None
        Positions in the held-out split for "groups".
    images_a, images_b : ndarray or None
        (N, C, H, W) float32 in [0, 1]: images the user dropped, encoded into the groups too.
    point : ndarray or None
        (D,) float32, the current point, for "local".
    seed : int
    """

    request_id: int = 0
    method: str = "pca"
    k: int = 6
    n_examples: int = 500
    from_class: int = 0
    to_class: int = 1
    factor: str = ""
    estimator: str = "mean"
    group_a: list | None = None
    group_b: list | None = None
    images_a: np.ndarray | None = _arr()
    images_b: np.ndarray | None = _arr()
    point: np.ndarray | None = _arr()
    seed: int = 0


@dataclass(frozen=True)
class DirectionsFound(Event):
    """Answer to :class:`FindDirections`: ``directions`` (k, D) float32 of unit length, ``scales`` (k,) the
    standard deviation of the latents along each (a mean difference: its length), so a slider can move
    in those units, ``explained`` (k,) each one's share of the variance (NaN where it does not apply),
    ``names`` one label each (e.g. "PC1 (12% of variance)", "3 - 1"), ``n`` the latents used,
    ``method`` the request's and ``source`` what the latents were, in words."""

    request_id: int = 0
    step: int = 0
    directions: np.ndarray | None = _arr()
    scales: np.ndarray | None = _arr()
    explained: np.ndarray | None = _arr()
    names: list = field(default_factory=list)
    n: int = 0
    method: str = "pca"
    source: str = ""


@dataclass(frozen=True)
class MapLatents(Command):
    """A 2-D map of the latent space; answered by :class:`LatentMapped` (a job, with Progress and Cancel).

    Attributes
    ----------
    method : {"pca", "tsne"}
    n : int
        Held-out images encoded (or prior draws for a model without an encoder), 3..:data:`MAX_MAP_POINTS`.
    perplexity : float
        t-SNE's (5..100).
    seed : int
        Which held-out images (or draws): the same seed maps the same ones.
    init : ndarray or None
        (n, 2) float32: t-SNE starts from these positions (the previous map of the same images, so a map
        that follows training moves rather than jumps); used only when its length is the points mapped.
    """

    request_id: int = 0
    method: str = "pca"
    n: int = 1000
    perplexity: float = 30.0
    seed: int = 0
    init: np.ndarray | None = _arr()


@dataclass(frozen=True)
class LatentMapped(Event):
    """Answer to :class:`MapLatents`.

    ``xy`` (N, 2) float32 map positions; ``z`` (N, D) float32 the latents; ``images`` (N, C, H, W) uint8
    thumbnails (the held-out images, or the draws decoded; None for points); ``indices`` (N,) int64
    held-out positions (-1 for prior draws); ``labels`` (N,) int64 classes (-1 without); ``factors``
    (N, K) float32 ground-truth factor values (None without) named ``factor_names``; ``class_names``;
    ``source`` the latents in words; ``method``.
    """

    request_id: int = 0
    step: int = 0
    method: str = "pca"
    xy: np.ndarray | None = _arr()
    z: np.ndarray | None = _arr()
    images: np.ndarray | None = _arr()
    indices: np.ndarray | None = _arr()
    labels: np.ndarray | None = _arr()
    factors: np.ndarray | None = _arr()
    factor_names: list = field(default_factory=list)
    class_names: list = field(default_factory=list)
    source: str = ""


@dataclass(frozen=True)
class FindNearest(Command):
    """The training examples nearest a generated image; answered by :class:`NearestFound` (a job).

    The image is ``z`` decoded. Pixel space: Euclidean distance between images; latent space (models
    with an encoder): between ``z`` and the training examples' posterior means (or exact z).

    Attributes
    ----------
    z : ndarray
        (D,) float32.
    k : int
        Neighbours in each space (1..32).
    """

    request_id: int = 0
    z: np.ndarray | None = _arr()
    k: int = 8


@dataclass(frozen=True)
class NearestFound(Event):
    """Answer to :class:`FindNearest`: ``image`` (1, C, H, W) the decoded query; per space ("pixel", "latent")
    ``*_images`` (k, C, H, W) float32, ``*_indices`` (k,) int64 training positions and ``*_distances``
    (k,) float32 (Euclidean; latent None where the model has no encoder); ``n`` training examples searched."""

    request_id: int = 0
    step: int = 0
    image: np.ndarray | None = _arr()
    pixel_images: np.ndarray | None = _arr()
    pixel_indices: np.ndarray | None = _arr()
    pixel_distances: np.ndarray | None = _arr()
    latent_images: np.ndarray | None = _arr()
    latent_indices: np.ndarray | None = _arr()
    latent_distances: np.ndarray | None = _arr()
    n: int = 0
