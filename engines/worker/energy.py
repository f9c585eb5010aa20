"""The energy models' jobs on the worker's job thread: Gibbs chains streamed frame by frame (free or clamped),
the hidden units' filters and their probabilities for one image, log Z by annealed importance sampling on
demand; and a VQ-VAE's codebook usage.

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

#: Images encoded to measure a codebook's usage (GetCodebook).
CODEBOOK_IMAGES = 512


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
    or None if cancelled. Each frame's sweeps use the latest weights, so chains run during training animate as
    the model learns (each frame says the step its weights are from).

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
    v = model.chain_start(n, gen)
    clamp = known = None
    if cmd.image is not None:
        image = np.asarray(cmd.image, np.float32)
        if image.shape != (1, *shape) or not np.isfinite(image).all():
            raise ConfigError(f"RunChains.image must be (1, {', '.join(map(str, shape))}) finite, not {image.shape}")
        mask = np.ones(shape[1:], bool) if cmd.known is None else np.asarray(cmd.known, bool)
        if mask.shape != shape[1:]:
            raise ConfigError(f"RunChains.known must be {shape[1:]}, not {mask.shape}")
        known = torch.from_numpy(np.broadcast_to(mask, shape).reshape(-1).copy()).to(model.device)
        shown = torch.from_numpy(image.reshape(1, -1).copy()).to(model.device)
        clamp = model.clamp_values(torch.from_numpy(image).to(model.device), gen)
        v = torch.where(known, clamp, v)

    def frame(model, sweep: int, final: bool) -> P.ChainFrame:  # noqa: ANN001 - an Engine
        images = model.chain_images(v, gen).reshape(n, -1)
        if clamp is not None:
            images = torch.where(known, shown, images)  # the clamped pixels as given
        images = to_numpy(images.view(n, *shape))
        return P.ChainFrame(request_id=cmd.request_id, step=hosted.snapshot.step, sweep=sweep,
                            images=images.astype(np.float32), final=final)

    with torch.inference_mode():
        for f in range(frames):
            if job.cancel.is_set():
                return None
            model = _model(hosted, copies, "chains")  # the latest weights: the chains follow training
            for _ in range(sweeps):
                v = model.chain_step(v, gen)
                if clamp is not None:
                    v = torch.where(known, clamp, v)
            if f < frames - 1:
                job.send(frame(model, (f + 1) * sweeps, False))
                if delay:
                    job.cancel.wait(delay / 1000.0)
        job.progress(frames, frames, f"{n} chains, {frames * sweeps} sweeps")
        return frame(model, frames * sweeps, True)


def run_filters(job: Job, cmd: P.GetFilters, hosted: Hosted, copies: PrivateCopies) -> P.Filters:
    """Each hidden unit's weights of ``cmd.layer`` as an image (:meth:`engines.models.energy.rbm.RBM.filters`).

    Raises
    ------
    ConfigError
        A layer the model does not have.
    """
    model = _model(hosted, copies, "filters")
    layers = int(getattr(model, "n_layers", 1))
    layer = _int(cmd.layer, "GetFilters.layer", 0, layers - 1)
    with torch.no_grad():
        images = to_numpy(model.filters(layer)).astype(np.float32)
    return P.Filters(request_id=cmd.request_id, step=hosted.snapshot.step, images=images, layer=layer, layers=layers)


def run_inspect_hidden(job: Job, cmd: P.InspectHidden, hosted: Hosted, copies: PrivateCopies) -> P.HiddenInspected:
    """Each hidden layer's p(h = 1 | v) for one image, and the image decoded from the top layer's probabilities.

    Raises
    ------
    CapabilityError
        A model without Gibbs chains.
    ConfigError
        An image of the wrong shape, or not finite.
    """
    model = _model(hosted, copies, "chains")
    shape = tuple(model.data.shape)
    image = np.asarray(cmd.image if cmd.image is not None else np.zeros(0), np.float32)
    if image.shape != (1, *shape) or not np.isfinite(image).all():
        raise ConfigError(f"InspectHidden.image must be (1, {', '.join(map(str, shape))}) finite, not {image.shape}")
    with torch.no_grad():
        layers = model.hidden_layers(torch.from_numpy(np.clip(image, 0, 1)).to(model.device))
        recon = to_numpy(model.decode(layers[-1])).astype(np.float32)
    probs = np.concatenate([to_numpy(h).reshape(-1) for h in layers]).astype(np.float32)
    return P.HiddenInspected(request_id=cmd.request_id, step=hosted.snapshot.step, probs=probs,
                             sizes=np.array([h.shape[1] for h in layers], np.int64), recon=recon)


def run_codebook(job: Job, cmd: P.GetCodebook, hosted: Hosted, copies: PrivateCopies) -> P.Codebook:
    """A codebook's usage now: the share of the code-grid positions on each code over up to
    :data:`CODEBOOK_IMAGES` held-out images encoded by the latest weights (training images where there is no
    held-out split), dead codes those none of them chose; without data, the model's running average
    (:meth:`engines.models.discrete.vq_vae.VQVAE.code_usage`)."""
    model = _model(hosted, copies, "codebook")
    data, images = hosted.dataset, 0
    with torch.no_grad():
        usage, dead = model.code_usage()
        usage = to_numpy(usage).astype(np.float64)
        if data is not None:
            pool = data.test_indices if len(data.test_indices) else data.train_indices
            idx = np.asarray(pool[:CODEBOOK_IMAGES])
            counts = np.zeros(len(usage))
            for i in range(0, len(idx), 128):
                x = torch.as_tensor(data.get(idx[i:i + 128]), device=model.device)
                counts += np.bincount(model.codes(model.encoder(x)).reshape(-1).cpu().numpy(), minlength=len(usage))
            if counts.sum() > 0:
                usage, dead, images = counts / counts.sum(), torch.from_numpy(counts == 0), len(idx)
    share = usage / max(float(usage.sum()), 1e-12)
    entropy = float(-(share * np.log(np.clip(share, 1e-12, None))).sum())
    return P.Codebook(request_id=cmd.request_id, step=hosted.snapshot.step, usage=usage.astype(np.float32),
                      dead=to_numpy(dead).astype(bool), perplexity=float(np.exp(entropy)), images=images)


def run_log_z(job: Job, cmd: P.EstimateLogZ, hosted: Hosted, copies: PrivateCopies) -> P.LogZEstimated | None:
    """log Z by AIS (Salakhutdinov & Murray 2008) from the data's base rates, with progress; and exactly where the
    model has at most 20 hidden units. None if cancelled.

    Raises
    ------
    ConfigError
        Runs or temperatures out of range.
    """
    model = _model(hosted, copies, "chains")
    if "ais" not in model.capabilities.likelihood:
        raise CapabilityError(f"{model.name} has no partition function to estimate (it declares "
                              f"{model.capabilities.summary()})")
    runs = _int(cmd.runs, "EstimateLogZ.runs", 2, 100_000)
    betas = _int(cmd.betas, "EstimateLogZ.betas", 10, 10**6)
    t0 = time.perf_counter()
    exact = model.exact_log_z()
    gen = torch.Generator(device=model.device).manual_seed(int(cmd.seed))
    log_z, se = model.estimate_log_z(runs, betas, gen,
                                     progress=lambda done, total: job.progress(done, total, "annealing"),
                                     cancel=job.cancel)
    if job.cancel.is_set() or not math.isfinite(log_z):
        return None
    job.progress(betas, betas, f"log Z = {log_z:.2f} +- {se:.2f} nats")
    return P.LogZEstimated(request_id=cmd.request_id, step=hosted.snapshot.step, log_z=float(log_z),
                           stderr=float(se), exact=float("nan") if exact is None else float(exact), runs=runs,
                           betas=betas, seconds=time.perf_counter() - t0)

