"""Sample quality without downloaded weights: Frechet distance, classifier score, precision / recall, density / coverage.

Every metric here compares two sets of feature vectors, real (N, F) and generated (M, F). The
features are the studio's own (:mod:`engines.metrics.features`): the hidden layer of the small
classifier it trains on a labelled data set, or principal components of pixels where there are no
labels. Inception's features are never used, so the Frechet distance here is "FD (classifier
features)", comparable between models on the same data and features, never with published FIDs.

- :func:`frechet_distance`: the Frechet distance between Gaussians fitted to the two sets (Heusel
  et al., 2017, FID's formula; TF-GAN's ``mnist_frechet_distance`` applies it to an MNIST
  classifier's outputs as we do).
- :func:`classifier_score`: ``exp E_x KL(p(y|x) || p(y))`` (Salimans et al., 2016, the Inception
  score's formula) under the studio's classifier.
- :func:`precision_recall`: improved precision and recall (Kynkaanniemi, Karras, Laine, Lehtinen and
  Aila, 2019) with k = 3 nearest-neighbour balls.
- :func:`density_coverage`: density and coverage (Naeem, Oh, Uh, Choi and Yoo, 2020) with k = 5.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engines.shared.errors import ConfigError

__all__ = ["classifier_score", "density_coverage", "frechet_distance", "knn_radii", "precision_recall"]

#: Rows of the pairwise distance matrix computed at once (memory: CHUNK x N float32).
CHUNK = 1024


def _features(x: Any, what: str, min_rows: int = 2) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < min_rows or a.shape[1] < 1:
        raise ConfigError(f"{what} must be (N, F) features with N >= {min_rows}, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ConfigError(f"{what} contain NaN or infinite values")
    return a


def _pair(real: Any, fake: Any, min_rows: int) -> tuple[np.ndarray, np.ndarray]:
    r, f = _features(real, "real features", min_rows), _features(fake, "generated features", min_rows)
    if r.shape[1] != f.shape[1]:
        raise ConfigError(f"real and generated features differ in width: {r.shape[1]} and {f.shape[1]}")
    return r, f


def frechet_distance(real: Any, fake: Any) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (Heusel et al., 2017).

    ``||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2))`` with the sample means and the
    covariances (ddof = 1). ``Tr (S_r S_f)^(1/2)`` is the sum of the square roots of the eigenvalues
    of the symmetric ``S_r^(1/2) S_f S_r^(1/2)`` (the same eigenvalues), so singular covariances (a
    feature that never fires) need no ridge and give no complex round-off.

    Parameters
    ----------
    real, fake : (N, F) and (M, F) arrays
        N, M >= 2 feature vectors of the same width.

    Returns
    -------
    float >= 0, in squared feature units; 0 for identical Gaussians. The estimate is biased upward
    for small N and M (compare scores measured with the same counts).

    Raises
    ------
    ConfigError
        Bad shapes, fewer than two rows, or non-finite values.
    """
    r, f = _pair(real, fake, 2)
    mu_r, mu_f = r.mean(axis=0), f.mean(axis=0)
    s_r, s_f = np.atleast_2d(np.cov(r, rowvar=False)), np.atleast_2d(np.cov(f, rowvar=False))
    w, v = np.linalg.eigh(s_r)
    root_r = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    middle = np.linalg.eigvalsh(root_r @ s_f @ root_r)
    trace_root = float(np.sum(np.sqrt(np.clip(middle, 0.0, None))))
    diff = mu_r - mu_f
    return float(max(0.0, diff @ diff + np.trace(s_r) + np.trace(s_f) - 2.0 * trace_root))


def classifier_score(probs: Any, eps: float = 1e-12) -> float:
    """``exp(E_x KL(p(y|x) || p(y)))``, the Inception score's formula (Salimans et al., 2016) on our classifier.

    Parameters
    ----------
    probs : (M, K) array
        Class probabilities p(y|x) of M >= 1 generated images (rows summing to 1).

    Returns
    -------
    float in [1, K]: K when every image is classified confidently and the classes are used evenly,
    1 when every image gets the same distribution. Computed on all M at once (the published protocol
    averages 10 splits; ours is one split, so it is a little higher for small M).

    Raises
    ------
    ConfigError
        Not (M, K) probabilities.
    """
    p = _features(probs, "class probabilities", 1)
    if (p < -1e-9).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise ConfigError("class probabilities must be non-negative rows that sum to 1")
    p = np.clip(p, eps, 1.0)
    marginal = p.mean(axis=0, keepdims=True)
    kl = np.sum(p * (np.log(p) - np.log(marginal)), axis=1)
    return float(np.exp(kl.mean()))


def _sq_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)


def _distances(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) Euclidean distances, float64, never negative."""
    d2 = _sq_norms(a)[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(d2, 0.0))


def knn_radii(x: Any, k: int) -> np.ndarray:
    """Distance from each row of ``x`` to its k-th nearest other row (the row itself left out).

    Parameters
    ----------
    x : (N, F) array, N > k
    k : int >= 1

    Returns
    -------
    (N,) float64 radii, in feature units.

    Raises
    ------
    ConfigError
        k < 1 or N <= k.
    """
    a = _features(x, "features", 2)
    if k < 1 or len(a) <= k:
        raise ConfigError(f"k-nearest-neighbour radii need 1 <= k < N, got k={k} with N={len(a)}")
    sq = _sq_norms(a)
    out = np.empty(len(a))
    for i in range(0, len(a), CHUNK):
        d = _distances(a[i : i + CHUNK], a, sq)
        d[np.arange(len(d)), np.arange(i, i + len(d))] = np.inf  # not its own neighbour
        out[i : i + CHUNK] = np.partition(d, k - 1, axis=1)[:, k - 1]
    return out


def _inside_counts(points: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each point, how many balls (centre, radius) hold it; for each ball, whether any point is in it."""
    sq = _sq_norms(centres)
    per_point = np.zeros(len(points), np.int64)
    ball_hit = np.zeros(len(centres), bool)
    for i in range(0, len(points), CHUNK):
        inside = _distances(points[i : i + CHUNK], centres, sq) <= radii[None, :]
        per_point[i : i + CHUNK] = inside.sum(axis=1)
        ball_hit |= inside.any(axis=0)
    return per_point, ball_hit


def precision_recall(real: Any, fake: Any, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al., 2019).

    Each set's manifold is the union of balls around its points with radius the distance to the
    k-th nearest neighbour in the same set. Precision: the share of generated points inside the real
    manifold (are samples realistic?). Recall: the share of real points inside the generated
    manifold (is the data's variety covered?).

    Parameters
    ----------
    real, fake : (N, F) and (M, F) arrays, N, M > k
    k : int
        Neighbours (3 in the paper).

    Returns
    -------
    precision, recall : floats in [0, 1]

    Raises
    ------
    ConfigError
        Bad shapes, or a set with no more than k points.
    """
    r, f = _pair(real, fake, k + 1)
    per_fake, _ = _inside_counts(f, r, knn_radii(r, k))
    per_real, _ = _inside_counts(r, f, knn_radii(f, k))
    return float(np.mean(per_fake > 0)), float(np.mean(per_real > 0))


def density_coverage(real: Any, fake: Any, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al., 2020).

    Balls around the real points only, radius the distance to the k-th nearest real neighbour.
    Density: the mean number of balls holding each generated point, divided by k (about 1 when the
    two distributions match; above 1 where samples crowd dense regions). Coverage: the share of real
    balls holding at least one generated point (about ``1 - 2^-k``, 0.97 at k = 5, for identical
    distributions at large N = M).

    Parameters
    ----------
    real, fake : (N, F) and (M, F) arrays, N > k, M >= 1
    k : int
        Neighbours (5 in the paper).

    Returns
    -------
    density : float >= 0 (unbounded above)
    coverage : float in [0, 1]

    Raises
    ------
    ConfigError
        Bad shapes, or no more than k real points.
    """
    r, f = _features(real, "real features", k + 1), _features(fake, "generated features", 1)
    if r.shape[1] != f.shape[1]:
        raise ConfigError(f"real and generated features differ in width: {r.shape[1]} and {f.shape[1]}")
    per_fake, ball_hit = _inside_counts(f, r, knn_radii(r, k))
    return float(per_fake.sum() / (k * len(f))), float(ball_hit.mean())
