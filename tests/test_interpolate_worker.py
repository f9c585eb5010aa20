"""Latent interpolation paths served by the real worker's host thread (Interpolate -> Interpolated).

One worker (digits at 16x16, a 4-dim VAE, untrained: the host serves the snapshot from Ready on)
serves the module. Frames are checked against plain Decode requests of the keyframes and against
:func:`engines.lib.latent.interpolate_spec`, so a path through the wrong points fails.
"""

from __future__ import annotations


import numpy as np
import pytest
import torch

from engines.shared import protocol as P
from engines.lib.latent import interpolate_spec
from engines.shared.link import WorkerLink
from workers import LATENT, SIZE, answer, configured_worker, decode, wait
from engines.shared.spec import LatentSpec



def reply(link: WorkerLink, request_id: int) -> P.Event:
    return answer(link, P.Interpolated, "Interpolate", request_id)


@pytest.fixture(scope="module")
def link(tmp_path_factory):
    with configured_worker(tmp_path_factory.mktemp("studio-home")) as link:
        yield link


KEYS = np.array([[-2.0, 1.0, 0.0, 0.5], [0.5, -1.5, 2.0, 0.0], [2.0, 2.0, -1.0, -2.0]], np.float32)


@pytest.mark.parametrize("method", ["lerp", "slerp", "spline"])
def test_path_ends_are_the_keyframes(link, method):
    link.send(P.Interpolate(request_id=1, keyframes=KEYS, frames=11, method=method, constant_speed=False))
    ev = reply(link, 1)
    assert isinstance(ev, P.Interpolated), getattr(ev, "message", ev)
    assert ev.z.shape == (11, LATENT) and ev.images.shape == (11, 1, SIZE, SIZE)
    assert ev.images.dtype == np.float32 and 0.0 <= ev.images.min() and ev.images.max() <= 1.0
    np.testing.assert_allclose(ev.z[[0, -1]], KEYS[[0, -1]], atol=1e-6)
    want = interpolate_spec(LatentSpec.gaussian(LATENT), torch.from_numpy(KEYS), 11, method, False).numpy()
    np.testing.assert_allclose(ev.z, want, atol=1e-5)
    ends = decode(link, KEYS[[0, 2]], 100)
    np.testing.assert_allclose(ev.images[0], ends[0], atol=1e-5)
    np.testing.assert_allclose(ev.images[-1], ends[1], atol=1e-5)
    assert not np.allclose(ev.images[0], ev.images[5])  # the path moves


def test_constant_speed_and_many_frames(link):
    """More frames than one decode chunk (64): every frame is answered, in order."""
    link.send(P.Interpolate(request_id=2, keyframes=KEYS[:2], frames=150, method="slerp", constant_speed=True))
    ev = reply(link, 2)
    assert isinstance(ev, P.Interpolated), getattr(ev, "message", ev)
    assert ev.z.shape == (150, LATENT) and ev.images.shape == (150, 1, SIZE, SIZE)
    last = decode(link, ev.z[[70, 149]], 101)
    np.testing.assert_allclose(ev.images[[70, 149]], last, atol=1e-5)


@pytest.mark.parametrize("bad, words", [
    (dict(keyframes=KEYS[:1], frames=4), "at least 2 keyframes"),
    (dict(keyframes=KEYS, frames=2), "frames"),
    (dict(keyframes=KEYS, frames=1025), "frames"),
    (dict(keyframes=KEYS, frames=8, method="cubic"), "unknown method"),
    (dict(keyframes=KEYS[:, :3], frames=8), "(K, 4)"),
    (dict(keyframes=np.array([[0, 0, 0, 0], [np.nan, 0, 0, 0]], np.float32), frames=8), "finite"),
    (dict(keyframes=None, frames=8), "keyframes"),
])
def test_bad_input_is_an_error(link, bad, words):
    link.send(P.Interpolate(request_id=9, **bad))
    ev = reply(link, 9)
    assert isinstance(ev, P.Error) and words in ev.message, ev


def test_latest_interpolate_wins(link):
    """A burst of Interpolate: the newest is answered, stale ones are dropped, none out of order."""
    for rid in range(20, 30):
        link.send(P.Interpolate(request_id=rid, keyframes=KEYS, frames=1024, method="spline"))
    link.send(P.Interpolate(request_id=30, keyframes=KEYS, frames=3, method="lerp"))
    answered = []
    while not answered or answered[-1] != 30:
        answered.append(wait(link, lambda e: isinstance(e, P.Interpolated)).request_id)
    assert answered == sorted(answered) and answered[-1] == 30
    assert len(answered) < 11
