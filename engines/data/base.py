"""The data set object that every loader returns (numpy only; no torch, no Qt)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Fraction of a data set held out for evaluation, and the seed of that split.
HELD_OUT_FRACTION = 0.1
SPLIT_SEED = 1234


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about its data, small enough to send to the window as JSON.

    Attributes
    ----------
    spec : str
        The data spec that made the data set, e.g. ``"shapes:32"`` or ``"idx:/data/t10k-images.gz"``.
    kind : {"image", "points"}
        Images (C, H, W) in [0, 1], or 2-D points (2,) in data units.
    shape : tuple of int
        Shape of one example: (C, H, W) for images, (2,) for points.
    size : int
        Number of examples in the whole data set (train + held out).
    n_train, n_test : int
        Sizes of the training split and the held-out split.
    class_names : tuple of str or None
        Names of the label classes where the data has labels.
    factor_names : tuple of str or None
        Names of ground-truth factors of variation where they are known (e.g. ``shapes``).
    factor_sizes : tuple of int or None
        Number of distinct values of each factor.
    modes : tuple of tuple of float or None
        Mode centres (M, 2) of a known 2-D mixture (``ring``, ``grid``).
    mode_std : float or None
        Standard deviation of each mixture component.
    """

    spec: str
    kind: str
    shape: tuple[int, ...]
    size: int
    n_train: int
    n_test: int
    class_names: tuple[str, ...] | None = None
    factor_names: tuple[str, ...] | None = None
    factor_sizes: tuple[int, ...] | None = None
    modes: tuple[tuple[float, float], ...] | None = None
    mode_std: float | None = None

    @property
    def channels(self) -> int:
        """Channels of an image example (1 or 3); 0 for points."""
        return self.shape[0] if self.kind == "image" else 0

    @property
    def image_size(self) -> int:
        """Side of a square image example in pixels; 0 for points."""
        return self.shape[-1] if self.kind == "image" else 0

    def to_json(self) -> dict:
        """A JSON-able dict (tuples become lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_json(cls, d: dict) -> DataInfo:
        """Inverse of :meth:`to_json`."""
        d = dict(d)
        for k in ("shape", "class_names", "factor_names", "factor_sizes"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        if d.get("modes") is not None:
            d["modes"] = tuple(tuple(m) for m in d["modes"])
        return cls(**d)


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
