"""The data set object that every loader returns (numpy only; no torch, no Qt)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engines.shared.datainfo import DataInfo

#: Fraction of a data set held out for evaluation, and the seed of that split.
HELD_OUT_FRACTION = 0.1
SPLIT_SEED = 1234




@dataclass
class Dataset:
    """A data set held as arrays, or generated lazily by index (subclasses override :meth:`get`).

    Examples are float32 in [0, 1] with shape (C, H, W) for images, or float32 points (2,).
    The held-out split is fixed by :data:`SPLIT_SEED` and part of the object.

    Attributes
    ----------
    info : DataInfo
        Shape, size, class and factor names.
    x : ndarray or None
        (N, C, H, W) float32 in [0, 1] or (N, 2) float32, or None for a lazy data set.
    y : ndarray or None
        (N,) int64 labels in [0, n_classes), where known.
    factors : ndarray or None
        (N, K) int64 ground-truth factor values, where known.
    train_indices, test_indices : ndarray
        (n_train,) and (n_test,) int64 indices into the data set, disjoint.
    """

    info: DataInfo
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    factors: np.ndarray | None = None
    train_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    test_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return self.info.size

    def get(self, indices: np.ndarray) -> np.ndarray:
        """Examples by index.

        Parameters
        ----------
        indices : (B,) int array
            Indices in [0, len(self)).

        Returns
        -------
        (B, C, H, W) float32 in [0, 1] for images, (B, 2) float32 for points.
        """
        assert self.x is not None, "lazy data sets override get()"
        return self.x[np.asarray(indices, dtype=np.int64)]

    def labels(self, indices: np.ndarray) -> np.ndarray | None:
        """(B,) int64 labels of the given examples, or None where the data has no labels."""
        return None if self.y is None else self.y[np.asarray(indices, dtype=np.int64)]

    def factor_values(self, indices: np.ndarray) -> np.ndarray | None:
        """(B, K) int64 ground-truth factor values of the given examples, or None."""
        return None if self.factors is None else self.factors[np.asarray(indices, dtype=np.int64)]

    def summary(self) -> str:
        """One line for the window and the CLI, e.g. ``"digits: 1797 x 1x32x32, 10 classes"``."""
        shape = "x".join(str(s) for s in self.info.shape)
        parts = [f"{self.info.spec}: {self.info.size} x {shape}"]
        parts.append(f"{self.info.n_train} train / {self.info.n_test} held out")
        if self.info.class_names:
            parts.append(f"{len(self.info.class_names)} classes")
        if self.info.factor_names:
            parts.append("factors " + ", ".join(self.info.factor_names))
        return ", ".join(parts)


def split_indices(n: int, fraction: float = HELD_OUT_FRACTION, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random train / held-out split of ``range(n)``.

    Returns
    -------
    train, test : (n - m,) and (m,) int64, sorted, where m = max(1, round(fraction * n)) for n >= 2.
    """
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    m = max(1, int(round(fraction * n))) if n >= 2 else 0
    return np.sort(perm[m:]).astype(np.int64), np.sort(perm[:m]).astype(np.int64)
