"""How much each binary hidden unit changes the decoded image: the Explore panel's order for binary latents.

For a model whose latent is binary units (an RBM, a GRBM, a DBN's top layer, a Helmholtz machine's top layer)
there is no KL per dimension to sort the toggles by. Instead, for reference hidden states h (the encodings of
a few fixed images, thresholded at 1/2), each unit j is set to 1 and to 0 with the others kept, both states
are decoded by p(v | h) (pixel means), and the summed absolute difference of the two images is averaged over
the references: the number of pixels, in expectation, that flipping unit j turns from black to white. A
unit whose weights have died changes nothing (about 0); a unit that draws a stroke changes that stroke's
pixels.

:class:`UnitEffectProbe` is what the trainer holds: a fixed seeded batch of images, measured when due (every
:data:`EVERY` seconds, or :data:`COST_FACTOR` times its own last cost if longer), never raising.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

#: Reference images (and so hidden states) per measurement.
REFERENCE_IMAGES = 8
#: Decoded images per batch (2 per unit per reference state).
CHUNK_ROWS = 2048
#: Seconds between live measurements, and the bound on their cost (at most 1/COST_FACTOR of training time).
EVERY = 5.0
COST_FACTOR = 20.0


@torch.no_grad()
def unit_effect(engine: Any, z_ref: np.ndarray | torch.Tensor, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    """Mean change of the decoded image when each binary unit is flipped, in pixels.

    For every unit j and reference state i, z_ref[i] with z_j = 1 and with z_j = 0 (every other unit as in
    z_ref[i]) are decoded; the effect of j is the mean over i of sum_pixels |decode(on) - decode(off)|.
    The 2 * D * n decodes go in batches of at most ``chunk_rows`` states, under ``torch.no_grad`` in eval
    mode (the engine's mode is restored).

    Parameters
    ----------
    engine : Engine
        Its ``decode`` maps z (N, D) to pixel means (N, C, H, W) in [0, 1].
    z_ref : (n, D) float array or tensor, values in {0, 1}
        Reference hidden states, e.g. :func:`reference_states` of a few images.
    chunk_rows : int
        Most states decoded at once.

    Returns
    -------
    (D,) float32 ndarray, >= 0
        Per unit, the summed absolute change of the image, pixels (a pixel going from 0 to 1 counts 1),
        averaged over the n reference states.

    Raises
    ------
    ValueError
        ``z_ref`` is not (n, D) with n >= 1 and D = ``engine.latent.dim``.
    """
    z = torch.as_tensor(np.asarray(z_ref, np.float32) if not isinstance(z_ref, torch.Tensor) else z_ref)
    z = z.to(device=engine.device, dtype=torch.float32)
    D = int(engine.latent.dim)
    if z.ndim != 2 or z.shape[0] < 1 or z.shape[1] != D:
        raise ValueError(f"z_ref must be (n, {D}) with n >= 1, not {tuple(z.shape)}")
    n = z.shape[0]
    per_chunk = max(1, int(chunk_rows) // (2 * n))  # units per batch
    effect = torch.zeros(D, dtype=torch.float64)
    was_training = engine.training
    engine.eval()
    try:
        for start in range(0, D, per_chunk):
            units = torch.arange(start, min(D, start + per_chunk), device=z.device)
            k = len(units)
            states = z.unsqueeze(0).unsqueeze(0).repeat(k, 2, 1, 1)  # (k, 2, n, D): [unit, on/off, reference]
            rows = torch.arange(k, device=z.device)
            states[rows, 0, :, units] = 1.0
            states[rows, 1, :, units] = 0.0
            images = engine.decode(states.reshape(k * 2 * n, D)).reshape(k, 2, n, -1).double()
            effect[start:start + k] = (images[:, 0] - images[:, 1]).abs().sum(-1).mean(-1).cpu()
    finally:
        engine.train(was_training)
    return effect.numpy().astype(np.float32)


@torch.no_grad()
def reference_states(engine: Any, x: torch.Tensor) -> np.ndarray:
    """Binary hidden states of images: ``encode(x) > 0.5`` as float, (n, D) float32 in {0, 1}, for x (n, C, H, W).

    Encoded in eval mode (the engine's mode is restored).
    """
    was_training = engine.training
    engine.eval()
    try:
        p = engine.encode(x.to(engine.device))
    finally:
        engine.train(was_training)
    return (p > 0.5).float().cpu().numpy()


def measures_units(engine: Any) -> bool:
    """Whether :func:`unit_effect` applies: the latent is binary units only and the model declares an encoder."""
    return tuple(engine.latent.kinds) == ("binary",) and bool(engine.capabilities.has_encoder)


class UnitEffectProbe:
    """A fixed seeded batch of images whose hidden states give :func:`unit_effect` while training.

    Parameters
    ----------
    x : tensor (n, C, H, W)
        The reference images, on the engine's device.

    Attributes
    ----------
    seconds : float
        Wall time of the latest measurement (the next is spaced by :data:`COST_FACTOR` times it).
    error : str
        The latest failure ("" if none); a failed measurement is skipped.
    """

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x
        self.seconds = 0.0
        self.error = ""
        self._last = -math.inf  # the first measurement at the first flush

    @classmethod
    def create(cls, engine: Any, dataset: Any, n: int = REFERENCE_IMAGES, seed: int = 0) -> UnitEffectProbe | None:
        """The probe for ``engine`` (None unless :func:`measures_units` and there is data): ``n`` images drawn
        with ``seed`` from the held-out split, or from the training split where there is none. Never raises:
        a data set that cannot give them (or a failure reading them) gives None, and training goes on unordered."""
        try:
            if dataset is None or not measures_units(engine):
                return None
            pool = np.asarray(dataset.test_indices if len(dataset.test_indices) else dataset.train_indices, np.int64)
            if not len(pool):
                return None
            idx = np.sort(np.random.default_rng(seed).choice(pool, size=min(n, len(pool)), replace=False))
            return cls(torch.as_tensor(np.asarray(dataset.get(idx), np.float32), device=engine.device))
        except Exception:  # noqa: BLE001 - no ordering by effect; training must not stop for it
            return None

    def due(self, now: float) -> bool:
        """Whether a measurement is due at ``now`` (``time.monotonic()`` seconds)."""
        return now - self._last >= max(EVERY, COST_FACTOR * self.seconds)

    def measure(self, engine: Any) -> np.ndarray:
        """:func:`unit_effect` of the reference images' hidden states now: (D,) float32, pixels."""
        t0 = time.perf_counter()
        try:
            return unit_effect(engine, reference_states(engine, self.x))
        finally:
            self.seconds = time.perf_counter() - t0

    def poll(self, engine: Any, now: float, force: bool = False) -> np.ndarray | None:
        """:meth:`measure` if due (or ``force``), else None; a failure is kept in :attr:`error` and skipped."""
        if not (force or self.due(now)):
            return None
        self._last = now
        try:
            effect = self.measure(engine)
        except Exception as exc:  # noqa: BLE001 - the ordering waits for the next one, training goes on
            self.error = f"{type(exc).__name__}: {exc}"
            return None
        return effect if np.isfinite(effect).all() else None
