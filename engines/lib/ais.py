"""The partition function of a Bernoulli-Bernoulli RBM: exactly by enumeration, or by annealed importance sampling.

An RBM with visible biases b (V,), hidden biases c (H,) and weights W (V, H) has the free energy

    F(v) = -b.v - sum_j softplus(c_j + v.W[:, j]),        p(v) = exp(-F(v)) / Z,

so log p(v) = -F(v) - log Z, in nats. :func:`exact_log_z` sums over the 2^H hidden states (the visible units
summed out in closed form), for H up to :data:`MAX_EXACT_HIDDEN`. :func:`ais_log_z` estimates log Z by
annealed importance sampling (Neal 2001), as Salakhutdinov & Murray (2008, "On the quantitative analysis of
deep belief networks") do for RBMs: from a base model with visible biases ``base_bias`` and free hidden units
(log Z = sum softplus(base_bias) + H log 2), through intermediate RBMs whose energies are
``(1 - beta) E_base + beta E`` for beta from 0
to 1, one Gibbs sweep at each, averaging the importance weights of M independent runs. The estimate is
unbiased in Z, so log Z is slightly underestimated on average; its standard error is that of the log of the
mean weight (delta method).

Pure functions of tensors; torch only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: Largest hidden layer whose log Z is summed exactly (2^20 states, a few seconds on a CPU).
MAX_EXACT_HIDDEN = 20


def free_energy(v: torch.Tensor, W: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """F(v) of each row of v (N, V) in [0, 1]: (N,) nats."""
    return -(v @ b) - F.softplus(v @ W + c).sum(1)


def exact_log_z(W: torch.Tensor, b: torch.Tensor, c: torch.Tensor, chunk: int = 1 << 14) -> float:
    """log Z of the RBM (W (V, H), b (V,), c (H,)) by summing over all 2^H hidden states, in float64.

    Raises
    ------
    ValueError
        More than :data:`MAX_EXACT_HIDDEN` hidden units.
    """
    H = W.shape[1]
    if H > MAX_EXACT_HIDDEN:
        raise ValueError(f"exact log Z sums 2^H hidden states: H = {H} is more than {MAX_EXACT_HIDDEN}")
    W, b, c = W.double(), b.double(), c.double()
    bits = 2 ** torch.arange(H, device=W.device)
    parts = []
    for start in range(0, 2 ** H, chunk):
        codes = torch.arange(start, min(start + chunk, 2 ** H), device=W.device)
        h = ((codes[:, None] & bits) > 0).double()  # (K, H)
        parts.append(h @ c + F.softplus(h @ W.T + b).sum(1))  # log sum over v of exp(-E(v, h))
    return float(torch.logsumexp(torch.cat(parts), 0))


def default_betas(n: int = 1000, device: torch.device | str = "cpu") -> torch.Tensor:
    """n + 1 inverse temperatures from 0 to 1, denser near 1 (Salakhutdinov & Murray's schedule, scaled: a
    tenth of the steps to 0.5, a third to 0.9, the rest to 1)."""
    a, b_ = max(1, n // 10), max(1, n // 3)
    return torch.cat([torch.linspace(0, 0.5, a + 1, device=device)[:-1],
                      torch.linspace(0.5, 0.9, b_ + 1, device=device)[:-1],
                      torch.linspace(0.9, 1.0, n - a - b_ + 1, device=device)]).double()


def ais_log_z(W: torch.Tensor, b: torch.Tensor, c: torch.Tensor, base_bias: torch.Tensor | None = None,
              runs: int = 100, betas: torch.Tensor | None = None, generator: torch.Generator | None = None,
              progress=None, cancel=None) -> tuple[float, float]:  # noqa: ANN001
    """Estimate log Z of an RBM by annealed importance sampling (Salakhutdinov & Murray 2008).

    Parameters
    ----------
    W, b, c : Tensor
        (V, H) weights, (V,) visible and (H,) hidden biases.
    base_bias : (V,) Tensor or None
        Visible biases of the base model (no hidden units); the data's log-odds make it a good start
        (S&M's "base-rate" model); zeros (a uniform base) when None.
    runs : int
        Independent AIS runs M.
    betas : (K + 1,) Tensor or None
        Inverse temperatures from 0 to 1; :func:`default_betas` when None.
    progress : callable or None
        ``progress(done, total)`` now and then.
    cancel : threading.Event or None
        Checked now and then; when set, ``(nan, nan)`` comes back at once.

    Returns
    -------
    log_z : float
        log of the mean importance weight times Z_base, nats.
    stderr : float
        Its standard error, nats (delta method: std / (sqrt(M) mean) of the weights).
    """
    device = W.device
    W, b, c = W.double(), b.double(), c.double()
    a = torch.zeros_like(b) if base_bias is None else base_bias.to(device).double()
    betas = default_betas(device=device) if betas is None else betas.to(device).double()
    gen = generator

    def log_p(v: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:  # log p*_beta(v), the hidden units summed out
        return (1 - beta) * (v @ a) + beta * (v @ b) + F.softplus(beta * (v @ W + c)).sum(1)

    def bern(p: torch.Tensor) -> torch.Tensor:
        return (torch.rand(p.shape, generator=gen, device=device, dtype=p.dtype) < p).double()

    v = bern(torch.sigmoid(a).expand(runs, -1))  # exact samples of the base model
    log_w = torch.zeros(runs, dtype=torch.float64, device=device)
    total = len(betas) - 1
    for k in range(1, len(betas)):
        log_w += log_p(v, betas[k]) - log_p(v, betas[k - 1])
        h = bern(torch.sigmoid(betas[k] * (v @ W + c)))  # one Gibbs sweep leaving p_beta_k invariant
        v = bern(torch.sigmoid((1 - betas[k]) * a + betas[k] * (h @ W.T + b)))
        if k % 100 == 0:
            if cancel is not None and cancel.is_set():
                return float("nan"), float("nan")
            if progress is not None:
                progress(k, total)
    log_z_base = float(F.softplus(a).sum()) + W.shape[1] * math.log(2.0)  # beta = 0: the H hidden units are free
    m = torch.logsumexp(log_w, 0) - math.log(runs)
    r = torch.exp(log_w - log_w.max())
    stderr = float(r.std() / (math.sqrt(runs) * r.mean())) if runs > 1 else float("inf")
    return log_z_base + float(m), stderr
