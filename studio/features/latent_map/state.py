"""The Map tab's Qt-free part: a map of latents, what a click or a drawn path means on it, and its colours.

The map holds the worker's :class:`~engines.shared.protocol.LatentMapped`: positions (N, 2), latents (N, D),
thumbnails and labels or factors. A click on a point gives that point's z exactly; elsewhere, and along
a drawn path, z is the inverse-distance mean of the nearest points' latents
(:func:`engines.shared.latent_map.unplace`). New points (the slider point, a path being interpolated) fall
on a PCA map by its projection and on a t-SNE map by :func:`~engines.shared.latent_map.place`.
"""

from __future__ import annotations

import numpy as np

from engines.shared import latent_map as M

#: Keyframes a drawn path becomes.
PATH_KEYFRAMES = 8
#: Colours of labelled points (by class index, cycled).
CLASS_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
                 (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


class LatentMap:
    """One map of latents.

    Attributes
    ----------
    xy : (N, 2) float64; z : (N, D) float32; images : (N, C, H, W) uint8 or None; indices, labels : (N,) int64;
    factors : (N, K) float32 or None; factor_names, class_names : list of str; method, source : str; step : int.
    """

    def __init__(self, event) -> None:  # noqa: ANN001 - a protocol.LatentMapped
        self.xy = np.asarray(event.xy, np.float64)
        self.z = np.asarray(event.z, np.float32)
        self.images = event.images
        n = len(self.xy)
        self.indices = np.asarray(event.indices if event.indices is not None else np.full(n, -1), np.int64)
        self.labels = np.asarray(event.labels if event.labels is not None else np.full(n, -1), np.int64)
        self.factors = None if event.factors is None else np.asarray(event.factors, np.float32)
        self.factor_names = list(event.factor_names)
        self.class_names = list(event.class_names)
        self.method, self.source, self.step = event.method, event.source, int(event.step)
        if self.z.shape[0] != n or (self.images is not None and len(self.images) != n):
            raise ValueError(f"a map of {n} points with {self.z.shape[0]} latents")
        self._pca = self._fit_projection() if self.method == "pca" else None

    def __len__(self) -> int:
        return len(self.xy)

    def _fit_projection(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(mean, (D, 2) matrix) with xy = (z - mean) @ matrix, fitted to the map (exact for a PCA map)."""
        z = self.z.astype(np.float64)
        mean = z.mean(0)
        m, *_ = np.linalg.lstsq(z - mean, self.xy, rcond=None)
        return mean, m

    def colour_options(self) -> list[str]:
        """What the points can be coloured by: "class" (with labels), each factor, or "none"."""
        out = ["class"] if (self.labels >= 0).any() else []
        return out + list(self.factor_names) + ["none"]

    def colours(self, by: str) -> list[tuple[int, int, int]]:
        """One RGB colour per point: by class (a fixed palette) or by a factor (a blue-to-yellow ramp)."""
        if by == "class" and (self.labels >= 0).any():
            return [CLASS_COLOURS[int(c) % len(CLASS_COLOURS)] if c >= 0 else (160, 160, 160) for c in self.labels]
        if by in self.factor_names and self.factors is not None:
            v = self.factors[:, self.factor_names.index(by)].astype(np.float64)
            t = (v - v.min()) / max(np.ptp(v), 1e-12)
            return [(int(40 + 200 * x), int(60 + 160 * x), int(200 - 170 * x)) for x in t]
        return [(120, 170, 230)] * len(self)

    def legend(self, by: str) -> list[tuple[str, tuple[int, int, int]]]:
        """What :meth:`colours` means: one (text, RGB) per class, or the factor's low and high ends."""
        if by == "class" and (self.labels >= 0).any():
            present = sorted({int(c) for c in self.labels if c >= 0})
            return [(self.class_names[c] if c < len(self.class_names) else str(c), CLASS_COLOURS[c % len(CLASS_COLOURS)])
                    for c in present]
        if by in self.factor_names and self.factors is not None:
            v = self.factors[:, self.factor_names.index(by)]
            return [(f"{by} {v.min():.2g} (low)", (40, 60, 200)), (f"{v.max():.2g} (high)", (240, 220, 30))]
        return []

    def pick(self, x: float, y: float, radius: float) -> int | None:
        """The point within ``radius`` (map units) of (x, y) nearest it, or None."""
        if not len(self):
            return None
        idx, d = M.nearest([x, y], self.xy, 1)
        return int(idx[0]) if d[0] <= radius else None

    def z_at(self, x: float, y: float, radius: float = 0.0) -> np.ndarray:
        """(D,) float32 the latent under (x, y): a picked point's own z, else :func:`~engines.shared.latent_map.unplace`."""
        hit = self.pick(x, y, radius)
        if hit is not None:
            return self.z[hit].copy()
        return M.unplace(self.xy, self.z, [x, y])[0]

    def place(self, z: np.ndarray) -> np.ndarray:
        """(M, 2) map positions of latents (M, D) or (D,): the projection on a PCA map, else placed by neighbours."""
        q = np.atleast_2d(np.asarray(z, np.float64))
        if q.shape[1] != self.z.shape[1]:
            raise ValueError(f"latents of width {q.shape[1]} on a map of width {self.z.shape[1]}")
        if self._pca is not None:
            mean, m = self._pca
            return (q - mean) @ m
        return M.place(self.z, self.xy, q).astype(np.float64)

    def lasso(self, polygon: np.ndarray) -> np.ndarray:
        """(M,) int64 indices of the map points inside a drawn polygon (V, 2)."""
        return np.flatnonzero(M.inside(polygon, self.xy)).astype(np.int64)

    def path_keyframes(self, path: np.ndarray, n: int = PATH_KEYFRAMES) -> np.ndarray:
        """(n, D) float32 keyframes evenly spaced along a drawn path (P, 2), each the latent under it."""
        return M.unplace(self.xy, self.z, M.resample_path(path, n))

    def thumbnail(self, i: int) -> np.ndarray | None:
        """Point ``i``'s image (C, H, W) float32 in [0, 1], or None (2-D points)."""
        if self.images is None:
            return None
        return np.asarray(self.images[i], np.float32) / 255.0

    def describe(self, i: int) -> str:
        """E.g. "held-out #12, class 7" or "draw 40"."""
        what = f"held-out #{self.indices[i]}" if self.indices[i] >= 0 else f"draw {i}"
        if self.labels[i] >= 0 and self.class_names:
            what += f", class {self.class_names[self.labels[i]] if self.labels[i] < len(self.class_names) else self.labels[i]}"
        if self.factors is not None:
            what += ", " + ", ".join(f"{n} {v:.2f}" for n, v in zip(self.factor_names, self.factors[i]))
        return what
