"""The Explore panel's Qt-free part: which latent dimensions carry information, and their order."""

from __future__ import annotations

import numpy as np

#: KL (nats) below which a latent dimension counts as collapsed: the decoder ignores it.
COLLAPSED_KL = 0.05


def kl_order(latent_kl: np.ndarray | None, dim: int, threshold: float = COLLAPSED_KL) -> tuple[np.ndarray, np.ndarray]:
    """Order latent dimensions by information, most informative first.

    Parameters
    ----------
    latent_kl : (D,) float array or None
        KL per dimension in nats; None (no measurement yet) keeps the natural order.
    dim : int
        D, the width of z.
    threshold : float
        KL in nats below which a dimension counts as collapsed.

    Returns
    -------
    order : (D,) int64
        Dimension indices by decreasing KL (ties keep their natural order).
    collapsed : (D,) bool
        Per dimension (in natural order), whether its KL is below ``threshold``.
    """
    if latent_kl is None or len(latent_kl) != dim:
        return np.arange(dim, dtype=np.int64), np.zeros(dim, bool)
    kl = np.nan_to_num(np.asarray(latent_kl, np.float64), nan=0.0)
    order = np.argsort(-kl, kind="stable").astype(np.int64)
    return order, kl < threshold
