"""The Codes tab's Qt-free part: whether it applies, a VQ-VAE's code grid (reading it off a one-hot z, editing one
position, swapping a region between two grids), what the codebook's usage says, and the gradient estimators'
variance over steps."""

from __future__ import annotations

import math

import numpy as np

#: Loss-term prefix of the categorical VAE's gradient-variance measurements, one term per estimator.
VARIANCE_PREFIX = "grad_var/"


def codes_reason(ready) -> str:  # noqa: ANN001 - a protocol.Ready or None
    """Why the tab is off ("" when it applies): a model with a codebook (vq-vae) or categorical latents."""
    if ready is None:
        return "Build or open a model with discrete codes (vq-vae, gumbel-vae) to look at its codes"
    if ready.capabilities.has("codebook") or "categorical" in ready.latent.kinds:
        return ""
    return ("This model has no discrete codes: the Codes tab is for a VQ-VAE's codebook and code grid, and for a "
            "categorical VAE's gradient estimators")


def code_grid_shape(latent) -> tuple[int, int] | None:  # noqa: ANN001 - a LatentSpec
    """(G, K) of a latent that is a square grid of G x G categorical variables of K classes each (a VQ-VAE's),
    from its groups; None for any other latent."""
    groups: dict[str, int] = {}
    for d in latent.dims:
        if d.kind != "categorical":
            return None
        groups[d.group] = groups.get(d.group, 0) + 1
    if not groups or len(set(groups.values())) != 1:
        return None
    side = int(round(math.sqrt(len(groups))))
    if side * side != len(groups):
        return None
    return side, next(iter(groups.values()))


def codes_of(z: np.ndarray, side: int, k: int) -> np.ndarray:
    """The code index at each position of a one-hot (or mixed) z (G G K,): (G, G) int64, the largest weight."""
    return np.asarray(z, np.float32).reshape(side, side, k).argmax(-1).astype(np.int64)


def one_hot(codes: np.ndarray, k: int) -> np.ndarray:
    """z (G G K,) float32 of a code grid (G, G) int in [0, K)."""
    codes = np.asarray(codes, np.int64)
    if codes.min() < 0 or codes.max() >= k:
        raise ValueError(f"codes must be in [0, {k}), not [{codes.min()}, {codes.max()}]")
    return np.eye(k, dtype=np.float32)[codes.reshape(-1)].reshape(-1)


def with_code(codes: np.ndarray, row: int, col: int, code: int) -> np.ndarray:
    """A copy of the grid (G, G) with position (row, col) set to ``code``."""
    out = np.array(codes, np.int64, copy=True)
    out[row, col] = int(code)
    return out


def swap_region(a: np.ndarray, b: np.ndarray, cells: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Copies of grids a and b (G, G) with the codes at ``cells`` [(row, col), ...] exchanged."""
    a2, b2 = np.array(a, copy=True), np.array(b, copy=True)
    for r, c in cells:
        a2[r, c], b2[r, c] = b[r, c], a[r, c]
    return a2, b2


def usage_text(usage: np.ndarray, dead: np.ndarray, perplexity: float, step: int, images: int = 0) -> str:
    """``"Perplexity 24.4 of 64 codes over 180 held-out images; 3 dead (not chosen): 5, 17, 40; at step 1,700"``."""
    k = len(usage)
    gone = np.flatnonzero(np.asarray(dead, bool))
    listed = ", ".join(str(int(i)) for i in gone[:12]) + (", ..." if len(gone) > 12 else "")
    dead_text = f"{len(gone)} dead (not chosen): {listed}" if len(gone) else "no dead codes"
    over = f" over {images:,} held-out images" if images else " (running average of training)"
    return f"Perplexity {perplexity:.1f} of {k} codes{over}; {dead_text}; at step {step:,}"


class VarianceHistory:
    """Each gradient estimator's measured variance over steps, from the ``grad_var/<estimator>`` loss terms."""

    def __init__(self) -> None:
        self.steps: dict[str, list[int]] = {}
        self.values: dict[str, list[float]] = {}

    def clear(self) -> None:
        """Forget every point (a new model)."""
        self.steps.clear()
        self.values.clear()

    def add(self, steps: np.ndarray, names: list, values: np.ndarray) -> bool:
        """Take the variance terms of one StepMetrics; whether any point was new."""
        new = False
        for j, name in enumerate(names):
            if not str(name).startswith(VARIANCE_PREFIX):
                continue
            est = str(name)[len(VARIANCE_PREFIX):]
            col = np.asarray(values)[:, j]
            ok = np.isfinite(col) & (col > 0)
            self.steps.setdefault(est, []).extend(int(s) for s in np.asarray(steps)[ok])
            self.values.setdefault(est, []).extend(float(v) for v in col[ok])
            new = new or bool(ok.any())
        return new

    def summary(self) -> str:
        """``"Latest gradient variance per logit: gumbel 0.11, st-gumbel 0.32, reinforce 47.7, nvil 14.1"``."""
        parts = [f"{est} {vals[-1]:.3g}" for est, vals in self.values.items() if vals]
        return "Latest gradient variance per logit: " + ", ".join(parts) if parts else ""
