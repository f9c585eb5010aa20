"""Latent maths in numpy for both processes (the window never imports torch).

The torch twins live in :mod:`engines.lib.latent`; tests check the two agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np

def prior_centre(latent: Any) -> np.ndarray:
    """The centre of the prior as a (1, D) float32 array: zeros, and class 0 of each categorical code.

    Parameters
    ----------
    latent : LatentSpec
        Dimensions of kind ``"categorical"`` sharing a ``group`` form one one-hot block.
    """
    z = np.zeros((1, latent.dim), np.float32)
    seen: set = set()
    for i, d in enumerate(latent.dims):
        if d.kind == "categorical" and d.group not in seen:
            seen.add(d.group)
            z[0, i] = 1.0
    return z
