"""The training watchdog: catch a run going wrong, roll it back to the last good state, say what to change.

What trips it (:class:`Watchdog`):

- ``nan``: NaN or inf in a loss term (every step, free: the terms are Python floats already), in a
  parameter or a gradient (checked each time the trainer flushes its metrics, about 10 times a second);
- ``spike``: a loss term, or the gradient norm, more than ``spike_factor`` times its running average
  (an exponential moving average of its magnitude, at least :data:`SPIKE_FLOOR`, so that a term near 0
  may grow);
- ``collapse``: the live coverage (modes or classes captured) fell to at most half of its best, from a
  best of at least 4.

What it does (the trainer, :mod:`engines.worker.trainer`): it restores the last good
:class:`TrainState` held in memory (weights, optimisers, the data stream's place, the random generators,
the step), sends :class:`~engines.shared.protocol.WatchdogTripped` with what happened, where, and what
to change, and pauses; or, with ``auto_resume``, halves every learning rate (marked on the plots as a
hyperparameter change) and trains on.

Good states are kept in a :class:`StateRing`: copies taken every ``GOOD_EVERY`` seconds after a healthy
check, bounded in bytes, oldest dropped first.
"""

from __future__ import annotations

import copy
import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import torch

#: Seconds between good-state copies.
GOOD_EVERY = 2.0
#: Bytes the in-memory good states may take together (at least one is always kept).
RING_BYTES = 256 * 2**20
#: Losses and gradient norms are compared with their running average after this many values.
WARMUP = 1
#: The running average a spike is measured against is at least this (a loss near 0 may grow a lot).
SPIKE_FLOOR = 1.0
#: Smoothing of the running averages (per value).
EMA = 0.98
#: A loss term or gradient norm more than this many times its running average trips the watchdog.
SPIKE_FACTOR = 1000.0
#: Coverage "collapsed": at most this share of its best, from a best of at least COLLAPSE_FROM.
COLLAPSE_SHARE = 0.5
COLLAPSE_FROM = 4
#: Rollbacks in a row at the same step (a bad batch) after which an automatic resume pauses instead.
MAX_AUTO_TRIPS = 8
#: Learning-rate hyperparameters halved by an automatic resume.
LR_NAMES = ("lr", "g_lr", "d_lr")


@dataclass
class TrainState:
    """Everything a rollback restores, held in memory on the engine's device.

    Attributes
    ----------
    step : int
    weights : dict of str to Tensor
    optimizers : dict of str to dict
        Deep copies of each optimiser's ``state_dict()``.
    resume : ResumeState
        The random generators and the data stream's place (:mod:`engines.lib.resume`).
    nbytes : int
        Tensor bytes held.
    """

    step: int
    weights: dict[str, torch.Tensor]
    optimizers: dict[str, dict]
    resume: Any
    nbytes: int = 0

    @classmethod
    def capture(cls, session: Any) -> TrainState:
        """Copy ``session``'s engine, optimisers, stream and generators (call between two steps)."""
        from engines.lib import resume as R
        from engines.lib.training import BatchStream

        engine = session.engine
        weights = {k: v.detach().clone() for k, v in engine.state_dict().items()}
        optimizers = {name: copy.deepcopy(opt.state_dict()) for name, opt in engine.optimizer_states().items()}
        stream = session.batches if isinstance(session.batches, BatchStream) else None
        resume = R.capture(stream, run={"seed": session.seed, "batch_size": session.batch_size})
        nbytes = sum(t.numel() * t.element_size() for t in weights.values())
        for sd in optimizers.values():
            for state in sd.get("state", {}).values():
                nbytes += sum(v.numel() * v.element_size() for v in state.values() if isinstance(v, torch.Tensor))
        return cls(int(session.step), weights, optimizers, resume, nbytes)

    def restore(self, session: Any) -> None:
        """Put ``session`` back in this state; the live hyperparameters keep their current values."""
        from engines.lib import resume as R
        from engines.lib.training import BatchStream

        engine = session.engine
        engine.load_state_dict(self.weights, strict=True)
        for name, opt in engine.optimizer_states().items():
            if name in self.optimizers:
                opt.load_state_dict(copy.deepcopy(self.optimizers[name]))
        for hp in engine.hyper.values():  # the optimisers' learning rates follow the hyperparameters now
            engine.set_hyper(hp.name, engine.h(hp.name))
        if isinstance(session.batches, BatchStream) and "stream" in self.resume.meta:
            R.restore_stream(self.resume, session.batches, "rollback")
        R.restore_rng(self.resume, "rollback")
        session.step = self.step


class StateRing:
    """Good states, newest last, within ``max_bytes`` (the newest is always kept).

    Examples
    --------
    >>> ring = StateRing(max_bytes=10)
    >>> ring.latest(before=5) is None
    True
    """

    def __init__(self, max_bytes: int = RING_BYTES) -> None:
        self.max_bytes = int(max_bytes)
        self._states: deque[TrainState] = deque()

    def __len__(self) -> int:
        return len(self._states)

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self._states)

    def add(self, state: TrainState) -> None:
        while self._states and self._states[-1].step >= state.step:  # a rollback's future is gone
            self._states.pop()
        self._states.append(state)
        while len(self._states) > 1 and self.nbytes > self.max_bytes:
            self._states.popleft()

    def latest(self, before: int | None = None) -> TrainState | None:
        """The newest state at a step <= ``before`` (None: the newest of all)."""
        for state in reversed(self._states):
            if before is None or state.step <= before:
                return state
        return None

    def clear(self) -> None:
        self._states.clear()


@dataclass
class Trip:
    """Why the watchdog stopped training: ``kind`` ("nan", "spike", "collapse"), at ``step``, in words."""

    kind: str
    step: int
    message: str
    good_before: int | None = None  # roll back to a state no later than this step (a collapse)


class _Running:
    """An exponential moving average of magnitudes, with a count (for the warm-up)."""

    def __init__(self) -> None:
        self.mean = 0.0
        self.n = 0

    def spike(self, value: float, factor: float) -> bool:
        """Whether |value| is more than ``factor`` times the average so far; then add it."""
        v = abs(value)
        high = self.n >= WARMUP and v > factor * max(self.mean, SPIKE_FLOOR)
        if not high:
            self.mean = v if self.n == 0 else EMA * self.mean + (1 - EMA) * v
            self.n += 1
        return high


def _total_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The 2-norm of all ``tensors`` together, 0-d, fused per device (0 for none)."""
    if not tensors:
        return torch.zeros((), dtype=torch.float64)
    return torch.nn.utils.get_total_norm(tensors, error_if_nonfinite=False).double().cpu()


@dataclass
class WatchdogSettings:
    """``enabled``; ``auto_resume`` (halve the learning rates and train on after a rollback); ``spike_factor``."""

    enabled: bool = True
    auto_resume: bool = False
    spike_factor: float = SPIKE_FACTOR


@dataclass
class Watchdog:
    """The checks (module docstring); one per worker, its running averages reset for each model."""

    settings: WatchdogSettings = field(default_factory=WatchdogSettings)
    ring: StateRing = field(default_factory=StateRing)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """A new model (or a rollback): forget the running averages and the coverage seen."""
        self._losses: dict[str, _Running] = {}
        self._grad = _Running()
        with self._lock:
            self._coverage_best = 0
            self._coverage_good_step: int | None = None
            self._pending: Trip | None = None

    # -- checks --------------------------------------------------------------------------------
    def check_losses(self, step: int, losses: dict[str, float]) -> Trip | None:
        """The terms of one step: NaN / inf, or a spike; also any coverage collapse reported meanwhile."""
        if not self.settings.enabled:
            return None
        for name, value in losses.items():
            if not math.isfinite(value):
                return Trip("nan", step, f"the loss term {name!r} became {value} at step {step:,}")
            running = self._losses.setdefault(name, _Running())
            if running.spike(value, self.settings.spike_factor):
                return Trip("spike", step, f"the loss term {name!r} jumped to {value:.4g} at step {step:,}, "
                            f"{abs(value) / max(running.mean, SPIKE_FLOOR):,.0f} times its running average {running.mean:.4g}")
        with self._lock:
            trip, self._pending = self._pending, None
        return trip

    def check_tensors(self, step: int, engine: Any) -> Trip | None:
        """Parameters and gradients: NaN / inf, or a gradient-norm spike (one device sync)."""
        if not self.settings.enabled:
            return None
        params = [p for p in engine.parameters()]
        grads = [p.grad for p in params if p.grad is not None]
        # one fused norm each (a NaN or inf anywhere makes it non-finite), read back together: one device sync
        norms = torch.stack([_total_norm(params), _total_norm(grads)]).tolist()
        if not math.isfinite(norms[0]):
            name = next(n for n, p in engine.named_parameters() if not bool(torch.isfinite(p).all()))
            return Trip("nan", step, f"the parameter {name!r} holds NaN or inf at step {step:,}")
        if not grads:
            return None
        norm = norms[1]
        if not math.isfinite(norm):
            name = next(n for n, p in engine.named_parameters()
                        if p.grad is not None and not bool(torch.isfinite(p.grad).all()))
            return Trip("nan", step, f"the gradient of {name!r} holds NaN or inf at step {step:,}")
        if self._grad.spike(norm, self.settings.spike_factor):
            return Trip("spike", step, f"the gradient norm jumped to {norm:.4g} at step {step:,}, "
                        f"{norm / max(self._grad.mean, SPIKE_FLOOR):,.0f} times its running average {self._grad.mean:.4g}")
        return None

    def report_coverage(self, step: int, covered: int, total: int) -> None:
        """A live coverage measurement (metrics thread): a collapse trips the watchdog at the next step."""
        if not self.settings.enabled or total <= 0:
            return
        with self._lock:
            if covered > COLLAPSE_SHARE * self._coverage_best or self._coverage_best < COLLAPSE_FROM:
                if covered >= self._coverage_best:
                    self._coverage_best = covered
                self._coverage_good_step = step
                return
            self._pending = Trip(
                "collapse", step, f"mode collapse: {covered} of {total} modes or classes covered at step {step:,}, "
                f"down from {self._coverage_best}", good_before=self._coverage_good_step)
            self._coverage_best = 0  # judged afresh after the rollback

    # -- advice --------------------------------------------------------------------------------
    @staticmethod
    def suggestions(trip: Trip, engine: Any) -> list[list]:
        """What to change, as ``[label, hyperparameter name or "", value]`` rows for the window's buttons."""
        out: list[list] = []
        for name in LR_NAMES:
            if name in engine.hyper and engine.h(name) > engine.hyper[name].low:
                value = max(engine.hyper[name].low, engine.h(name) / 2)
                out.append([f"halve {name} ({engine.h(name):.3g} -> {value:.3g})", name, value])
        if "beta" in engine.hyper and trip.kind != "collapse":
            out.append([f"a smaller beta ({engine.h('beta'):.3g} -> {engine.h('beta') / 2:.3g})", "beta",
                        engine.h("beta") / 2])
        if "n_critic" in engine.hyper and engine.h("n_critic") > 1:
            n = int(engine.h("n_critic"))
            out.append([f"fewer critic steps (n_critic {n} -> {max(1, n // 2)})", "n_critic", float(max(1, n // 2))])
        if "clip" in engine.hyper:
            out.append([f"clip the critic harder ({engine.h('clip'):.3g} -> {engine.h('clip') / 2:.3g})", "clip",
                        engine.h("clip") / 2])
        return out
