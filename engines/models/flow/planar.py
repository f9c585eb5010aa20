"""The planar flow fitted as a density model (Rezende & Mohamed 2015, "Variational Inference with
Normalizing Flows", section 4.1 and appendix A).

A planar layer moves every point along one direction u by an amount that depends on its position
along another direction w:

    f(x) = x + u_hat h(w.x + b),   h = tanh,
    log |det df/dx| = log |1 + u_hat.psi(x)|,   psi(x) = h'(w.x + b) w,

(the matrix determinant lemma: the Jacobian is I + u_hat psi^T). Here the layers are used in the
normalising direction, z = f_K(... f_1(x)), log p(x) = log N(z; 0, I) + sum_k log |det df_k|, and
trained by maximum likelihood; the paper uses them the other way round, as a posterior. Each layer is
invertible when w.u_hat >= -1 (appendix A); that holds by the paper's reparameterisation of a free
vector u:

    u_hat = u + (m(w.u) - w.u) w / ||w||^2,   m(a) = -1 + softplus(a),

so w.u_hat = m(w.u) > -1 and 1 + u_hat.psi = 1 + (w.u_hat) h'(.) > 0 (h' in (0, 1]).

The inverse has no closed form. Given y = f(x), alpha = w.x solves the scalar equation
w.y = alpha + (w.u_hat) tanh(alpha + b), whose left-hand side is strictly increasing in alpha and
whose root lies in [w.y - |w.u_hat|, w.y + |w.u_hat|]; :func:`solve_planar` finds it by Newton's
method safeguarded by bisection, in float64, and then x = y - u_hat tanh(alpha + b).

Points (D = 2) are modelled as they are; on images the layers act on the flattened D = C*H*W values
(after :class:`~engines.models.flow.base.FlowEngine`'s dequantisation and logit) and the result is
reshaped back. A planar flow of a few layers is a weak model of images (each layer changes the
density along a single direction); it runs there, but is meant for the 2-D data sets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from engines.models.base import EngineConfig
from engines.models.flow.base import FlowEngine
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError

#: Standard deviation of the initial w and u, times 1 / sqrt(D).
INIT_STD = 0.5
#: Tolerance on alpha (and on the residual) of the numerical inverse, float64.
SOLVE_TOL = 1e-10
#: Most Newton / bisection iterations of the numerical inverse.
SOLVE_ITERATIONS = 200


def constrained_u(w: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """u_hat with w.u_hat = -1 + softplus(w.u) > -1 (Rezende & Mohamed 2015, appendix A).

    Parameters
    ----------
    w, u : (..., D) tensors

    Returns
    -------
    (..., D) tensor
        u_hat = u + (m(w.u) - w.u) w / ||w||^2, m(a) = -1 + softplus(a).
    """
    wu = (w * u).sum(-1, keepdim=True)
    m = -1.0 + F.softplus(wu)
    return u + (m - wu) * w / (w.pow(2).sum(-1, keepdim=True) + 1e-12)


def solve_planar(beta: torch.Tensor, c: torch.Tensor, b: torch.Tensor,
                 tol: float = SOLVE_TOL, iterations: int = SOLVE_ITERATIONS) -> torch.Tensor:
    """The root alpha of alpha + c tanh(alpha + b) = beta, elementwise, for c > -1.

    The left-hand side is strictly increasing (its derivative is 1 + c (1 - tanh^2) > 0) and the
    root lies in [beta - |c|, beta + |c|]; Newton steps are taken where they stay inside the
    current bracket, bisection steps elsewhere.

    Parameters
    ----------
    beta : (N,) tensor
        w.y, the target.
    c : 0-d tensor or (N,)
        w.u_hat, > -1.
    b : 0-d tensor or (N,)
        The layer's bias.
    tol : float
        Stop when the bracket is narrower than ``tol`` or every residual is below it.
    iterations : int
        Most iterations.

    Returns
    -------
    (N,) tensor, the dtype of ``beta`` (call it in float64 for a 1e-10 root).
    """
    c = torch.as_tensor(c, dtype=beta.dtype, device=beta.device)
    b = torch.as_tensor(b, dtype=beta.dtype, device=beta.device)
    lo, hi = beta - c.abs(), beta + c.abs()
    alpha = beta - c * torch.tanh(beta + b)  # a good start where |c| is small
    alpha = torch.minimum(torch.maximum(alpha, lo), hi)
    for _ in range(iterations):
        t = torch.tanh(alpha + b)
        g = alpha + c * t - beta
        if bool((g.abs() < tol).all()) or bool(((hi - lo) < tol).all()):
            break
        hi = torch.where(g > 0, alpha, hi)
        lo = torch.where(g > 0, lo, alpha)
        newton = alpha - g / (1.0 + c * (1.0 - t * t))
        inside = (newton > lo) & (newton < hi)
        alpha = torch.where(inside, newton, 0.5 * (lo + hi))
    return alpha


@dataclass
class PlanarConfig(EngineConfig):
    """Settings of :class:`PlanarFlow`.

    Attributes
    ----------
    lr : float
        Adam learning rate, live-tunable in [1e-6, 0.1].
    depth : int
        Number K of planar layers.
    """

    lr: float = 5e-3
    depth: int = 16


def _check(config: PlanarConfig) -> None:
    if config.depth < 1:
        raise ConfigError(f"Planar flow: depth (planar layers) must be at least 1, not {config.depth}")
    if not (isinstance(config.lr, (int, float)) and math.isfinite(config.lr) and config.lr > 0):
        raise ConfigError(f"Planar flow: lr must be a positive number, not {config.lr!r}")


class PlanarFlow(FlowEngine):
    """A stack of planar layers as a density model (Rezende & Mohamed 2015), on the flattened data.

    Parameters
    ----------
    config : PlanarConfig
    data : DataInfo
        2-D points, or images (C, H, W) in [0, 1] (flattened to D = C*H*W; a weak model there).

    Attributes
    ----------
    w, u : (K, D) parameters
        The layers' directions; u is the free vector behind u_hat (:func:`constrained_u`).
    b : (K,) parameter
        The layers' biases.

    Raises
    ------
    ConfigError
        ``depth`` below 1, a non-positive ``lr``, or an unknown data kind.
    """

    family = "flow"
    config_class = PlanarConfig

    def __init__(self, config: PlanarConfig, data: DataInfo) -> None:
        _check(config)
        super().__init__(config, data)
        k, d = config.depth, self.n_dims
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            std = INIT_STD / math.sqrt(d)
            self.w = nn.Parameter(torch.randn(k, d) * std)
            self.u = nn.Parameter(torch.randn(k, d) * std)
            self.b = nn.Parameter(torch.zeros(k))
        self.finish_init()

    def u_hat(self) -> torch.Tensor:
        """(K, D) the constrained u_hat of every layer (w.u_hat > -1)."""
        return constrained_u(self.w, self.u)

    def flow_forward(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """s (N, C, H, W) or (N, 2) -> z of the same shape, and log |det dz/ds| (N,) nats."""
        x = s.flatten(1)
        u_hat = self.u_hat()
        c = (self.w * u_hat).sum(-1)  # (K,) w.u_hat > -1
        logdet = x.new_zeros(x.shape[0])
        for k in range(self.w.shape[0]):
            h = torch.tanh(x @ self.w[k] + self.b[k])  # (N,)
            x = x + h[:, None] * u_hat[k]
            logdet = logdet + torch.log1p((1.0 - h * h) * c[k])  # 1 + u_hat.psi, > 0
        return x.reshape(s.shape), logdet

    def flow_inverse(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, C, H, W) or (N, 2) -> s of the same shape, solved layer by layer in float64."""
        y = z.flatten(1).double()
        w, b = self.w.detach().double(), self.b.detach().double()
        u_hat = constrained_u(w, self.u.detach().double())
        c = (w * u_hat).sum(-1)
        for k in reversed(range(w.shape[0])):
            alpha = solve_planar(y @ w[k], c[k], b[k])
            y = y - torch.tanh(alpha + b[k])[:, None] * u_hat[k]
        return y.to(z.dtype).reshape(z.shape)
