"""Latent maths in numpy for both processes (the window never imports torch).

Which dimensions are which comes from :class:`~engines.shared.spec.LatentSpec` alone (``groups()``,
``continuous``, ``categorical``, ``indices(kind)``); nothing here re-derives it from the dims.

- :func:`prior_centre`: the point every control resets to (a valid z: one class per code, units off);
- :func:`prior_mean`: the prior's mean (1/k in a categorical block, 1/2 for a binary unit);
- :func:`prior_draw`: one draw from the prior;
- :func:`morph`: take chosen dimensions from another latent.

The torch twins live in :mod:`engines.lib.latent` (:func:`engines.lib.latent.morph`) and
:mod:`engines.lib.projection` (:func:`engines.lib.projection.prior_mean`, built from this one);
``tests/test_latent_twins.py`` checks the two agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from engines.shared.errors import ConfigError

if TYPE_CHECKING:
    from engines.shared.spec import LatentSpec


def _centre(latent: LatentSpec, n: int, soft: bool) -> np.ndarray:
    """(n, D) float32: 0 (clipped to the range) per Gaussian, the middle per uniform, then per code and unit.

    ``soft``: 1/k over each categorical block and 1/2 per binary unit (the mean); else class 0 of
    each block and 0 per binary unit (a valid z).
    """
    z = np.zeros((n, latent.dim), np.float32)
    for kind, _name, idx in latent.groups():
        d = latent.dims[idx[0]]
        if kind == "gaussian":
            z[:, idx] = np.clip(0.0, d.low, d.high)
        elif kind == "uniform":
            z[:, idx] = 0.5 * (d.low + d.high)
        elif kind == "categorical":
            if soft:
                z[:, idx] = 1.0 / len(idx)
            else:
                z[:, idx[0]] = 1.0
        elif kind == "binary" and soft:
            z[:, idx] = 0.5
    return z


def prior_centre(latent: LatentSpec) -> np.ndarray:
    """The centre of the prior as a (1, D) float32 array: where Reset puts z and traversals start.

    0 for a Gaussian dimension (clipped into its slider range), the middle of [low, high] for a
    uniform one, class 0 of each categorical code (a one-hot block) and 0 for each binary unit, so
    the result is a latent the decoder was trained on. An image-shaped z is all zeros; no latent
    gives (1, 0).

    Parameters
    ----------
    latent : LatentSpec
        The latent space, D = ``latent.dim``.
    """
    return _centre(latent, 1, soft=False)


def prior_mean(latent: LatentSpec, n: int = 1) -> np.ndarray:
    """(n, D) float32 prior mean: 0 (Gaussian), (low + high) / 2 (uniform), 1/k in a categorical block
    of k dimensions, 1/2 for a binary unit (a fair coin). Gaussian 0 is clipped into the slider range.

    Parameters
    ----------
    latent : LatentSpec
    n : int
        Rows (>= 0).
    """
    return _centre(latent, int(n), soft=True)


def prior_draw(latent: LatentSpec, rng: np.random.Generator) -> np.ndarray:
    """One (D,) float32 draw from the prior.

    Standard normal per Gaussian dimension (not clipped), uniform over [low, high] per uniform one,
    0 or 1 with probability 1/2 per binary unit, then a uniformly drawn class (one-hot) per
    categorical code. An image-shaped z is D standard normals; no latent gives (0,).

    Parameters
    ----------
    latent : LatentSpec
    rng : numpy.random.Generator
        The source of randomness: one scalar draw per dimension that is not categorical, in z's
        order, then one per categorical code.
    """
    z = np.zeros(latent.dim, np.float32)
    if latent.shape is not None:
        z[:] = rng.standard_normal(latent.dim)
        return z
    for kind, _name, (i, *_) in latent.groups():
        d = latent.dims[i]
        if kind == "uniform":
            z[i] = rng.uniform(d.low, d.high)
        elif kind == "binary":
            z[i] = float(rng.integers(2))
        elif kind != "categorical":
            z[i] = rng.standard_normal()
    for idx in latent.categorical.values():
        z[idx[int(rng.integers(len(idx)))]] = 1.0
    return z


def morph(z_a: np.ndarray, z_b: np.ndarray, strengths: np.ndarray | float) -> np.ndarray:
    """Take chosen dimensions from ``z_b``: ``z_a + s * (z_b - z_a)``, exact at s = 0 and s = 1.

    The arithmetic of ``torch.lerp`` (as :func:`engines.lib.latent.morph`): below s = 0.5 it adds to
    z_a, from 0.5 it subtracts from z_b, so both ends are exact.

    Parameters
    ----------
    z_a, z_b : (D,) or (N, D) float array
        The latent kept and the latent taken from.
    strengths : (D,) float array or float, in [0, 1]
        Per-dimension strength: a 0/1 mask swaps whole dimensions, values between blend. Give a
        categorical block one strength so it stays a valid mixture.

    Returns
    -------
    float32 array shaped like ``z_a``.

    Raises
    ------
    ConfigError
        (a ValueError) Shapes that differ, a strength count that is not D, or strengths outside [0, 1].
    """
    a, b = np.asarray(z_a, np.float32), np.asarray(z_b, np.float32)
    if a.shape != b.shape:
        raise ConfigError(f"morph: z_a {a.shape} and z_b {b.shape} differ in shape")
    s = np.asarray(strengths, np.float32)
    if s.ndim > 0 and s.shape[-1] != a.shape[-1]:
        raise ConfigError(f"morph: {s.shape[-1]} strengths for {a.shape[-1]} dimensions")
    if not bool(((s >= 0) & (s <= 1)).all()):
        raise ConfigError("morph: strengths must lie in [0, 1]")
    s = np.broadcast_to(s, a.shape)
    diff = b - a
    return np.where(s < 0.5, a + s * diff, b - diff * (np.float32(1.0) - s)).astype(np.float32)
