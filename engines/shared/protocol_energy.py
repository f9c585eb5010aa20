"""Messages of the energy models' and discrete latents' views (re-exported by :mod:`engines.shared.protocol`):
Gibbs chains to watch and clamp, each hidden unit's filter, the hidden units' probabilities for one image, and
log Z on demand, for a model that declares the ``chains`` and ``filters`` extras (rbm, grbm, dbn); a codebook's
usage for one that declares ``codebook`` (vq-vae). All run as jobs on the worker's job thread (:class:`Cancel`
stops the long ones).

numpy and the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engines.shared.codec import Command, Event

#: Most chains one RunChains may run.
MAX_CHAINS = 64
#: Most frames one RunChains may stream, and most sweeps between two of them.
MAX_CHAIN_FRAMES = 10_000
MAX_SWEEPS_PER_FRAME = 1_000


def _arr(default: Any = None) -> Any:
    return field(default=default, compare=False)


@dataclass(frozen=True)
class RunChains(Command):
    """Run ``n`` Gibbs chains for ``frames`` x ``sweeps`` sweeps, streaming :class:`ChainFrame` events.

    From random visible states, or, with ``image`` (1, C, H, W) in [0, 1] and ``known`` (H, W) bool, from that
    image with the pixels marked known clamped at every sweep: the rest is sampled given them (completion).
    ``delay_ms`` pauses after each frame so that a person can watch the chains mix.
    """

    request_id: int = 0
    n: int = 16
    sweeps: int = 1
    frames: int = 200
    delay_ms: float = 30.0
    seed: int = 0
    image: np.ndarray | None = _arr()
    known: np.ndarray | None = _arr()


@dataclass(frozen=True)
class ChainFrame(Event):
    """The chains after ``sweep`` sweeps: ``images`` (n, C, H, W), each chain's p(v | h) (the visible means);
    ``final`` on the last one."""

    request_id: int = 0
    step: int = 0
    sweep: int = 0
    images: np.ndarray | None = _arr()
    final: bool = False


@dataclass(frozen=True)
class GetFilters(Command):
    """Each hidden unit's weights (of hidden ``layer``, 0 the first; a deep belief net's higher layers projected
    down to the pixels) as an image; answered by :class:`Filters`."""

    request_id: int = 0
    layer: int = 0


@dataclass(frozen=True)
class Filters(Event):
    """``images`` (H, C, h, w) in [0, 1], 0.5 a zero weight, each unit scaled by its largest weight, at ``step``;
    of hidden ``layer`` out of ``layers``."""

    request_id: int = 0
    step: int = 0
    images: np.ndarray | None = _arr()
    layer: int = 0
    layers: int = 1


@dataclass(frozen=True)
class InspectHidden(Command):
    """The hidden units' probabilities p(h = 1 | v) for one ``image`` (1, C, H, W) in [0, 1], layer by layer;
    answered by :class:`HiddenInspected`."""

    request_id: int = 0
    image: np.ndarray | None = _arr()


@dataclass(frozen=True)
class HiddenInspected(Event):
    """``probs`` (sum of ``sizes``,) float32 in [0, 1]: each hidden layer's p(h = 1 | v) one after another
    (``sizes`` (L,) int64, the layers' widths, the first layer first); ``recon`` (1, C, H, W) in [0, 1], the image decoded
    from the top layer's probabilities, at ``step``."""

    request_id: int = 0
    step: int = 0
    probs: np.ndarray | None = _arr()
    sizes: np.ndarray | None = _arr()
    recon: np.ndarray | None = _arr()


@dataclass(frozen=True)
class GetCodebook(Command):
    """A codebook's usage (a model with the ``codebook`` extra); answered by :class:`Codebook`."""

    request_id: int = 0


@dataclass(frozen=True)
class Codebook(Event):
    """``usage`` (K,) float32, each code's share of the grid positions of ``images`` encoded images (summing to
    1; with ``images`` 0, the model's running average over about the last 1,000 batches); ``dead`` (K,) bool,
    codes none of them chose (or used below 1/1000 of the even share); ``perplexity`` exp(entropy of usage),
    K when every code is used evenly; at ``step``."""

    request_id: int = 0
    step: int = 0
    usage: np.ndarray | None = _arr()
    dead: np.ndarray | None = _arr()
    perplexity: float = 0.0
    images: int = 0


@dataclass(frozen=True)
class EstimateLogZ(Command):
    """Estimate log Z by annealed importance sampling with ``runs`` runs over ``betas`` temperatures (Progress
    "ais", Cancel stops it); answered by :class:`LogZEstimated`."""

    request_id: int = 0
    runs: int = 100
    betas: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class LogZEstimated(Event):
    """log Z (nats) by AIS with its standard error, beside the exact value where the model is small enough to
    sum (NaN otherwise), for the weights of ``step``; ``seconds`` it took."""

    request_id: int = 0
    step: int = 0
    log_z: float = 0.0
    stderr: float = 0.0
    exact: float = float("nan")
    runs: int = 0
    betas: int = 0
    seconds: float = 0.0
