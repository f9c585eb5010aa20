"""Per-image likelihoods: the worker side of the Flow tab's scores (directions are in :mod:`engines.worker.directions`).

:func:`score` (the host thread) answers :class:`~engines.shared.protocol.Score`: each image's log p(x)
in nats (or the model's declared bound, drawn with its own seeded generator), and bits/dim where the
data space is discrete (:func:`engines.metrics.likelihood.likelihood_space`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from engines.metrics.likelihood import likelihood_space
from engines.shared import protocol as P
from engines.shared.errors import ConfigError
from engines.worker.host import Hosted, split_indices, to_numpy

#: Spaces where bits per dimension are meaningful.
DISCRETE = ("8-bit", "binary")


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
