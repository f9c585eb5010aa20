"""The energy models' jobs on the worker's job thread: Gibbs chains streamed frame by frame (free or clamped),
the hidden units' filters, and log Z by annealed importance sampling on demand.

Each runs on a private copy of the weight snapshot (:class:`~engines.worker.jobs.PrivateCopies`), never on
the live model, with its own seeded generator, so watching chains or estimating log Z neither disturbs
training nor depends on it.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from engines.shared import protocol as P
from engines.shared.capabilities import CapabilityError
from engines.shared.errors import ConfigError
from engines.worker.host import Hosted, to_numpy
from engines.worker.jobs import Job, PrivateCopies


def _model(hosted: Hosted, copies: PrivateCopies, extra: str):  # noqa: ANN202 - an Engine
    model = copies.get(hosted.snapshot)
    if not model.capabilities.has(extra):
        raise CapabilityError(f"{model.name} does not declare {extra!r} (it declares {model.capabilities.summary()})")
    return model


def _int(value: object, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{what} must be an integer in [{lo}, {hi}], not {value!r}")
    return int(value)


def run_chains(job: Job, cmd: P.RunChains, hosted: Hosted, copies: PrivateCopies) -> P.ChainFrame | None:
    """Run ``cmd.n`` Gibbs chains, streaming a :class:`ChainFrame` after every ``cmd.sweeps`` sweeps; the last one,
    or None if cancelled.

    Raises
    ------
    CapabilityError
        A model without Gibbs chains.
    ConfigError
        A request out of range, or an image or mask of the wrong shape.
    """
    model = _model(hosted, copies, "chains")
    n = _int(cmd.n, "RunChains.n", 1, P.MAX_CHAINS)
    sweeps = _int(cmd.sweeps, "RunChains.sweeps", 1, P.MAX_SWEEPS_PER_FRAME)
    frames = _int(cmd.frames, "RunChains.frames", 1, P.MAX_CHAIN_FRAMES)
    delay = float(cmd.delay_ms)
    if not math.isfinite(delay) or not 0 <= delay <= 5000:
        raise ConfigError(f"RunChains.delay_ms must be in [0, 5000], not {cmd.delay_ms!r}")
    shape = tuple(model.data.shape)
    gen = torch.Generator(device=model.device).manual_seed(int(cmd.seed))
    v = (torch.rand((n, int(np.prod(shape))), generator=gen, device=model.device) < 0.5).float()
    clamp = known = None
    if cmd.image is not None:
        image = np.asarray(cmd.image, np.float32)
        if image.shape != (1, *shape) or not np.isfinite(image).all():
            raise ConfigError(f"RunChains.image must be (1, {', '.join(map(str, shape))}) finite, not {image.shape}")
        mask = np.ones(shape[1:], bool) if cmd.known is None else np.asarray(cmd.known, bool)
        if mask.shape != shape[1:]:
            raise ConfigError(f"RunChains.known must be {shape[1:]}, not {mask.shape}")
        known = torch.from_numpy(np.broadcast_to(mask, shape).reshape(-1).copy()).to(model.device)
        clamp = torch.from_numpy(image.reshape(1, -1)).to(model.device)
        clamp = (torch.rand(clamp.shape, generator=gen, device=model.device) < clamp).float()  # a binary image
        v = torch.where(known, clamp, v)
    step = hosted.snapshot.step

    def frame(sweep: int, final: bool) -> P.ChainFrame:
        images = to_numpy(model.visible_probs(_bernoulli(model.hidden_probs(v), gen)).view(n, *shape))
        if clamp is not None:
            images = np.where(to_numpy(known.view(*shape)), to_numpy(clamp.view(*shape)), images)
        return P.ChainFrame(request_id=cmd.request_id, step=step, sweep=sweep, images=images.astype(np.float32),
                            final=final)

    with torch.inference_mode():
        for f in range(frames):
            if job.cancel.is_set():
                return None
            for _ in range(sweeps):
                v = model.gibbs(v, 1, gen)
                if clamp is not None:
                    v = torch.where(known, clamp, v)
            if f < frames - 1:
                job.send(frame((f + 1) * sweeps, False))
                if delay:
                    job.cancel.wait(delay / 1000.0)
        job.progress(frames, frames, f"{n} chains, {frames * sweeps} sweeps")
        return frame(frames * sweeps, True)


def run_filters(job: Job, cmd: P.GetFilters, hosted: Hosted, copies: PrivateCopies) -> P.Filters:
    """Each hidden unit's weights as an image (:meth:`engines.models.energy.rbm.RBM.filters`)."""
    model = _model(hosted, copies, "filters")
    with torch.no_grad():
        images = to_numpy(model.filters()).astype(np.float32)
    return P.Filters(request_id=cmd.request_id, step=hosted.snapshot.step, images=images)


def run_log_z(job: Job, cmd: P.EstimateLogZ, hosted: Hosted, copies: PrivateCopies) -> P.LogZEstimated | None:
    """log Z by AIS (Salakhutdinov & Murray 2008) from the data's base rates, with progress; and exactly where the
    model has at most 20 hidden units. None if cancelled.

    Raises
    ------
    ConfigError
        Runs or temperatures out of range.
    """
    from engines.lib.ais import ais_log_z, default_betas

    model = _model(hosted, copies, "chains")
    runs = _int(cmd.runs, "EstimateLogZ.runs", 2, 100_000)
    betas = _int(cmd.betas, "EstimateLogZ.betas", 10, 10**6)
    t0 = time.perf_counter()
    exact = model.exact_log_z()
    p = model.pixel_mean.clamp(0.01, 0.99)
    gen = torch.Generator(device=model.device).manual_seed(int(cmd.seed))
    with torch.no_grad():
        log_z, se = ais_log_z(model.W, model.b, model.c, torch.log(p / (1 - p)), runs,
                              default_betas(betas, model.device), gen,
                              progress=lambda done, total: job.progress(done, total, "annealing"),
                              cancel=job.cancel)
    if job.cancel.is_set() or not math.isfinite(log_z):
        return None
    job.progress(betas, betas, f"log Z = {log_z:.2f} +- {se:.2f} nats")
    return P.LogZEstimated(request_id=cmd.request_id, step=hosted.snapshot.step, log_z=float(log_z),
                           stderr=float(se), exact=float("nan") if exact is None else float(exact), runs=runs,
                           betas=betas, seconds=time.perf_counter() - t0)


def _bernoulli(p: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return (torch.rand(p.shape, generator=generator, device=p.device, dtype=p.dtype) < p).to(p.dtype)
