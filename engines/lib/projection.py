"""Real images into the latent space: the encoder where there is one, else optimising z through the decoder.

Zhu et al. 2016, "Generative visual manipulation on the natural image manifold"; Creswell &
Bharath 2018, "Inverting the generator of a generative adversarial network". Split from
:mod:`engines.lib.latent`, which holds the paths and morphs these latents feed.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from engines.lib.latent import to_simplex
from engines.shared import latent_np
from engines.shared.errors import ConfigError
from engines.shared.spec import LatentSpec

# -- real images in: projection ----------------------------------------------------------------
LOSSES = ("mse", "bce")
#: Most progress callbacks one projection makes.
MAX_CALLBACKS = 20


def differentiable_decode(engine: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``engine.decode`` with gradients to z: ``decode`` with its ``@torch.no_grad()`` decorators unwrapped."""
    raw = inspect.unwrap(type(engine).decode)
    return lambda z: raw(engine, z)


def prior_mean(spec: LatentSpec, n: int = 1, device: torch.device | str | None = None) -> torch.Tensor:
    """(n, D) float32 prior mean on ``device``: :func:`engines.shared.latent_np.prior_mean` as a tensor
    (0 for Gaussian, (low + high) / 2 for uniform, 1/k in a categorical block, 1/2 for a binary unit)."""
    return torch.from_numpy(latent_np.prior_mean(spec, n)).to(device)


def _pixel_loss(x_hat: torch.Tensor, x: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-example mean pixel loss (N,)."""
    dims = tuple(range(1, x.dim()))
    if loss == "mse":
        return (x_hat - x).pow(2).mean(dims)
    return F.binary_cross_entropy(x_hat.clamp(1e-6, 1 - 1e-6), x, reduction="none").mean(dims)


def _best_of_prior(
    engine: torch.nn.Module, decode: Callable, x: torch.Tensor, loss: str, restarts: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """(N, D): for each example of x, the prior draw (of ``restarts``) whose decoding is closest."""
    n, device = x.shape[0], x.device
    if generator is None:
        generator = torch.Generator(device=device).manual_seed(0)
    best_z, best = None, None
    for _ in range(restarts):
        z = engine.prior_sample(n, generator).to(device=device, dtype=torch.float32)
        per = _pixel_loss(decode(z), x, loss)
        if best_z is None:
            best_z, best = z, per
        else:
            better = per < best
            best_z = torch.where(better[:, None], z, best_z)
            best = torch.minimum(best, per)
    return best_z


def project(
    engine: torch.nn.Module,
    x: torch.Tensor,
    steps: int = 200,
    lr: float = 0.05,
    warm_start: bool = True,
    loss: str = "mse",
    callback: Callable[[int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    generator: torch.Generator | None = None,
    restarts: int = 16,
) -> tuple[torch.Tensor, list[float]]:
    """Latents whose decodings reconstruct x: optimise z with Adam on a pixel loss through decode.

    GAN inversion by optimisation (Zhu et al. 2016; Creswell & Bharath 2018). The start is the
    encoder's posterior mean where the engine has an encoder and ``warm_start``; else, for each
    example, the best (lowest loss) of ``restarts`` prior draws from ``generator`` (seed 0 when
    None, so projection is deterministic); else (``restarts=0``) the prior mean
    (:func:`prior_mean`) -- a poor start for ReLU generators, whose units can all be dead at
    z = 0, leaving no gradient. Gaussian and uniform dimensions (and binary units) are clamped to
    their slider range [low, high] (-3 to 3 for a standard Gaussian) after every step, which keeps z
    where the prior has mass (a GAN inverted without it drifts to |z| >> 3 on images it cannot make);
    categorical blocks are optimised as logits and decoded through a softmax, so they stay valid
    mixtures. The engine is put in eval mode and its parameters' ``requires_grad`` turned off
    for the run; both are restored afterwards, and its weights and buffers are not changed.

    Parameters
    ----------
    engine : Engine
        Any engine with a differentiable decode (see :func:`differentiable_decode`).
    x : Tensor, (N, C, H, W) in [0, 1], or (N, 2) points
        Targets.
    steps : int
        Adam steps (>= 0).
    lr : float
        Adam learning rate on z (and on the categorical logits).
    warm_start : bool
        Start from ``engine.encode(x)`` when that is not None.
    loss : {"mse", "bce"}
        Per-pixel mean squared error, or binary cross-entropy (images in [0, 1] only), averaged
        over pixels and then over examples.
    callback : callable (step, loss) or None
        Progress: called with the number of steps done (1..steps) and that step's mean loss, at
        most ``MAX_CALLBACKS`` times, always after the last step done.
    should_stop : callable () -> bool or None
        Polled before every step; True ends the projection early (the best z so far is returned).
    generator : torch.Generator or None
        Seeds the prior draws tried as starts where there is no warm start (None: seed 0).
    restarts : int
        Prior draws tried per example as the start (>= 0); one batched decode each.

    Returns
    -------
    z : Tensor, (N, D)
        For each example, the visited z of lowest loss, on the engine's device.
    losses : list of float
        Mean loss over the examples before each step taken (len = steps taken).

    Raises
    ------
    ConfigError
        An unknown loss, negative steps, x of the wrong shape, or a decode that is not
        differentiable.
    """
    if loss not in LOSSES:
        raise ConfigError(f"project: loss must be one of {', '.join(LOSSES)}, not {loss!r}")
    if steps < 0 or restarts < 0:
        raise ConfigError(f"project: steps and restarts must be >= 0, not {steps} and {restarts}")
    spec: LatentSpec = engine.latent
    device = engine.device
    x = torch.as_tensor(x).to(device=device, dtype=torch.float32)
    if x.dim() < 2 or x.shape[0] < 1:
        raise ConfigError(f"project: x must be (N, ...) with N >= 1, not of shape {tuple(x.shape)}")
    n = x.shape[0]
    groups = spec.categorical
    free = sorted(spec.continuous + spec.indices("binary"))  # optimised directly, clamped to [low, high]
    cont = torch.tensor(free, dtype=torch.long, device=device)
    bounded = {k: (spec.dims[i].low, spec.dims[i].high) for k, i in enumerate(cont.tolist())
               if spec.dims[i].high > spec.dims[i].low}  # position in zc -> range
    decode = differentiable_decode(engine)

    was_training = engine.training
    flags = [(p, p.requires_grad) for p in engine.parameters()]
    try:
        engine.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        with torch.no_grad():
            z0 = engine.encode(x) if warm_start and engine.capabilities.has_encoder else None
            if z0 is None and restarts:
                z0 = _best_of_prior(engine, decode, x, loss, restarts, generator)
            elif z0 is None:
                z0 = prior_mean(spec, n, device)
            z0 = z0.to(device=device, dtype=torch.float32)
            if z0.shape != (n, spec.dim):
                raise ConfigError(f"project: start z has shape {tuple(z0.shape)}, not {(n, spec.dim)}")
        zc = z0[:, cont].clone().requires_grad_(True)
        logits = {g: to_simplex(z0[:, idx]).clamp_min(1e-4).log().requires_grad_(True) for g, idx in groups.items()}
        index = {g: torch.tensor(idx, dtype=torch.long, device=device) for g, idx in groups.items()}

        def assemble() -> torch.Tensor:
            z = torch.zeros(n, spec.dim, device=device).index_copy(1, cont, zc)
            for g, lg in logits.items():
                z = z.index_copy(1, index[g], torch.softmax(lg, dim=-1))
            return z

        opt = torch.optim.Adam([zc, *logits.values()], lr=lr)
        every = max(1, math.ceil(steps / MAX_CALLBACKS))
        losses: list[float] = []
        best_z = z0.clone()
        best = torch.full((n,), math.inf, device=device)

        def evaluate() -> tuple[torch.Tensor, torch.Tensor]:
            z = assemble()
            per = _pixel_loss(decode(z), x, loss)
            with torch.no_grad():
                better = per.detach() < best
                best_z[better] = z.detach()[better]
                best[better] = per.detach()[better]
            return z, per

        with torch.enable_grad():
            for step in range(steps):
                if should_stop is not None and should_stop():
                    break
                _, per = evaluate()
                if not per.requires_grad:
                    raise ConfigError(f"project: {engine.name or type(engine).__name__}'s decode is not differentiable in z")
                opt.zero_grad(set_to_none=True)
                per.sum().backward()
                opt.step()
                with torch.no_grad():
                    for pos, (lo, hi) in bounded.items():
                        zc[:, pos].clamp_(lo, hi)
                losses.append(float(per.detach().mean()))
                if callback is not None and ((step + 1) % every == 0 or step + 1 == steps):
                    callback(step + 1, losses[-1])
            if callback is not None and losses and len(losses) < steps and len(losses) % every != 0:
                callback(len(losses), losses[-1])  # stopped early: report where it stopped
        with torch.no_grad():
            evaluate()  # the state after the last step
        return best_z, losses
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        engine.train(was_training)


def to_latent(engine: torch.nn.Module, x: torch.Tensor, **kw) -> torch.Tensor:
    """z (N, D) for data x: ``engine.encode(x)`` where the engine has an encoder (the posterior
    mean of a VAE; the exact inverse of a flow), else :func:`project` with keyword arguments ``kw``.

    Raises
    ------
    ConfigError
        As :func:`project`, where projection is used.
    """
    if engine.capabilities.has_encoder:
        with torch.no_grad():
            return engine.encode(torch.as_tensor(x).to(device=engine.device, dtype=torch.float32))
    return project(engine, x, **kw)[0]
