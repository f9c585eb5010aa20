"""Per-image likelihoods and directions in a flow's z: the worker side of the Flow tab.

- :func:`score` (the host thread): :class:`~engines.shared.protocol.Score`, each image's log p(x) in
  nats (or the model's declared bound, drawn with its own seeded generator), and bits/dim where the
  data space is discrete (:func:`engines.metrics.likelihood.likelihood_space`).
- :func:`run_directions` (the job thread, with progress and Cancel):
  :class:`~engines.shared.protocol.FindDirections`, the principal components of the exact encodings
  of held-out images (GANSpace's recipe, Harkonen et al. 2020, applied to a flow's z) or the
  difference of two classes' mean encodings, on a private copy of the snapshot's weights.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from engines.metrics.likelihood import likelihood_space
from engines.shared import protocol as P
from engines.shared.errors import ConfigError, DataError
from engines.worker.host import Hosted, split_indices, to_numpy
from engines.worker.jobs import Job, PrivateCopies

#: Spaces where bits per dimension are meaningful.
DISCRETE = ("8-bit", "binary")
#: Images encoded per batch when finding directions.
ENCODE_BATCH = 100


def _score_input(hosted: Hosted, cmd: P.Score) -> np.ndarray:
    shape = tuple(hosted.snapshot.model.data.shape)
    if cmd.images is not None:
        x = np.asarray(cmd.images, dtype=np.float32)
        if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape or not 1 <= len(x) <= P.MAX_REQUEST:
            raise ConfigError(f"Score: images of shape {x.shape} do not match the model's N x {'x'.join(map(str, shape))}")
        if not np.isfinite(x).all():
            raise ConfigError("Score: image values must be finite")
        return np.ascontiguousarray(x)
    if cmd.indices is None:
        raise ConfigError("Score needs images or indices")
    idx = split_indices(hosted.dataset, list(cmd.indices), cmd.split)
    return np.ascontiguousarray(hosted.dataset.get(idx), dtype=np.float32)


def score(hosted: Hosted, cmd: P.Score) -> P.Scored:
    """log p(x) (N,) nats of the images of ``cmd``, and their bits/dim where the space is discrete.

    Raises
    ------
    CapabilityError
        For a model without a likelihood.
    ConfigError, DataError
        Images of the wrong shape, indices outside the split.
    """
    x = _score_input(hosted, cmd)
    snap = hosted.snapshot
    with snap.lock, torch.inference_mode():
        model = snap.model
        model.capabilities.require("likelihood", model.name)
        exact = "exact" in model.capabilities.likelihood
        xt = torch.from_numpy(x).to(model.device)
        lp = model.log_prob(xt) if exact else model.log_prob(xt, generator=torch.Generator(model.device).manual_seed(0))
        nats = to_numpy(lp)
        space, step = likelihood_space(model), snap.step
    dims = int(np.prod(x.shape[1:]))
    bpd = -nats / (dims * math.log(2)) if space in DISCRETE else np.full_like(nats, np.nan)
    return P.Scored(request_id=cmd.request_id, step=step, nats=nats, bits_per_dim=bpd.astype(np.float32),
                    kind="exact" if exact else "elbo", space=space)


def _check(cmd: P.FindDirections, dataset) -> np.ndarray:
    if cmd.method not in ("pca", "class"):
        raise ConfigError(f"FindDirections: method must be 'pca' or 'class', not {cmd.method!r}")
    k = cmd.k
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= P.MAX_DIRECTIONS:
        raise ConfigError(f"FindDirections: k must be an integer in [1, {P.MAX_DIRECTIONS}], not {k!r}")
    if dataset is None:
        raise DataError("FindDirections: no data set is loaded (the checkpoint's data could not be found)")
    n = cmd.n_examples
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ConfigError(f"FindDirections: n_examples must be an integer >= 2, not {n!r}")
    pool = np.asarray(dataset.test_indices)
    if cmd.method == "class":
        labels = dataset.labels(pool)
        if labels is None:
            raise DataError(f"{dataset.info.spec}: class directions need labels, and this data set has none")
        names = dataset.info.class_names
        for c in (cmd.from_class, cmd.to_class):
            if not isinstance(c, int) or not 0 <= c < len(names):
                raise ConfigError(f"FindDirections: a class index must lie in [0, {len(names)}), not {c!r}")
        if cmd.from_class == cmd.to_class:
            raise ConfigError("FindDirections: pick two different classes")
        pool = pool[np.isin(labels, [cmd.from_class, cmd.to_class])]
    return pool[:n]


def run_directions(job: Job, cmd: P.FindDirections, hosted: Hosted, copies: PrivateCopies) -> P.DirectionsFound | None:
    """Encode held-out images exactly and find directions in z; None when cancelled.

    Raises
    ------
    CapabilityError
        For a model without an exact encoder.
    ConfigError, DataError
        A request out of range, a data set without labels for "class", too few images of a class.
    """
    model = copies.get(hosted.snapshot)
    model.capabilities.require("encoder", model.name)
    if model.capabilities.encoder != "exact":
        raise ConfigError(f"{model.name}: directions here are found in an exact z (a flow's); use Explore's sliders")
    dataset = hosted.dataset
    idx = _check(cmd, dataset)
    z = []
    for start in range(0, len(idx), ENCODE_BATCH):
        if job.cancel.is_set():
            return None
        job.progress(start, len(idx), "encoding held-out images")
        x = torch.from_numpy(np.ascontiguousarray(dataset.get(idx[start: start + ENCODE_BATCH]), dtype=np.float32))
        with torch.inference_mode():
            z.append(to_numpy(model.encode(x.to(model.device))).astype(np.float64))
    z_all = np.concatenate(z)
    job.progress(len(idx), len(idx), "directions")
    if cmd.method == "pca":
        centred = z_all - z_all.mean(0)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        k = min(cmd.k, len(s))
        var = s**2 / max(1, len(z_all) - 1)
        share = var / var.sum() if var.sum() > 0 else var
        directions, scales = vt[:k], np.sqrt(var[:k])
        names = [f"PC{i + 1} ({100 * share[i]:.1f}% of variance)" for i in range(k)]
    else:
        labels = np.asarray(dataset.labels(idx))
        a, b = z_all[labels == cmd.from_class], z_all[labels == cmd.to_class]
        if len(a) == 0 or len(b) == 0:
            raise DataError(f"FindDirections: no held-out image of class {cmd.from_class if len(a) == 0 else cmd.to_class} "
                            f"among the {len(idx)} encoded")
        diff = b.mean(0) - a.mean(0)
        length = float(np.linalg.norm(diff))
        directions, scales = (diff / max(length, 1e-12))[None], np.array([length])
        names_ = dataset.info.class_names
        names = [f"{names_[cmd.from_class]} -> {names_[cmd.to_class]}"]
    return P.DirectionsFound(request_id=cmd.request_id, step=hosted.snapshot.step,
                             directions=directions.astype(np.float32), scales=scales.astype(np.float32),
                             names=names, n=len(idx))
