"""Directions in z and maps of the latent space: the maths, on numpy arrays (scikit-learn for ICA, t-SNE, classifiers).

- :func:`principal_directions`: PCA of latents (GANSpace, Harkonen et al. 2020); with ``features``
  (a generator's first-layer activations of prior draws) PCA there, regressed back to z as GANSpace
  does for generators whose z enters at one layer.
- :func:`independent_directions`: FastICA of the same (Hyvarinen & Oja 2000; GANSpace's ICA variant).
- :func:`attribute_direction`: the class mean difference (White 2016's attribute vectors) or a linear
  model's normal (Liu et al. 2019, Latent Space Cartography) from labels, factors or two groups.
- :func:`local_directions`: PCA of the latents nearest a point (LatentGandr, 2026).
- :func:`map_2d`: a 2-D map of latents (PCA, or t-SNE, van der Maaten & Hinton 2008); where new
  points fall on it and what lies under a click are in :mod:`engines.shared.latent_map`.

No torch here: the worker gathers the latents (:mod:`engines.worker.directions`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from engines.shared.directions import DirectionSet
from engines.shared.errors import ConfigError, DataError

#: Neighbours a local PCA uses at least (and 4 per direction asked for).
LOCAL_NEIGHBOURS = 64
#: Most points a map may hold.
MAX_MAP = 10000


def _matrix(z: np.ndarray, least: int, what: str = "latents") -> np.ndarray:
    a = np.asarray(z, np.float64)
    if a.ndim != 2 or len(a) < least or not np.isfinite(a).all():
        raise DataError(f"{what}: need a finite (N, D) array with N >= {least}, not shape {a.shape}")
    return a


def _unit_rows(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def _sign(v: np.ndarray) -> np.ndarray:
    """Each row flipped so its largest-magnitude entry is positive (a stable sign across runs)."""
    idx = np.argmax(np.abs(v), axis=1)
    return v * np.sign(v[np.arange(len(v)), idx])[:, None]


def _spread(z: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(k,) standard deviation of the latents along each unit row of v (floored, so a slider always moves)."""
    return ((z - z.mean(0)) @ v.T).std(0, ddof=1).clip(1e-6)


def principal_directions(z: np.ndarray, k: int, features: np.ndarray | None = None,
                         source: str = "", prefix: str = "PC") -> DirectionSet:
    """The top ``k`` principal directions of latents (Harkonen et al. 2020, GANSpace).

    Parameters
    ----------
    z : (N, D) array
        Latents: posterior means, a flow's exact z, or prior draws (with ``features``).
    k : int
        Directions wanted (at most min(N - 1, D), or the features' width).
    features : (N, F) array or None
        Activations the z produce in the generator's first layer. PCA runs there and each component
        is carried back to z by least squares over the N pairs (GANSpace's regression, for networks
        whose z enters at one layer: the prior is isotropic, so PCA of z itself finds nothing).
    source, prefix : str
        Recorded in the set; names are ``PC1``, ``PC2``, ...

    Returns
    -------
    DirectionSet
        Unit rows; ``scale`` the latents' standard deviation along each; ``explained`` each
        component's share of the variance (of z, or of the features).

    Raises
    ------
    DataError
        Fewer than 3 latents, or non-finite values.
    """
    z = _matrix(z, 3)
    space = z if features is None else _matrix(features, len(z), "features")
    centred = space - space.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    var = s**2 / (len(space) - 1)
    total = var.sum()
    k = max(1, min(int(k), int((var > 1e-12 * max(total, 1e-300)).sum()) or 1, len(vt)))
    if features is None:
        vectors = vt[:k]
    else:  # coordinates along each component, then z regressed on them: z - mean ~ coords @ U
        coords = centred @ vt[:k].T
        u, *_ = np.linalg.lstsq(coords, z - z.mean(0), rcond=None)
        vectors = u
    vectors = _sign(_unit_rows(vectors))
    share = var[:k] / total if total > 0 else np.zeros(k)
    return DirectionSet(vectors, _spread(z, vectors), [f"{prefix}{i + 1}" for i in range(k)], share,
                        method="pca", source=source)


def independent_directions(z: np.ndarray, k: int, features: np.ndarray | None = None, seed: int = 0,
                           source: str = "") -> DirectionSet:
    """``k`` independent components of latents by FastICA (scikit-learn; Hyvarinen & Oja 2000).

    Each direction is a column of the mixing matrix (in z, or in the features then regressed back
    as in :func:`principal_directions`), ordered by the variance it carries; ``explained`` is that
    variance's share of the total (the components are not orthogonal, so the shares need not sum to 1).

    Raises
    ------
    DataError
        Too few latents (ICA needs more than ``k``).
    """
    from sklearn.decomposition import FastICA

    z = _matrix(z, max(3, int(k) + 1))
    space = z if features is None else _matrix(features, len(z), "features")
    k = max(1, min(int(k), space.shape[1], len(space) - 1))
    ica = FastICA(n_components=k, whiten="unit-variance", random_state=seed, max_iter=400, tol=1e-3)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ConvergenceWarning still leaves usable components
        sources = ica.fit_transform(space)
    mixing = ica.mixing_.T  # (k, F): a unit move of source j moves the data by mixing[j]
    power = (mixing**2).sum(1)
    order = np.argsort(-power)
    mixing, power, sources = mixing[order], power[order], sources[:, order]
    if features is None:
        vectors = mixing
    else:
        u, *_ = np.linalg.lstsq(sources, z - z.mean(0), rcond=None)
        vectors = u
    vectors = _sign(_unit_rows(vectors))
    total = space.var(0, ddof=1).sum()
    return DirectionSet(vectors, _spread(z, vectors), [f"IC{i + 1}" for i in range(k)],
                        power / total if total > 0 else np.zeros(k), method="ica", source=source)


def attribute_direction(z: np.ndarray, target: np.ndarray, estimator: str = "mean", name: str = "attribute",
                        source: str = "") -> DirectionSet:
    """One direction along which an attribute grows (White 2016; Liu et al. 2019).

    Parameters
    ----------
    z : (N, D) array
    target : (N,) array
        Bool or {0, 1}: membership of the "to" group (the rest is the "from" group); or a real-valued
        factor (any other values), e.g. a shape's x position.
    estimator : {"mean", "linear"}
        "mean": the difference of the groups' mean latents (for a factor: of the top and bottom
        thirds); "linear": the normal of a logistic regression (groups) or the coefficient of a ridge
        regression (a factor), scikit-learn.
    name, source : str

    Returns
    -------
    DirectionSet
        One unit direction; ``scale`` the length of the mean difference ("mean") or the latents'
        standard deviation along it ("linear").

    Raises
    ------
    DataError
        A group with no member, or a constant factor. ConfigError: an unknown estimator.
    """
    if estimator not in ("mean", "linear"):
        raise ConfigError(f"estimator must be 'mean' or 'linear', not {estimator!r}")
    z = _matrix(z, 2)
    t = np.asarray(target).reshape(-1)
    if len(t) != len(z):
        raise DataError(f"{len(t)} attribute values for {len(z)} latents")
    binary = t.dtype == bool or set(np.unique(t).tolist()) <= {0, 1}
    if binary:
        t = t.astype(bool)
        if t.all() or not t.any():
            raise DataError(f"{name}: both groups need at least one member ({int(t.sum())} of {len(t)} in the 'to' group)")
    elif np.ptp(t) == 0:
        raise DataError(f"{name}: the factor is constant over these latents")
    if estimator == "mean":
        if binary:
            hi, lo = z[t], z[~t]
        else:
            q1, q2 = np.quantile(t, [1 / 3, 2 / 3])
            hi, lo = z[t >= q2], z[t <= q1]
        diff = hi.mean(0) - lo.mean(0)
        length = float(np.linalg.norm(diff))
        if length < 1e-12:
            raise DataError(f"{name}: the two groups have the same mean latent")
        return DirectionSet(diff[None] / length, [length], [name], [np.nan], method="attribute", source=source)
    if binary:
        from sklearn.linear_model import LogisticRegression

        w = LogisticRegression(C=1.0, max_iter=1000).fit(z, t).coef_[0]
    else:
        from sklearn.linear_model import Ridge

        w = Ridge(alpha=1.0).fit(z, t).coef_.reshape(-1)
    if np.linalg.norm(w) < 1e-12:
        raise DataError(f"{name}: the linear model found no direction")
    v = _unit_rows(w[None])
    return DirectionSet(v, _spread(z, v), [name], [np.nan], method="attribute", source=source)


def local_directions(pool: np.ndarray, point: np.ndarray, k: int, neighbours: int | None = None,
                     features: np.ndarray | None = None) -> DirectionSet:
    """Principal directions of the latents nearest ``point`` (LatentGandr, 2026: PCA of a neighbourhood).

    Parameters
    ----------
    pool : (N, D) array
        Latents to draw the neighbourhood from (posterior means of held-out images), or draws around
        the point already (with ``features``: then all of them are used).
    point : (D,) array
    k : int
    neighbours : int or None
        Neighbours used (default max(:data:`LOCAL_NEIGHBOURS`, 4k), at most N).
    features : (N, F) array or None
        As for :func:`principal_directions`.
    """
    pool = _matrix(pool, 3)
    p = np.asarray(point, np.float64).reshape(-1)
    if len(p) != pool.shape[1]:
        raise DataError(f"point of width {len(p)} for latents of width {pool.shape[1]}")
    if features is None:
        m = min(len(pool), neighbours or max(LOCAL_NEIGHBOURS, 4 * int(k)))
        idx = np.argsort(((pool - p) ** 2).sum(1))[:m]
        pool = pool[idx]
    found = principal_directions(pool, k, features, source=f"the {len(pool)} latents nearest the point",
                                 prefix="local PC")
    found.method = "local"
    return found


def map_2d(z: np.ndarray, method: str = "pca", perplexity: float = 30.0, seed: int = 0,
           cancel: threading.Event | None = None, progress: Callable[[float, str], None] | None = None,
           poll_s: float = 0.05, init: np.ndarray | None = None) -> np.ndarray | None:
    """2-D coordinates of latents: PCA (the top two components) or t-SNE (scikit-learn; van der Maaten & Hinton 2008).

    Parameters
    ----------
    z : (N, D) array, 3 <= N <= :data:`MAX_MAP`
    method : {"pca", "tsne"}
    perplexity : float
        t-SNE's effective neighbour count (clamped below N / 3).
    cancel : threading.Event or None
        t-SNE runs on a thread of its own; setting this returns None within ``poll_s`` (the thread
        finishes its fit in the background and its result is dropped: scikit-learn's t-SNE cannot stop midway).
    progress : callable (fraction, what) or None
        Called while t-SNE runs, the fraction estimated from the elapsed time against the expected (a
        rough rate of 1,000 points in 4 s on two cores, corrected as it runs).

    init : (N, 2) array or None
        t-SNE's starting positions (a previous map of the same points); default its PCA initialisation.

    Returns
    -------
    (N, 2) float32, or None when cancelled.

    Raises
    ------
    ConfigError
        An unknown method. DataError: too few or too many points.
    """
    z = _matrix(z, 3)
    if len(z) > MAX_MAP:
        raise DataError(f"a map holds at most {MAX_MAP} points, not {len(z)}")
    if method == "pca":
        centred = z - z.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ _sign(vt[:2]).T
        if xy.shape[1] < 2:
            xy = np.column_stack([xy, np.zeros(len(xy))])
        return xy.astype(np.float32)
    if method != "tsne":
        raise ConfigError(f"map method must be 'pca' or 'tsne', not {method!r}")
    from sklearn.manifold import TSNE

    result: dict[str, object] = {}

    def fit() -> None:
        try:
            p = float(min(perplexity, max(2.0, (len(z) - 1) / 3)))
            start = "pca" if z.shape[1] >= 2 else "random"
            if init is not None:
                start = np.asarray(init, np.float64)
                if start.shape != (len(z), 2) or not np.isfinite(start).all():
                    raise DataError(f"t-SNE's start must be ({len(z)}, 2) finite positions, not {start.shape}")
                start = start / max(float(start[:, 0].std()), 1e-12) * 1e-4  # the scale scikit-learn expects
            result["xy"] = TSNE(n_components=2, perplexity=p, init=start, random_state=seed,
                                learning_rate="auto").fit_transform(z)
        except Exception as e:  # noqa: BLE001 - re-raised on the calling thread
            result["error"] = e

    thread = threading.Thread(target=fit, name="tsne", daemon=True)
    start = time.perf_counter()
    expected = 0.5 + 4.0 * len(z) / 1000
    thread.start()
    while thread.is_alive():
        thread.join(poll_s)
        if cancel is not None and cancel.is_set():
            return None
        if progress is not None:
            elapsed = time.perf_counter() - start
            expected = max(expected, elapsed * 1.1)
            progress(min(0.99, elapsed / expected), "t-SNE")
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return np.asarray(result["xy"], np.float32)
