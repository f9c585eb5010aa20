"""Static binarisation of grey-level images, for the Bernoulli models (``binarized:SPEC``).

Salakhutdinov & Murray 2008 binarised MNIST once, stochastically, and every later figure on
"binarised MNIST" depends on which binarisation it used. Ours is fixed and stated: pixel j of example
i is 1 exactly when ``U_ij < x_ij``, with ``U_i = numpy.random.default_rng([seed, i]).random(shape)``
(float64 draws, one generator per example index, :data:`BINARIZE_SEED` = 0). Example i is therefore the
same binary image in the window, the CLI and the worker, whatever order or batch it is read in, and for
lazy data sets (``shapes``) as for arrays. The held-out split is the underlying data set's.

Spec: ``binarized:`` followed by any image spec (``binarized:digits``, ``binarized:idx:/data/t10k.gz``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from engines.data.base import Dataset
from engines.shared.datainfo import BINARIZED_PREFIX, split_binarized  # noqa: F401 - the spec's prefix, re-exported
from engines.shared.errors import DataError

#: The seed of every static binarisation (recorded in ``DataInfo.binarized``).
BINARIZE_SEED = 0
def binarize_examples(x: np.ndarray, indices: np.ndarray, seed: int = BINARIZE_SEED) -> np.ndarray:
    """The static binarisation of examples ``x`` (B, C, H, W) in [0, 1] with data-set indices (B,).

    Returns
    -------
    (B, C, H, W) float32 of exactly 0 and 1 (module docstring for the draw).
    """
    out = np.empty(x.shape, np.float32)
    for row, i in enumerate(np.asarray(indices, dtype=np.int64)):
        u = np.random.default_rng([seed, int(i)]).random(x.shape[1:])
        out[row] = u < x[row]
    return out


class BinarizedDataset(Dataset):
    """A lazy data set's examples binarised as they are read (arrays are binarised once, by :func:`binarized`)."""

    def __init__(self, inner: Dataset, seed: int) -> None:
        super().__init__(info=inner.info, y=inner.y, factors=inner.factors,
                         train_indices=inner.train_indices, test_indices=inner.test_indices)
        self.inner, self.seed = inner, seed

    def get(self, indices: np.ndarray) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64)
        return binarize_examples(self.inner.get(idx), idx, self.seed)

    def labels(self, indices: np.ndarray) -> np.ndarray | None:
        return self.inner.labels(indices)

    def factor_values(self, indices: np.ndarray) -> np.ndarray | None:
        return self.inner.factor_values(indices)


def binarized(dataset: Dataset, spec: str, seed: int = BINARIZE_SEED) -> Dataset:
    """``dataset`` statically binarised, its info's spec set to ``spec`` and ``binarized`` to ``seed``.

    Raises
    ------
    DataError
        For 2-D points (only images can be binarised).
    """
    if dataset.info.kind != "image":
        raise DataError(f"data spec {spec!r}: only images can be binarised, {dataset.info.spec} holds 2-D points")
    info = replace(dataset.info, spec=spec, binarized=seed)
    if dataset.x is None:
        out = BinarizedDataset(dataset, seed)
        out.info = info
        return out
    x = binarize_examples(dataset.x, np.arange(len(dataset.x)), seed)
    return replace(dataset, info=info, x=x)
