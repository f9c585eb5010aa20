"""Latent traversals served by the real worker's host thread (Traverse -> Traversed).

One worker (digits at 16x16, a 4-dim VAE, untrained: the host serves the snapshot from Ready on)
serves the module. The traversal images are checked against plain Decode requests of the same
latents, so a row that swept the wrong dimension or a wrong base z fails.
"""

from __future__ import annotations


import numpy as np
import pytest
import torch

from engines.shared import protocol as P
from engines.lib.latent import traversal_latents
from engines.shared.latent_np import prior_centre
from engines.shared.link import WorkerLink
from workers import LATENT, SIZE, answer, configured_worker, decode, wait
from engines.shared.spec import LatentDim, LatentSpec



def reply(link: WorkerLink, request_id: int) -> P.Event:
    return answer(link, P.Traversed, "Traverse", request_id)


@pytest.fixture(scope="module")
def link(tmp_path_factory):
    with configured_worker(tmp_path_factory.mktemp("studio-home")) as link:
        yield link


def test_prior_traversal_matches_decode(link):
    link.send(P.Traverse(request_id=1, z=None, index=None, dims=None, steps=5, low=-2.0, high=2.0))
    ev = reply(link, 1)
    assert isinstance(ev, P.Traversed), getattr(ev, "message", ev)
    assert ev.dims == [0, 1, 2, 3]
    np.testing.assert_allclose(ev.values, np.linspace(-2, 2, 5))
    np.testing.assert_array_equal(ev.z, np.zeros((1, LATENT), np.float32))
    assert ev.images.shape == (LATENT, 5, 1, SIZE, SIZE) and ev.images.dtype == np.float32
    assert 0.0 <= ev.images.min() and ev.images.max() <= 1.0
    z = np.zeros((5, LATENT), np.float32)
    z[:, 2] = np.linspace(-2, 2, 5)
    np.testing.assert_allclose(ev.images[2], decode(link, z, 100), atol=1e-5)
    assert not np.allclose(ev.images[2, 0], ev.images[2, -1])  # the sweep changes the image


def test_given_z_and_dim_order(link):
    base = np.array([[0.5, -1.0, 0.25, 2.0]], np.float32)
    link.send(P.Traverse(request_id=2, z=base, dims=[3, 0], steps=3, low=-1.0, high=1.0))
    ev = reply(link, 2)
    assert isinstance(ev, P.Traversed), getattr(ev, "message", ev)
    assert ev.dims == [3, 0] and ev.images.shape == (2, 3, 1, SIZE, SIZE)
    np.testing.assert_array_equal(ev.z, base)
    z = np.repeat(base, 3, axis=0)
    z[:, 0] = [-1.0, 0.0, 1.0]
    np.testing.assert_allclose(ev.images[1], decode(link, z, 101), atol=1e-5)


def test_held_out_example_is_encoded(link):
    link.send(P.Encode(request_id=3, view="check", indices=[7], split="test"))
    enc = wait(link, lambda e: isinstance(e, P.Encoded) and e.request_id == 3)
    link.send(P.Traverse(request_id=4, index=7, dims=[1], steps=4))
    ev = reply(link, 4)
    assert isinstance(ev, P.Traversed), getattr(ev, "message", ev)
    np.testing.assert_allclose(ev.z, enc.z, atol=1e-5)
    assert ev.images.shape == (1, 4, 1, SIZE, SIZE)


@pytest.mark.parametrize("bad, words", [
    (dict(dims=[LATENT]), "dims"),
    (dict(steps=0), "steps"),
    (dict(z=np.zeros((1, 3), np.float32)), "z must"),
    (dict(z=np.zeros((2, LATENT), np.float32)), "(1, 4)"),
    (dict(index=10**6), "indices"),
    (dict(low=float("nan")), "finite"),
])
def test_bad_input_is_an_error(link, bad, words):
    link.send(P.Traverse(request_id=9, **bad))
    ev = reply(link, 9)
    assert isinstance(ev, P.Error) and words in ev.message, ev


def test_latest_traverse_wins(link):
    """A burst of Traverse: the newest is answered, stale ones are dropped, none answered out of order."""
    for rid in range(20, 30):
        link.send(P.Traverse(request_id=rid, steps=64))
    link.send(P.Traverse(request_id=30, steps=2))
    answered = []
    while not answered or answered[-1] != 30:
        answered.append(wait(link, lambda e: isinstance(e, P.Traversed)).request_id)
    assert answered == sorted(answered) and answered[-1] == 30
    assert len(answered) < 11  # at least one stale request was dropped while the host was busy


def test_prior_centre_one_hot_per_code():
    spec = LatentSpec((LatentDim("z0"), LatentDim("c0", "categorical", group="c"),
                       LatentDim("c1", "categorical", group="c"), LatentDim("u", "uniform", -1, 1),
                       LatentDim("d0", "categorical", group="d"), LatentDim("d1", "categorical", group="d")))
    np.testing.assert_array_equal(prior_centre(spec), [[0, 1, 0, 0, 1, 0]])


def test_traversal_latents_rows_and_columns():
    base = torch.tensor([[1.0, 2.0, 3.0]])
    z = traversal_latents(base, [2, 0], torch.tensor([-1.0, 0.0, 1.0])).reshape(2, 3, 3)
    assert torch.equal(z[0], torch.tensor([[1.0, 2.0, -1.0], [1.0, 2.0, 0.0], [1.0, 2.0, 1.0]]))
    assert torch.equal(z[1], torch.tensor([[-1.0, 2.0, 3.0], [0.0, 2.0, 3.0], [1.0, 2.0, 3.0]]))
