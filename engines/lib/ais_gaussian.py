"""The partition function of a Gaussian-Bernoulli RBM: exactly by enumerating the hidden states, or by annealed
importance sampling.

The parameterisation is Cho, Ilin & Raiko (2011, "Improved learning of Gaussian-Bernoulli restricted Boltzmann
machines"): real visible units v (V,), binary hidden units h (H,), weights W (V, H), visible biases b (V,),
hidden biases c (H,) and visible variances sigma^2 = exp(log_var) (V,), with the energy

    E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - c.h - sum_ij v_i W_ij h_j / sigma_i^2,

so that p(h_j = 1 | v) = sigmoid(c_j + sum_i W_ij v_i / sigma_i^2) and p(v | h) = N(b + W h, diag sigma^2). The
hidden units sum out of exp(-E) in closed form, leaving the free energy

    F(v) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - sum_j softplus(c_j + sum_i W_ij v_i / sigma_i^2),

and log p(v) = -F(v) - log Z is a log-density of v in nats. For a fixed h the visible units integrate out
instead (a Gaussian integral, completing the square around the mean mu = b + W h):

    log int exp(-E(v, h)) dv = c.h + sum_i [(mu_i^2 - b_i^2) / (2 sigma_i^2) + log(2 pi sigma_i^2) / 2],

so :func:`exact_log_z_gaussian` sums 2^H terms, for H up to :data:`~engines.lib.ais.MAX_EXACT_HIDDEN`.

:func:`ais_log_z_gaussian` estimates log Z by annealed importance sampling (Neal 2001), adapting Salakhutdinov &
Murray's (2008) scheme for binary RBMs: the base model has no weights (W = 0), visible means ``base_mean``
(the data's mean), the model's variances and free hidden units, so that

    log Z_0 = sum_i log(2 pi sigma_i^2) / 2 + H log 2;

the intermediate energies are E_beta = (1 - beta) E_0 + beta E for beta from 0 to 1 -- the weights and hidden
biases scaled by beta, the visible means moving linearly from ``base_mean`` to b -- with one Gibbs sweep at each
beta (h | v, then v | h ~ N((1 - beta) base_mean + beta (b + W h), sigma^2), both exact for p_beta). The
estimate is unbiased in Z, so log Z comes out slightly low on average; its standard error is the delta method's.

Pure functions of tensors; torch only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from engines.lib.ais import MAX_EXACT_HIDDEN, default_betas

_LOG_2PI = math.log(2 * math.pi)


def free_energy_gaussian(v: torch.Tensor, W: torch.Tensor, b: torch.Tensor, c: torch.Tensor,
                         log_var: torch.Tensor) -> torch.Tensor:
    """F(v) of each row of v (N, V), real-valued: (N,) nats (module docstring).

    Parameters
    ----------
    v : (N, V) Tensor
    W : (V, H) Tensor
    b : (V,) Tensor
    c : (H,) Tensor
    log_var : (V,) Tensor
        log sigma^2 of the visible units.
    """
    inv_var = torch.exp(-log_var)
    return 0.5 * ((v - b) ** 2 * inv_var).sum(1) - F.softplus((v * inv_var) @ W + c).sum(1)


def exact_log_z_gaussian(W: torch.Tensor, b: torch.Tensor, c: torch.Tensor, log_var: torch.Tensor,
                         chunk: int = 1 << 12) -> float:
    """log Z of the Gaussian-Bernoulli RBM by summing over all 2^H hidden states with v integrated out
    analytically (module docstring), in float64.

    Parameters
    ----------
    W, b, c, log_var : Tensor
        (V, H) weights, (V,) visible biases, (H,) hidden biases, (V,) log sigma^2.
    chunk : int
        Hidden states per batch (memory: chunk x V doubles).

    Returns
    -------
    float
        log Z, nats (of the density of v: it can be of either sign).

    Raises
    ------
    ValueError
        More than :data:`~engines.lib.ais.MAX_EXACT_HIDDEN` hidden units.
    """
    H = W.shape[1]
    if H > MAX_EXACT_HIDDEN:
        raise ValueError(f"exact log Z sums 2^H hidden states: H = {H} is more than {MAX_EXACT_HIDDEN}")
    W, b, c, log_var = W.double(), b.double(), c.double(), log_var.double()
    inv_var = torch.exp(-log_var)
    bits = 2 ** torch.arange(H, device=W.device)
    parts = []
    for start in range(0, 2 ** H, chunk):
        codes = torch.arange(start, min(start + chunk, 2 ** H), device=W.device)
        h = ((codes[:, None] & bits) > 0).double()  # (K, H)
        wh = h @ W.T  # (K, V): the visible means' shift
        parts.append(h @ c + (0.5 * wh * (2 * b + wh) * inv_var).sum(1))  # (mu^2 - b^2) / (2 sigma^2), mu = b + Wh
    return float(torch.logsumexp(torch.cat(parts), 0) + 0.5 * (_LOG_2PI + log_var).sum())


def ais_log_z_gaussian(W: torch.Tensor, b: torch.Tensor, c: torch.Tensor, log_var: torch.Tensor,
                       base_mean: torch.Tensor | None = None, runs: int = 100, betas: torch.Tensor | None = None,
                       generator: torch.Generator | None = None, progress=None,  # noqa: ANN001
                       cancel=None) -> tuple[float, float]:  # noqa: ANN001
    """Estimate log Z of a Gaussian-Bernoulli RBM by annealed importance sampling (module docstring).

    Parameters
    ----------
    W, b, c, log_var : Tensor
        (V, H) weights, (V,) visible biases, (H,) hidden biases, (V,) log sigma^2.
    base_mean : (V,) Tensor or None
        Visible means of the base model (no weights, the model's variances); the data's mean makes it a good
        start; zeros (the mean of standardised data) when None.
    runs : int
        Independent AIS runs M.
    betas : (K + 1,) Tensor or None
        Inverse temperatures from 0 to 1; :func:`~engines.lib.ais.default_betas` when None.
    generator : torch.Generator or None
        On W's device.
    progress : callable or None
        ``progress(done, total)`` every 100 temperatures and after the last.
    cancel : threading.Event or None
        Checked every 100 temperatures; when set, ``(nan, nan)`` comes back at once.

    Returns
    -------
    log_z : float
        log of the mean importance weight times Z_0, nats.
    stderr : float
        Its standard error, nats (delta method: std / (sqrt(M) mean) of the weights).
    """
    device = W.device
    W, b, c, log_var = W.double(), b.double(), c.double(), log_var.double()
    a = torch.zeros_like(b) if base_mean is None else base_mean.to(device).double()
    betas = default_betas(device=device) if betas is None else betas.to(device).double()
    inv_var, std = torch.exp(-log_var), torch.exp(0.5 * log_var)
    gen = generator

    def log_p(v: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:  # log p*_beta(v), the hidden units summed out
        quad = (1 - beta) * (v - a) ** 2 + beta * (v - b) ** 2
        return -0.5 * (quad * inv_var).sum(1) + F.softplus(beta * ((v * inv_var) @ W + c)).sum(1)

    def normal(mean: torch.Tensor) -> torch.Tensor:
        return mean + std * torch.randn(mean.shape, generator=gen, device=device, dtype=mean.dtype)

    v = normal(a.expand(runs, -1))  # exact samples of the base model
    log_w = torch.zeros(runs, dtype=torch.float64, device=device)
    total = len(betas) - 1
    for k in range(1, len(betas)):
        beta = betas[k]
        log_w += log_p(v, beta) - log_p(v, betas[k - 1])
        p = torch.sigmoid(beta * ((v * inv_var) @ W + c))  # one Gibbs sweep leaving p_beta invariant
        h = (torch.rand(p.shape, generator=gen, device=device, dtype=p.dtype) < p).double()
        v = normal((1 - beta) * a + beta * (b + h @ W.T))
        if k % 100 == 0 or k == total:
            if cancel is not None and cancel.is_set():
                return float("nan"), float("nan")
            if progress is not None:
                progress(k, total)
    log_z_base = 0.5 * float((_LOG_2PI + log_var).sum()) + W.shape[1] * math.log(2.0)
    m = torch.logsumexp(log_w, 0) - math.log(runs)
    r = torch.exp(log_w - log_w.max())
    stderr = float(r.std() / (math.sqrt(runs) * r.mean())) if runs > 1 else float("inf")
    return log_z_base + float(m), stderr
