"""The held-out log-likelihood of any model that declares one, in nats per example and bits/dim.

Protocol: the model's ``log_prob`` (exact for flows and autoregressive models, the one-sample ELBO
for VAEs; :class:`~engines.shared.capabilities.Capabilities` says which) on the data set's fixed
held-out split, or on a seeded sample of :data:`MAX_EXAMPLES` of it when the split is larger (the
mean then comes with its standard error over the sample), in eval mode, in batches. Bits per
dimension, -log p(x) / (D ln 2), are reported only where the data space is discrete
(:data:`engines.shared.results.LIKELIHOOD_SPACES`): a Bernoulli decoder on grey levels gives a
pseudo-likelihood and says so.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from engines.shared.results import HeldOutLikelihood

#: Most held-out examples measured by :func:`held_out_likelihood` (a seeded sample beyond that).
MAX_EXAMPLES = 2000
#: Examples in the live probe the trainer measures while training (:class:`HeldOutProbe`).
PROBE_EXAMPLES = 256


def likelihood_space(engine: Any) -> str:
    """Which space a model's log-likelihood is of: a key of :data:`~engines.shared.results.LIKELIHOOD_SPACES`.

    Flows on images are "8-bit" (they dequantise); a 256-way softmax is "8-bit"; a Bernoulli model is
    "binary" on statically binarised data (``DataInfo.binarized``) and "bernoulli-pseudo" otherwise;
    2-D points and Gaussian decoders are "continuous".
    """
    data = engine.data
    if data.kind == "points":
        return "continuous"
    if engine.family == "flow":
        return "8-bit"
    if engine.family == "energy":  # binary visible units, or real-valued ones (a Gaussian-Bernoulli RBM)
        if getattr(engine, "visible_units", "binary") == "gaussian":
            return "continuous"
        return "binary" if data.binarized is not None else "bernoulli-pseudo"
    kind = getattr(engine.config, "likelihood", None)
    if kind == "bernoulli":
        return "binary" if data.binarized is not None else "bernoulli-pseudo"
    if kind == "categorical":
        return "8-bit"
    return "continuous"


def term_name(engine: Any) -> str:
    """The loss-plot term of the live held-out measurement: ``held_out_nll`` (exact, or an AIS estimate) or
    ``held_out_neg_elbo``."""
    return "held_out_neg_elbo" if _kind(engine) == "elbo" else "held_out_nll"


def _kind(engine: Any) -> str:
    """"exact", "ais" (an estimate: Salakhutdinov & Murray 2008) or "elbo" (a bound)."""
    declared = engine.capabilities.likelihood
    return "exact" if "exact" in declared else "ais" if "ais" in declared else "elbo"


def _log_prob(engine: Any, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """log_prob with its own generator where it draws (a bound), so measuring never moves the training RNG."""
    return engine.log_prob(x) if _kind(engine) == "exact" else engine.log_prob(x, generator=generator)


def held_out_indices(dataset: Any, max_examples: int = MAX_EXAMPLES, seed: int = 0) -> np.ndarray:
    """The held-out indices measured: all of them, or a sorted seeded sample of ``max_examples``."""
    idx = np.asarray(dataset.test_indices, dtype=np.int64)
    if len(idx) > max_examples:
        idx = np.sort(np.random.default_rng(seed).choice(idx, size=max_examples, replace=False))
    return idx


@torch.no_grad()
def held_out_likelihood(engine: Any, dataset: Any, batch_size: int = 500, max_examples: int = MAX_EXAMPLES,
                        iwae_k: int = 0, seed: int = 0,
                        progress: Callable[[int, int], None] | None = None) -> HeldOutLikelihood | None:
    """Mean held-out log-likelihood (or bound) of ``engine`` on ``dataset`` (module docstring).

    Parameters
    ----------
    engine : Engine
    dataset : Dataset
        Its ``test_indices`` are the held-out split.
    batch_size : int
    max_examples : int
        Cap on the examples measured (a seeded sample beyond it).
    iwae_k : int
        Also the IWAE bound with k samples where the model declares it (0: skip).
    seed : int
        Seeds the sample of the split.
    progress : callable, optional
        ``progress(done, total)`` after each batch.

    Returns
    -------
    HeldOutLikelihood, or None when the model declares no likelihood or the split is empty.
    """
    if not engine.capabilities.has_likelihood or len(dataset.test_indices) == 0:
        return None
    idx = held_out_indices(dataset, max_examples, seed)
    was_training = engine.training
    engine.eval()
    lp, iw = [], []
    gen = torch.Generator(device=engine.device).manual_seed(seed)
    try:
        for i in range(0, len(idx), batch_size):
            x = torch.as_tensor(dataset.get(idx[i : i + batch_size]), device=engine.device)
            lp.append(_log_prob(engine, x, gen).double().cpu())
            if iwae_k and "iwae" in engine.capabilities.likelihood:
                iw.append(engine.iwae_bound(x, k=iwae_k, generator=gen).double().cpu())
            if progress is not None:
                progress(min(i + batch_size, len(idx)), len(idx))
    finally:
        engine.train(was_training)
    values = torch.cat(lp)
    exact_all = _kind(engine) == "exact" and len(idx) == len(dataset.test_indices)
    stderr = 0.0 if exact_all or len(values) < 2 else float(values.std() / math.sqrt(len(values)))
    return HeldOutLikelihood(
        kind=_kind(engine), nats=float(values.mean()), stderr=stderr, n=int(len(idx)),
        n_test=int(len(dataset.test_indices)), dims=int(np.prod(engine.data.shape)), space=likelihood_space(engine),
        iwae_k=iwae_k if iw else 0, iwae_nats=float(torch.cat(iw).mean()) if iw else None,
    )


class HeldOutProbe:
    """A fixed seeded batch of held-out examples, measured live while training.

    Parameters
    ----------
    engine : Engine
    dataset : Dataset
    n : int
        Examples in the probe (:data:`PROBE_EXAMPLES`).
    seed : int

    Attributes
    ----------
    name : str
        The loss-plot term (:func:`term_name`).
    seconds, terms_seconds : float
        Wall time of the latest :meth:`measure` and of the latest extra terms, seconds (the trainer spaces each
        by its own).
    """

    def __init__(self, engine: Any, dataset: Any, n: int = PROBE_EXAMPLES, seed: int = 0) -> None:
        idx = held_out_indices(dataset, n, seed)
        self.x = torch.as_tensor(dataset.get(idx), device=engine.device)
        self.name = term_name(engine)
        self.seconds = 0.0
        self.terms_seconds = 0.0
        self._seed = seed

    @torch.no_grad()
    def measure(self, engine: Any) -> float:
        """-mean log p(x) (or -ELBO) of the probe, nats per example; the engine's mode is restored."""
        t0 = time.perf_counter()
        was_training = engine.training
        engine.eval()
        try:
            gen = torch.Generator(device=engine.device).manual_seed(self._seed)
            value = float(-_log_prob(engine, self.x, gen).mean())
        finally:
            engine.train(was_training)
        self.seconds = time.perf_counter() - t0
        return value

    @torch.no_grad()
    def measure_terms(self, engine: Any, likelihood: bool = True, extra: bool = True) -> dict[str, float]:
        """:meth:`measure` under :attr:`name` (with ``likelihood``), and the engine's
        :meth:`~engines.models.base.Engine.held_out_terms` of the same probe (with ``extra``; their wall time in
        :attr:`terms_seconds`), nats per example; the engine's mode is restored. The two are asked apart because
        the extra terms are cheap where the likelihood may not be (an RBM's log Z by AIS)."""
        terms = {self.name: self.measure(engine)} if likelihood else {}
        if extra:
            t0 = time.perf_counter()
            was_training = engine.training
            engine.eval()
            try:
                gen = torch.Generator(device=engine.device).manual_seed(self._seed + 1)
                terms.update({k: float(v) for k, v in engine.held_out_terms(self.x, gen).items()})
            finally:
                engine.train(was_training)
            self.terms_seconds = time.perf_counter() - t0
        return terms
