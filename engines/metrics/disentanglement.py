"""Ground-truth disentanglement metrics on arrays of codes and factors (numpy + scikit-learn, no torch).

Every metric follows the evaluation protocol of disentanglement_lib (Locatello, Bauer, Lucic,
Raetsch, Gelly, Schoelkopf and Bachem, 2019, "Challenging Common Assumptions in the Unsupervised
Learning of Disentangled Representations"); each constant of that protocol (sample counts, bins,
batch sizes, thresholds) is a named argument whose default is the protocol's.

- :func:`mig` / :func:`mig_details`: Mutual Information Gap (Chen, Li, Grosse and Duvenaud, 2018).
- :func:`sap`: Separated Attribute Predictability (Kumar, Sattigeri and Balakrishnan, 2018).
- :func:`dci`: Disentanglement, Completeness, Informativeness (Eastwood and Williams, 2018).

The two metrics that sample their own examples, the FactorVAE score (Kim and Mnih, 2018) and the
beta-VAE score (Higgins et al., 2017), live in :mod:`engines.metrics.sampled` and are re-exported
here.

Shapes: ``codes`` (N, D) float (D latent dimensions, the posterior mean), ``factors`` (N, K) int
(K ground-truth factors, each a class index). disentanglement_lib stores them transposed,
(D, N) and (K, N); the results are the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import entropy as _entropy
from sklearn.metrics import mutual_info_score

from engines.metrics.sampled import beta_vae_score, factor_vae_score, images_of, sample_factors


@dataclass(frozen=True)
class MIGDetails:
    """What :func:`mig_details` measures.

    Attributes
    ----------
    mig : float
        In [0, 1], the mean normalised gap over the factors that vary in the sample.
    gaps : (K,) float64 array
        Normalised gap per factor (NaN for a factor constant in the sample).
    mi : (D, K) float64 array
        Mutual information in nats between latent d and factor k.
    entropy : (K,) float64 array
        H(v_k) in nats.
    top_latent : (K,) int64 array
        The latent with the largest MI for each factor.
    """

    mig: float
    gaps: np.ndarray
    mi: np.ndarray
    entropy: np.ndarray
    top_latent: np.ndarray


@dataclass(frozen=True)
class DCIResult:
    """What :func:`dci` measures (Eastwood and Williams, 2018).

    Attributes
    ----------
    disentanglement, completeness : float
        In [0, 1].
    informativeness_train, informativeness_test : float
        Accuracies in [0, 1] of the per-factor classifiers on the training and the test codes.
    importance : (D, K) float64 array
        The importance matrix R.
    """

    disentanglement: float
    completeness: float
    informativeness_train: float
    informativeness_test: float
    importance: np.ndarray

__all__ = [
    "beta_vae_score",
    "dci",
    "dci_importance",
    "factor_vae_score",
    "histogram_discretize",
    "images_of",
    "mig",
    "mig_details",
    "mutual_info_matrix",
    "sample_factors",
    "sap",
    "sap_score_matrix",
]

#: Share of the points held out for testing when SAP or DCI get no separate test set: the
#: protocol's 5,000 test points next to its 10,000 training points.
TEST_FRACTION = 1.0 / 3.0


def _check(codes: Any, factors: Any, what: str = "codes") -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert (N, D) codes and (N, K) integer factors."""
    z = np.asarray(codes, dtype=np.float64)
    f = np.asarray(factors)
    if z.ndim != 2 or z.shape[0] < 2 or z.shape[1] < 1:
        raise ValueError(f"{what} must be an (N, D) array with N >= 2 and D >= 1, got shape {z.shape}")
    if f.ndim != 2 or f.shape[1] < 1:
        raise ValueError(f"factors must be an (N, K) array with K >= 1, got shape {f.shape}")
    if f.shape[0] != z.shape[0]:
        raise ValueError(f"{what} and factors disagree on N: {z.shape[0]} vs {f.shape[0]}")
    if f.size and not np.issubdtype(f.dtype, np.integer):
        if not np.all(np.isfinite(f)) or not np.all(f == np.round(f)):
            raise ValueError(f"factors must be whole numbers (class indices), got dtype {f.dtype}")
    if not np.all(np.isfinite(z)):
        raise ValueError(f"{what} contain NaN or infinite values")
    return z, f.astype(np.int64)


def _split(
    codes: Any, factors: Any, codes_test: Any, factors_test: Any, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train and test arrays: the given test set, or the last ``test_fraction`` of the points."""
    z, f = _check(codes, factors)
    if (codes_test is None) != (factors_test is None):
        raise ValueError("give both codes_test and factors_test, or neither")
    if codes_test is not None:
        zt, ft = _check(codes_test, factors_test, "codes_test")
        if zt.shape[1] != z.shape[1] or ft.shape[1] != f.shape[1]:
            raise ValueError(f"test arrays {zt.shape}, {ft.shape} do not match training arrays {z.shape}, {f.shape}")
        return z, f, zt, ft
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    n_test = int(round(test_fraction * len(z)))
    if n_test < 1 or len(z) - n_test < 2:
        raise ValueError(f"{len(z)} points are too few to split into training and test points")
    cut = len(z) - n_test
    return z[:cut], f[:cut], z[cut:], f[cut:]


def histogram_discretize(codes: np.ndarray, n_bins: int = 20) -> np.ndarray:
    """Discretise each latent dimension into ``n_bins`` equal-width bins over its own range.

    As disentanglement_lib's ``_histogram_discretize``: the bin edges of ``np.histogram`` per
    latent, and ``np.digitize`` against all edges but the last.

    Parameters
    ----------
    codes : (N, D) float
    n_bins : int
        Bins per latent dimension (disentanglement_lib: 20).

    Returns
    -------
    (N, D) int64 bin indices in [1, n_bins].
    """
    z = np.asarray(codes, dtype=np.float64)
    out = np.zeros(z.shape, dtype=np.int64)
    for d in range(z.shape[1]):
        edges = np.histogram(z[:, d], bins=n_bins)[1]
        out[:, d] = np.digitize(z[:, d], edges[:-1])
    return out


def mutual_info_matrix(codes: Any, factors: Any, n_bins: int = 20) -> np.ndarray:
    """Mutual information between each discretised latent and each factor (disentanglement_lib).

    Parameters
    ----------
    codes : (N, D) float
        Latent codes (posterior means).
    factors : (N, K) int
        Ground-truth factor classes.
    n_bins : int
        Histogram bins per latent (:func:`histogram_discretize`).

    Returns
    -------
    (D, K) float64, mutual information in nats (``sklearn.metrics.mutual_info_score``), >= 0.

    Raises
    ------
    ValueError
        Arrays of the wrong shape, N < 2, non-finite codes or non-integer factors.
    """
    z, f = _check(codes, factors)
    zd = histogram_discretize(z, n_bins)
    m = np.zeros((z.shape[1], f.shape[1]))
    for d in range(z.shape[1]):
        for k in range(f.shape[1]):
            m[d, k] = mutual_info_score(f[:, k], zd[:, d])
    return np.maximum(m, 0.0)


def mig_details(codes: Any, factors: Any, n_bins: int = 20) -> dict[str, Any]:
    """The Mutual Information Gap with its parts, for display.

    Chen, Li, Grosse and Duvenaud (2018), "Isolating Sources of Disentanglement in Variational
    Autoencoders", with disentanglement_lib's estimator: each latent discretised into ``n_bins``
    histogram bins, MI by ``mutual_info_score``, and for each factor the gap between the largest and
    second-largest MI over latents divided by the factor's entropy H(v_k) (``mutual_info_score(v, v)``).
    disentanglement_lib runs it on 10,000 points (``num_train``); the caller picks N.

    Parameters
    ----------
    codes : (N, D) float, D >= 2
    factors : (N, K) int
    n_bins : int
        Histogram bins per latent.

    Returns
    -------
    MIGDetails

    Raises
    ------
    ValueError
        Fewer than two latents, no factor that varies, or bad arrays (:func:`mutual_info_matrix`).
    """
    z, f = _check(codes, factors)
    if z.shape[1] < 2:
        raise ValueError(f"MIG needs at least two latent dimensions, got {z.shape[1]}")
    m = mutual_info_matrix(z, f, n_bins)
    h = np.array([mutual_info_score(f[:, k], f[:, k]) for k in range(f.shape[1])])
    top = np.sort(m, axis=0)[::-1]
    varying = h > 0
    if not varying.any():
        raise ValueError("MIG needs at least one factor that varies in the sample")
    gaps = np.full(f.shape[1], np.nan)
    gaps[varying] = (top[0, varying] - top[1, varying]) / h[varying]
    return MIGDetails(float(np.mean(gaps[varying])), gaps, m, h, np.argmax(m, axis=0).astype(np.int64))


def mig(codes: Any, factors: Any, n_bins: int = 20) -> float:
    """Mutual Information Gap (Chen et al., 2018) as disentanglement_lib computes it.

    See :func:`mig_details` for the protocol, the parameters and the errors.

    Returns
    -------
    float in [0, 1]; 1 when each factor is captured by exactly one latent.
    """
    return mig_details(codes, factors, n_bins).mig


def _sap_matrix(
    codes: Any, factors: Any, codes_test: Any, factors_test: Any, test_fraction: float, svm_c: float
) -> tuple[np.ndarray, np.ndarray]:
    """SAP score matrix (D, K) and a (K,) mask of the factors that vary in the training points."""
    from sklearn.svm import LinearSVC

    z, f, zt, ft = _split(codes, factors, codes_test, factors_test, test_fraction)
    scores = np.zeros((z.shape[1], f.shape[1]))
    varying = np.array([len(np.unique(f[:, k])) > 1 for k in range(f.shape[1])])
    for k in np.flatnonzero(varying):
        for d in range(z.shape[1]):
            clf = LinearSVC(C=svm_c, class_weight="balanced")
            clf.fit(z[:, d : d + 1], f[:, k])
            scores[d, k] = np.mean(clf.predict(zt[:, d : d + 1]) == ft[:, k])
    return scores, varying


def sap_score_matrix(
    codes: Any, factors: Any, codes_test: Any = None, factors_test: Any = None, *,
    test_fraction: float = TEST_FRACTION, svm_c: float = 0.01,
) -> np.ndarray:
    """Test accuracy of a one-latent linear classifier for each (latent, factor) pair.

    disentanglement_lib's SAP score matrix for discrete factors (``continuous_factors=False``):
    ``sklearn.svm.LinearSVC(C=0.01, class_weight="balanced")`` fitted on the single latent of the
    training points, scored by accuracy on the test points.

    Parameters
    ----------
    codes, factors : (N, D) float and (N, K) int
        Training points (all points when no test set is given).
    codes_test, factors_test : (M, D) float and (M, K) int, optional
        Test points; without them the last ``test_fraction`` of the points are the test points.
    test_fraction : float
        Share held out (the protocol draws 10,000 training and 5,000 test points).
    svm_c : float
        The LinearSVC's C.

    Returns
    -------
    (D, K) float64 accuracies in [0, 1]; 0 for a factor with one class in the training points.

    Raises
    ------
    ValueError
        Bad arrays, or too few points to split.
    """
    return _sap_matrix(codes, factors, codes_test, factors_test, test_fraction, svm_c)[0]


def sap(
    codes: Any, factors: Any, codes_test: Any = None, factors_test: Any = None, *,
    test_fraction: float = TEST_FRACTION, svm_c: float = 0.01,
) -> float:
    """Separated Attribute Predictability (Kumar, Sattigeri and Balakrishnan, 2018).

    disentanglement_lib's SAP with ``continuous_factors=False``: the mean over factors of the
    difference between the best and the second-best latent's accuracy in :func:`sap_score_matrix`
    (the protocol uses 10,000 training and 5,000 test points). Factors with one class in the
    training points are left out of the mean.

    Parameters
    ----------
    See :func:`sap_score_matrix`; needs D >= 2.

    Returns
    -------
    float in [0, 1]; near 0 for codes unrelated to the factors.

    Raises
    ------
    ValueError
        Fewer than two latents, no factor that varies, bad arrays or too few points.
    """
    if np.ndim(codes) == 2 and np.shape(codes)[1] < 2:
        raise ValueError(f"SAP needs at least two latent dimensions, got {np.shape(codes)[1]}")
    scores, varying = _sap_matrix(codes, factors, codes_test, factors_test, test_fraction, svm_c)
    if not varying.any():
        raise ValueError("SAP needs at least one factor that varies in the training points")
    top = np.sort(scores, axis=0)
    return float(np.mean((top[-1] - top[-2])[varying]))


def _make_estimator(estimator: str | Callable[[], Any], seed: int) -> Any:
    if callable(estimator):
        return estimator()
    if estimator == "gbt":
        from sklearn.ensemble import GradientBoostingClassifier

        return GradientBoostingClassifier(random_state=seed)
    if estimator == "forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=50, max_features=None, min_samples_leaf=5, random_state=seed, n_jobs=1)
    raise ValueError(f"unknown DCI estimator {estimator!r}; use 'gbt' (the protocol's), 'forest' or a callable")


def dci_importance(
    codes: Any, factors: Any, codes_test: Any = None, factors_test: Any = None, *,
    test_fraction: float = TEST_FRACTION, estimator: str | Callable[[], Any] = "gbt", random_state: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, float, float]:
    """Importance matrix and accuracies of one classifier per factor (disentanglement_lib's ``compute_importance_gbt``).

    Parameters
    ----------
    codes, factors, codes_test, factors_test, test_fraction
        As in :func:`sap_score_matrix` (the protocol: 10,000 training and 5,000 test points).
    estimator : {"gbt", "forest"} or callable
        ``"gbt"``: ``sklearn.ensemble.GradientBoostingClassifier()`` at its defaults (the protocol);
        ``"forest"``: 50 bagged trees (a random forest on all features), several times faster, not the protocol; a callable
        returns an unfitted classifier with ``feature_importances_`` after fitting.
    random_state : int
        Seed of the estimator (the protocol leaves it unset).
    progress : callable or None
        Called as ``progress(k, K)`` after factor k's classifier (k from 1 to K) is fitted.

    Returns
    -------
    importance : (D, K) float64, ``|feature_importances_|`` of factor k's classifier in column k
    accuracy_train, accuracy_test : float in [0, 1], mean over factors

    Raises
    ------
    ValueError
        Bad arrays, too few points, or an unknown estimator name.
    """
    z, f, zt, ft = _split(codes, factors, codes_test, factors_test, test_fraction)
    importance = np.zeros((z.shape[1], f.shape[1]))
    acc_train, acc_test = [], []
    for k in range(f.shape[1]):
        if len(np.unique(f[:, k])) < 2:  # nothing to learn: the constant is always right
            acc_train.append(1.0)
            acc_test.append(float(np.mean(ft[:, k] == f[0, k])))
        else:
            model = _make_estimator(estimator, random_state)
            model.fit(z, f[:, k])
            importance[:, k] = np.abs(model.feature_importances_)
            acc_train.append(float(np.mean(model.predict(z) == f[:, k])))
            acc_test.append(float(np.mean(model.predict(zt) == ft[:, k])))
        if progress is not None:
            progress(k + 1, f.shape[1])
    return importance, float(np.mean(acc_train)), float(np.mean(acc_test))


def _disentanglement(importance: np.ndarray) -> float:
    """Eastwood and Williams' D: per-code 1 - H_K(P_d.), weighted by each code's share of importance."""
    k = importance.shape[1]
    per_code = 1.0 - _entropy(importance.T + 1e-11, base=k) if k > 1 else np.ones(importance.shape[0])
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    return float(np.sum(per_code * weights.sum(axis=1) / weights.sum()))


def _completeness(importance: np.ndarray) -> float:
    """Eastwood and Williams' C: per-factor 1 - H_D(P_.k), weighted by each factor's share of importance."""
    d = importance.shape[0]
    per_factor = 1.0 - _entropy(importance + 1e-11, base=d) if d > 1 else np.ones(importance.shape[1])
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    return float(np.sum(per_factor * weights.sum(axis=0) / weights.sum()))


def dci(
    codes: Any, factors: Any, codes_test: Any = None, factors_test: Any = None, *,
    test_fraction: float = TEST_FRACTION, estimator: str | Callable[[], Any] = "gbt", random_state: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Disentanglement, Completeness and Informativeness (Eastwood and Williams, 2018).

    disentanglement_lib's protocol: one gradient-boosted tree classifier per factor on all latents
    (:func:`dci_importance`); the importance matrix R (D, K) gives disentanglement
    ``sum_d rho_d (1 - H_K(P_d.))`` with ``rho_d`` code d's share of the total importance, and
    completeness ``sum_k rho_k (1 - H_D(P_.k))``; informativeness is the classifiers' mean accuracy
    on the training and on the test points (higher is better).

    Parameters
    ----------
    See :func:`dci_importance`.

    Returns
    -------
    DCIResult

    Raises
    ------
    ValueError
        As :func:`dci_importance`.
    """
    importance, acc_train, acc_test = dci_importance(
        codes, factors, codes_test, factors_test, test_fraction=test_fraction, estimator=estimator,
        random_state=random_state, progress=progress,
    )
    return DCIResult(_disentanglement(importance), _completeness(importance), acc_train, acc_test, importance)
