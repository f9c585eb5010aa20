"""Messages of the energy models' views (re-exported by :mod:`engines.shared.protocol`): Gibbs chains to watch
and clamp, each hidden unit's filter, and log Z on demand, for a model that declares the ``chains`` and
``filters`` extras (the RBM). All three run as jobs on the worker's job thread (:class:`Cancel` stops them).

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
    """Each hidden unit's weights as an image; answered by :class:`Filters`."""

    request_id: int = 0


@dataclass(frozen=True)
class Filters(Event):
    """``images`` (H, C, h, w) in [0, 1], 0.5 a zero weight, each unit scaled by its largest weight, at ``step``."""

    request_id: int = 0
    step: int = 0
    images: np.ndarray | None = _arr()


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
