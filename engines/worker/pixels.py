"""Pixel-by-pixel requests of autoregressive models: drawing (with streamed frames) and the surprise map.

- :func:`run_draw` (the job thread, with Cancel): :class:`~engines.shared.protocol.DrawPixels` draws
  or completes images value by value on a private copy of the snapshot's weights
  (:meth:`engines.models.autoregressive.base.ARModel.draw`) and streams a
  :class:`~engines.shared.protocol.PixelFrame` about every ``total / frames`` values, pausing
  ``delay_ms`` after each so a person can watch; the last frame has ``final`` True. A Cancel stops
  it between two values (Pause in the window) and the job ends with Progress "cancelled".
- :func:`pixel_surprise` (the host thread): :class:`~engines.shared.protocol.PixelSurprise`, each
  value's log p(x_d | x_<d) of one image, one pass of the network.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from engines.shared import protocol as P
from engines.shared.capabilities import CapabilityError
from engines.shared.errors import ConfigError
from engines.worker.host import Hosted, split_indices, to_numpy
from engines.worker.jobs import Job, PrivateCopies

#: Longest pause after a frame a DrawPixels may ask for, milliseconds.
MAX_DELAY_MS = 2000.0


def _sequential(model) -> None:
    if model.capabilities.sampling != "autoregressive":
        raise CapabilityError(f"{model.name} does not sample pixel by pixel (it declares "
                              f"{model.capabilities.summary()}); build fvsbn, nade, made or pixelcnn")


def _image(model, image: np.ndarray | None, what: str) -> torch.Tensor | None:
    """The checked (1, C, H, W) float32 image in [0, 1] of a request, or None."""
    if image is None:
        return None
    x = np.asarray(image, dtype=np.float32)
    shape = (1, *model.data.shape)
    if x.shape != shape:
        raise ConfigError(f"{what}: the image must be {'x'.join(map(str, shape))}, not {'x'.join(map(str, x.shape))}")
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ConfigError(f"{what}: image values must be finite and in [0, 1]")
    return torch.from_numpy(np.ascontiguousarray(x))


def check_draw(cmd: P.DrawPixels, data_shape: tuple[int, ...]) -> None:
    """Raise ConfigError for a DrawPixels out of range: n, frames, delay, or a known mask of the wrong shape."""
    n, frames = cmd.n, cmd.frames
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= P.MAX_PIXEL_IMAGES:
        raise ConfigError(f"DrawPixels: n must be an integer in [1, {P.MAX_PIXEL_IMAGES}], not {n!r}")
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ConfigError(f"DrawPixels: frames must be a positive integer, not {frames!r}")
    if not isinstance(cmd.delay_ms, (int, float)) or not 0 <= cmd.delay_ms <= MAX_DELAY_MS:
        raise ConfigError(f"DrawPixels: delay_ms must be in [0, {MAX_DELAY_MS:g}], not {cmd.delay_ms!r}")
    if (cmd.known is None) != (cmd.image is None):
        raise ConfigError("DrawPixels: completing an image needs both image and known")
    if cmd.known is not None and np.asarray(cmd.known).shape != tuple(data_shape[1:]):
        raise ConfigError(f"DrawPixels: known must be {data_shape[1]}x{data_shape[2]} "
                          f"(the image's height x width), not {np.asarray(cmd.known).shape}")


def run_draw(job: Job, cmd: P.DrawPixels, hosted: Hosted, copies: PrivateCopies) -> P.PixelFrame | None:
    """Draw (or complete) ``cmd.n`` images pixel by pixel, streaming frames; the final frame, or None if cancelled.

    Raises
    ------
    CapabilityError
        For a model that does not sample pixel by pixel.
    ConfigError
        A request out of range (:func:`check_draw`) or an image of the wrong shape.
    """
    model = copies.get(hosted.snapshot)
    _sequential(model)
    check_draw(cmd, tuple(model.data.shape))
    image = _image(model, cmd.image, "DrawPixels")
    known = None if cmd.known is None else np.asarray(cmd.known, dtype=bool)
    step = hosted.snapshot.step
    c, h, w = model.data.shape
    total = int(model.n_dims - (0 if known is None else known.sum() * c))
    every = max(1, math.ceil(total / cmd.frames))
    delay = float(cmd.delay_ms) / 1000.0

    def frame(x: torch.Tensor, drawn: torch.Tensor, done: int, final: bool) -> P.PixelFrame:
        return P.PixelFrame(request_id=cmd.request_id, step=step, images=to_numpy(x),
                            drawn=drawn.view(c, h, w).all(0).numpy(), done=int(done), total=total, final=final)

    def stream(done: int, _total: int, x: torch.Tensor, drawn: torch.Tensor) -> None:
        if done < total:  # the last frame is the job's answer
            job.send(frame(x, drawn, done, False))
            if delay:
                job.cancel.wait(delay)

    gen = torch.Generator(device=model.device).manual_seed(int(cmd.seed))
    t0 = time.perf_counter()
    with torch.inference_mode():
        x = model.draw(int(cmd.n), gen, image=image, known=known, callback=stream, every=every,
                       should_stop=job.cancel.is_set)
    if job.cancel.is_set():
        return None
    drawn = torch.ones(model.n_dims, dtype=torch.bool)  # not cancelled: every value is drawn or given
    job.progress(total, total, f"{cmd.n} drawn in {time.perf_counter() - t0:.1f} s")
    return frame(x, drawn, total, True)


def pixel_surprise(hosted: Hosted, cmd: P.PixelSurprise) -> P.PixelSurprised:
    """Each value's conditional log-probability (nats) of the image or held-out example of ``cmd``.

    Raises
    ------
    CapabilityError
        For a model that does not sample pixel by pixel.
    ConfigError, DataError
        An image of the wrong shape, an index outside the held-out split.
    """
    snap = hosted.snapshot
    model = snap.model
    _sequential(model)
    x = _image(model, cmd.image, "PixelSurprise")
    if x is None:  # split_indices names a missing data set
        idx = split_indices(hosted.dataset, [int(cmd.index)], "test")
        x = torch.from_numpy(np.ascontiguousarray(hosted.dataset.get(idx), dtype=np.float32))
    with snap.lock, torch.inference_mode():
        lp = model.pixel_log_probs(x.to(model.device))[0]
        nats = float(lp.sum())
        shown = model.inputs(x)
        step = snap.step
    return P.PixelSurprised(request_id=cmd.request_id, step=step, image=to_numpy(shown),
                            log_probs=to_numpy(lp), nats=nats, bits_per_dim=-nats / (lp.numel() * math.log(2)))
