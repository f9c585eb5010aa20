"""Geometry of a 2-D map of latents, shared by the worker and the window's Map tab (numpy only).

- :func:`nearest`: the rows of a pool nearest a query (the memorisation check's neighbours, a click's point);
- :func:`place`: where new latents fall on a map (the current slider point, a path being interpolated);
- :func:`unplace`: the latent under a map position (a click between points, a drawn path's keyframes);
- :func:`inside`: the points a lasso encloses; :func:`resample_path`: keyframes evenly spaced along a drawn path.

A PCA map projects exactly (``place`` is only needed for t-SNE, which has no transform for new points);
both directions use inverse-distance weighting of the ``k`` nearest map points, the usual stand-in.
"""

from __future__ import annotations

import numpy as np


def nearest(query: np.ndarray, pool: np.ndarray, k: int, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``pool`` nearest ``query`` in Euclidean distance.

    Parameters
    ----------
    query : (D,) array (an image flattened, or a z)
    pool : (N, ...) array, each row flattened to D

    Returns
    -------
    indices : (k,) int64, nearest first (ties by index)
    distances : (k,) float64
    """
    q = np.asarray(query, np.float64).reshape(-1)
    n = len(pool)
    k = max(1, min(int(k), n))
    d = np.empty(n)
    for s in range(0, n, chunk):
        block = np.asarray(pool[s: s + chunk], np.float64).reshape(min(chunk, n - s), -1)
        d[s: s + len(block)] = np.sqrt(((block - q) ** 2).sum(1))
    idx = np.argsort(d, kind="stable")[:k]
    return idx.astype(np.int64), d[idx]


def _idw(keys: np.ndarray, values: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    km = np.asarray(keys, np.float64)
    vm = np.asarray(values, np.float64).reshape(len(km), -1)
    q = np.atleast_2d(np.asarray(query, np.float64))
    k = max(1, min(int(k), len(km)))
    out = np.empty((len(q), vm.shape[1]), np.float32)
    for i, row in enumerate(q):
        idx, d = nearest(row, km, k)
        if d[0] < 1e-9:
            out[i] = vm[idx[0]]
            continue
        w = 1.0 / d
        out[i] = (w[:, None] * vm[idx]).sum(0) / w.sum()
    return out


def place(z_map: np.ndarray, xy: np.ndarray, z: np.ndarray, k: int = 5) -> np.ndarray:
    """Where latents fall on a map: (M, 2) float32, the inverse-distance mean of the positions of each
    one's ``k`` nearest map latents (a latent of the map lands on its own point exactly).

    Parameters
    ----------
    z_map : (N, D) the map's latents; xy : (N, 2) their positions; z : (D,) or (M, D)
    """
    return _idw(z_map, xy, z, k)


def unplace(xy_map: np.ndarray, z_map: np.ndarray, xy: np.ndarray, k: int = 5) -> np.ndarray:
    """The latents under map positions: (M, D) float32, the inverse-distance mean of the ``k`` nearest map
    points' latents (a position on a point gives that point's z exactly)."""
    return _idw(xy_map, z_map, xy, k)


def inside(polygon: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N,) bool: which ``points`` (N, 2) a closed ``polygon`` (V, 2) encloses (even-odd rule; V >= 3)."""
    poly = np.asarray(polygon, np.float64).reshape(-1, 2)
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if len(poly) < 3:
        return np.zeros(len(pts), bool)
    x, y = pts[:, 0], pts[:, 1]
    result = np.zeros(len(pts), bool)
    for (x1, y1), (x2, y2) in zip(poly, np.roll(poly, -1, axis=0)):
        crosses = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        result ^= crosses & (x < at)
    return result


def resample_path(path: np.ndarray, n: int) -> np.ndarray:
    """(n, 2) float64 points evenly spaced by arc length along a drawn path (P, 2), both ends kept (n >= 2)."""
    p = np.asarray(path, np.float64).reshape(-1, 2)
    n = max(2, int(n))
    if len(p) < 2:
        return np.repeat(p[:1], n, axis=0)
    seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return np.repeat(p[:1], n, axis=0)
    t = np.linspace(0.0, s[-1], n)
    return np.column_stack([np.interp(t, s, p[:, 0]), np.interp(t, s, p[:, 1])])
