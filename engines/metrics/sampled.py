"""Disentanglement metrics that draw their own examples by factor values (numpy + scikit-learn, no torch).

- :func:`factor_vae_score`: Kim and Mnih (2018), "Disentangling by Factorising".
- :func:`beta_vae_score`: Higgins, Matthey, Pal, Burgess, Glorot, Botvinick, Mohamed and
  Lerchner (2017), "beta-VAE: Learning Basic Visual Concepts with a Constrained Variational
  Framework".

Both follow disentanglement_lib (Locatello et al., 2019), with its constants as the defaults of
named arguments. They need a ground-truth data set that can look an example up by its factor values:
``dataset.info.factor_sizes`` and ``dataset.index_of(factors (B, K)) -> (B,) indices``, as
:class:`engines.data.shapes.ShapesDataset` has. Factors are drawn uniformly and independently, as
disentanglement_lib's ``sample_factors``.

``representation_fn`` maps a (B, C, H, W) float32 numpy batch of examples (whatever
``dataset.get`` returns) to (B, D) codes, the mean representation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from engines.shared.errors import DataError

__all__ = ["as_generator", "beta_vae_score", "factor_vae_score", "images_of", "sample_factors"]

RepresentationFn = Callable[[np.ndarray], np.ndarray]


def as_generator(random_state: Any) -> np.random.Generator:
    """A numpy Generator from a Generator, a legacy RandomState, an int seed or None."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    return np.random.default_rng(random_state)


def _factor_sizes(dataset: Any) -> np.ndarray:
    """(K,) int64 factor sizes of a data set that can look up examples by factors, else DataError."""
    info = getattr(dataset, "info", None)
    spec = getattr(info, "spec", type(dataset).__name__)
    sizes = getattr(info, "factor_sizes", None)
    if not sizes or not callable(getattr(dataset, "index_of", None)):
        raise DataError(
            f"{spec}: sampled disentanglement metrics (FactorVAE and beta-VAE scores) need a ground-truth "
            "data set that can look up examples by factor values (factor_sizes and index_of), "
            "such as the built-in 'shapes'; this data set has "
            + ("no known factors" if not sizes else "factors but no lookup by factor values")
        )
    return np.asarray(sizes, dtype=np.int64)


def sample_factors(dataset: Any, n: int, rng: Any) -> np.ndarray:
    """Draw ``n`` factor tuples uniformly and independently per factor.

    Parameters
    ----------
    dataset : Dataset
        With ``info.factor_sizes`` and ``index_of``.
    n : int
        Number of tuples.
    rng : numpy Generator, RandomState, int or None

    Returns
    -------
    (n, K) int64, column k in [0, factor_sizes[k]).

    Raises
    ------
    DataError
        (a ValueError) The data set has no factor sizes or no ``index_of``.
    """
    sizes = _factor_sizes(dataset)
    return as_generator(rng).integers(0, sizes, size=(int(n), len(sizes))).astype(np.int64)


def images_of(dataset: Any, factors: np.ndarray) -> np.ndarray:
    """The examples with the given factor values: ``dataset.get(dataset.index_of(factors))``.

    Parameters
    ----------
    factors : (B, K) int

    Returns
    -------
    (B, C, H, W) float32 (or whatever ``dataset.get`` returns).

    Raises
    ------
    DataError
        The data set cannot look up examples by factors, or factors out of range.
    """
    _factor_sizes(dataset)
    return dataset.get(dataset.index_of(np.asarray(factors, dtype=np.int64)))


def _ticker(total: int, progress: Callable[[float], None] | None) -> Callable[[int], None]:
    """A counter of examples encoded that reports ``progress(done / total)`` after each call."""
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(min(1.0, done[0] / max(1, total)))

    return tick


def _codes(representation_fn: RepresentationFn, x: np.ndarray, n: int) -> np.ndarray:
    z = np.asarray(representation_fn(x), dtype=np.float64)
    if z.ndim != 2 or z.shape[0] != n:
        raise ValueError(f"representation_fn must return (B, D) codes for B={n} examples, got shape {z.shape}")
    return z


def _represent(representation_fn: RepresentationFn, dataset: Any, factors: np.ndarray) -> np.ndarray:
    return _codes(representation_fn, images_of(dataset, factors), len(factors))


def _factor_vae_votes(
    representation_fn: RepresentationFn, dataset: Any, rng: np.random.Generator, n_votes: int, batch_size: int,
    scale: np.ndarray, active: np.ndarray, votes_per_call: int, tick: Callable[[int], None],
) -> np.ndarray:
    """(K, D) vote counts: (factor held fixed, latent of least normalised variance among active ones)."""
    sizes = _factor_sizes(dataset)
    votes = np.zeros((len(sizes), len(scale)), dtype=np.int64)
    active_idx = np.flatnonzero(active)
    done = 0
    while done < n_votes:
        m = min(votes_per_call, n_votes - done)
        fixed = rng.integers(0, len(sizes), size=m)
        factors = sample_factors(dataset, m * batch_size, rng).reshape(m, batch_size, len(sizes))
        factors[np.arange(m), :, fixed] = factors[np.arange(m), 0, fixed][:, None]
        z = _represent(representation_fn, dataset, factors.reshape(m * batch_size, -1))
        z = z.reshape(m, batch_size, -1)[:, :, active_idx] / scale[active_idx]
        local = np.var(z, axis=1, ddof=1)  # (m, D_active)
        np.add.at(votes, (fixed, active_idx[np.argmin(local, axis=1)]), 1)
        done += m
        tick(m * batch_size)
    return votes


def factor_vae_score(
    representation_fn: RepresentationFn, dataset: Any, random_state: Any, batch_size: int = 64,
    num_train: int = 10000, num_eval: int = 5000, num_variance_estimate: int = 10000, prune_std: float = 0.05,
    votes_per_call: int = 16, progress: Callable[[float], None] | None = None,
) -> float:
    """FactorVAE disentanglement score (Kim and Mnih, 2018) as disentanglement_lib computes it.

    1. Global scale: the standard deviation (ddof=1) of each latent over ``num_variance_estimate``
       random examples; latents with std < ``prune_std`` are inactive (score 0 if none is active).
    2. A vote: pick a factor uniformly, draw ``batch_size`` factor tuples that all share one random
       value of it, encode their examples, divide the codes by the global std, and take the active
       latent of least variance: the vote (latent, factor).
    3. The majority-vote classifier maps each latent to the factor that won most of its
       ``num_train`` training votes; the score is its accuracy on ``num_eval`` fresh votes.

    Parameters
    ----------
    representation_fn : callable
        (B, C, H, W) float32 examples -> (B, D) codes (posterior means).
    dataset : Dataset
        Ground truth with ``info.factor_sizes`` and ``index_of`` (e.g. ``ShapesDataset``).
    random_state : numpy Generator, RandomState, int or None
    batch_size : int
        Examples per vote.
    num_train, num_eval : int
        Votes that fit the classifier and votes that score it.
    num_variance_estimate : int
        Examples for the global standard deviation.
    prune_std : float
        Latents whose global std is below this are left out.
    votes_per_call : int
        Votes whose examples go through ``representation_fn`` together (speed only; the result is
        that of one call per vote for a per-example ``representation_fn``).
    progress : callable or None
        Called as ``progress(fraction)``, fraction in (0, 1] of the examples encoded so far, after
        every call of ``representation_fn``.

    Returns
    -------
    float in [0, 1], the evaluation accuracy; chance is about 1/K for codes unrelated to the factors.

    Raises
    ------
    DataError
        (a ValueError) The data set cannot look up examples by factor values.
    ValueError
        ``representation_fn`` returns codes of the wrong shape, or a count below its minimum.
    """
    if batch_size < 2 or num_train < 1 or num_eval < 1 or num_variance_estimate < 2:
        raise ValueError("factor_vae_score needs batch_size >= 2, num_train >= 1, num_eval >= 1, num_variance_estimate >= 2")
    _factor_sizes(dataset)
    rng = as_generator(random_state)
    tick = _ticker(num_variance_estimate + (num_train + num_eval) * batch_size, progress)
    chunks = []
    for start in range(0, num_variance_estimate, batch_size * votes_per_call):
        n = min(batch_size * votes_per_call, num_variance_estimate - start)
        chunks.append(_represent(representation_fn, dataset, sample_factors(dataset, n, rng)))
        tick(n)
    scale = np.std(np.concatenate(chunks), axis=0, ddof=1)
    active = scale >= prune_std
    if not active.any():
        return 0.0
    args = (batch_size, scale, active, max(1, votes_per_call), tick)
    train_votes = _factor_vae_votes(representation_fn, dataset, rng, num_train, *args)
    classifier = np.argmax(train_votes, axis=0)  # (D,) factor for each latent
    eval_votes = _factor_vae_votes(representation_fn, dataset, rng, num_eval, *args)
    latents = np.arange(eval_votes.shape[1])
    return float(eval_votes[classifier, latents].sum() / eval_votes.sum())


def _beta_vae_points(
    representation_fn: RepresentationFn, dataset: Any, rng: np.random.Generator, n_points: int, batch_size: int,
    votes_per_call: int, tick: Callable[[int], None],
) -> tuple[np.ndarray, np.ndarray]:
    """(n, D) mean |z1 - z2| features of pairs sharing one factor, and (n,) that factor's index."""
    sizes = _factor_sizes(dataset)
    feats, labels = [], []
    done = 0
    while done < n_points:
        m = min(votes_per_call, n_points - done)
        fixed = rng.integers(0, len(sizes), size=m)
        f1 = sample_factors(dataset, m * batch_size, rng).reshape(m, batch_size, len(sizes))
        f2 = sample_factors(dataset, m * batch_size, rng).reshape(m, batch_size, len(sizes))
        f2[np.arange(m), :, fixed] = f1[np.arange(m), :, fixed]
        both = np.concatenate([f1.reshape(m * batch_size, -1), f2.reshape(m * batch_size, -1)])
        z = _represent(representation_fn, dataset, both).reshape(2, m, batch_size, -1)
        feats.append(np.mean(np.abs(z[0] - z[1]), axis=1))
        labels.append(fixed)
        done += m
        tick(2 * m * batch_size)
    return np.concatenate(feats), np.concatenate(labels)


def beta_vae_score(
    representation_fn: RepresentationFn, dataset: Any, random_state: Any, batch_size: int = 64,
    num_train: int = 10000, num_eval: int = 5000, votes_per_call: int = 16,
    progress: Callable[[float], None] | None = None,
) -> float:
    """beta-VAE disentanglement score (Higgins et al., 2017) as disentanglement_lib computes it.

    Each point: pick a factor uniformly; draw two batches of ``batch_size`` factor tuples where the
    second copies the first's value of that factor pair by pair; its feature is the mean over the
    batch of |z1 - z2| (D,) and its label the factor. A ``sklearn.linear_model.LogisticRegression``
    at its defaults is fitted on ``num_train`` points; the score is its accuracy on ``num_eval``
    fresh points.

    Parameters
    ----------
    representation_fn, dataset, random_state, batch_size, votes_per_call, progress
        As in :func:`factor_vae_score`.
    num_train, num_eval : int
        Points that fit the classifier and points that score it.

    Returns
    -------
    float in [0, 1], the evaluation accuracy; chance is about 1/K.

    Raises
    ------
    DataError
        (a ValueError) The data set cannot look up examples by factor values.
    ValueError
        ``representation_fn`` returns codes of the wrong shape, or a count below its minimum.
    """
    from sklearn.linear_model import LogisticRegression

    if batch_size < 1 or num_train < 2 or num_eval < 1:
        raise ValueError("beta_vae_score needs batch_size >= 1, num_train >= 2 and num_eval >= 1")
    _factor_sizes(dataset)
    rng = as_generator(random_state)
    args = (batch_size, max(1, votes_per_call), _ticker(2 * (num_train + num_eval) * batch_size, progress))
    x_train, y_train = _beta_vae_points(representation_fn, dataset, rng, num_train, *args)
    x_eval, y_eval = _beta_vae_points(representation_fn, dataset, rng, num_eval, *args)
    if len(np.unique(y_train)) < 2:  # one factor, or every training point drew the same one
        return float(np.mean(y_eval == y_train[0]))
    model = LogisticRegression(random_state=int(rng.integers(0, 2**31 - 1)))
    model.fit(x_train, y_train)
    return float(model.score(x_eval, y_eval))
