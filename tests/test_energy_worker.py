"""The RBM's views, worker side (issue 16): Gibbs chains streamed free and clamped, the hidden units' filters,
and log Z by AIS on demand beside the exact value, all jobs with Cancel."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engines.shared import protocol as P
from engines.shared.link import WorkerLink
from workers import collect


@pytest.fixture(scope="module")
def rbm(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LATENT_STUDIO_HOME", str(tmp_path_factory.mktemp("home")))
        link = WorkerLink(threads=1, device="cpu", connect_timeout=90)
        link.start()
    try:
        link.wait_for(P.Started, timeout=90)
        link.send(P.SetMetricSchedule(coverage_every=0, disentanglement_every=0))
        link.send(P.Configure(data="binarized:digits", model="rbm", image_size=8, latent_dim=12, seed=0,
                              batch_size=32, options={"persistent": True}))
        ready = collect(link, lambda e: isinstance(e, (P.Ready, P.Error)), timeout=60)[-1]
        assert isinstance(ready, P.Ready) and ready.capabilities.has("chains"), ready
        link.send(P.Train(steps=200))
        collect(link, lambda e: isinstance(e, P.Stopped), timeout=60)
        yield link
    finally:
        link.kill()


def ends(rid: int):  # noqa: ANN201
    return lambda e: (getattr(e, "request_id", None) == rid and (getattr(e, "final", True) or isinstance(e, P.Error))
                      and not isinstance(e, P.Progress)) or (isinstance(e, P.Progress) and e.request_id == rid
                                                              and e.message == "cancelled")


def test_chains_stream_frames_and_a_clamped_chain_keeps_its_known_pixels(rbm) -> None:
    rbm.send(P.RunChains(request_id=11, n=4, sweeps=2, frames=6, delay_ms=0, seed=1))
    events = collect(rbm, ends(11), timeout=30)
    frames = [e for e in events if isinstance(e, P.ChainFrame) and e.request_id == 11]
    assert [f.sweep for f in frames] == [2, 4, 6, 8, 10, 12] and frames[-1].final and not frames[0].final
    assert frames[-1].images.shape == (4, 1, 8, 8) and 0 <= frames[-1].images.min() <= frames[-1].images.max() <= 1
    image = np.zeros((1, 1, 8, 8), np.float32)
    image[..., :4, :] = 1.0  # the top half white, kept; the bottom half sampled given it
    known = np.zeros((8, 8), bool)
    known[:4] = True
    rbm.send(P.RunChains(request_id=12, n=3, sweeps=5, frames=3, delay_ms=0, image=image, known=known))
    last = collect(rbm, ends(12), timeout=30)[-1]
    assert isinstance(last, P.ChainFrame) and last.final
    assert (last.images[:, 0, :4] == 1.0).all()  # clamped
    rbm.send(P.RunChains(request_id=13, n=2, frames=4, known=np.zeros((3, 3), bool), image=image))
    err = collect(rbm, lambda e: isinstance(e, P.Error))[-1]
    assert err.command == "RunChains" and "known must be" in err.message


def test_filters_and_a_long_chain_cancelled(rbm) -> None:
    rbm.send(P.GetFilters(request_id=21))
    filters = collect(rbm, lambda e: isinstance(e, P.Filters) and e.request_id == 21)[-1]
    assert filters.images.shape == (12, 1, 8, 8) and filters.step == 200
    assert np.isclose(np.abs(filters.images - 0.5).reshape(12, -1).max(1), 0.5).all()  # each unit scaled to its largest
    rbm.send(P.RunChains(request_id=22, n=2, frames=10_000, delay_ms=50))
    collect(rbm, lambda e: isinstance(e, P.ChainFrame) and e.request_id == 22)
    rbm.send(P.Cancel(request_id=22))
    done = collect(rbm, ends(22), timeout=30)[-1]
    assert isinstance(done, P.Progress) and done.message == "cancelled"


def test_log_z_by_ais_lies_within_its_error_of_the_exact_sum(rbm) -> None:
    rbm.send(P.EstimateLogZ(request_id=31, runs=200, betas=1000, seed=2))
    events = collect(rbm, lambda e: isinstance(e, (P.LogZEstimated, P.Error)) and e.request_id in (31, 0), timeout=60)
    est = events[-1]
    assert isinstance(est, P.LogZEstimated), est
    assert any(isinstance(e, P.Progress) and e.task == "ais" for e in events)
    assert math.isfinite(est.exact) and est.stderr > 0 and est.step == 200
    assert abs(est.log_z - est.exact) < 4 * est.stderr + 0.05, (est.log_z, est.exact, est.stderr)


def test_the_hidden_units_of_one_image_layer_by_layer_and_the_filters_layer(rbm) -> None:
    image = np.zeros((1, 1, 8, 8), np.float32)
    image[..., 2:6, 3:5] = 1.0
    rbm.send(P.InspectHidden(request_id=41, image=image))
    got = collect(rbm, lambda e: getattr(e, "request_id", None) == 41 and isinstance(e, (P.HiddenInspected, P.Error)))[-1]
    assert isinstance(got, P.HiddenInspected), got
    assert list(got.sizes) == [12] and got.probs.shape == (12,) and 0 <= got.probs.min() <= got.probs.max() <= 1
    assert got.recon.shape == (1, 1, 8, 8) and got.step == 200
    rbm.send(P.InspectHidden(request_id=42, image=np.zeros((1, 1, 4, 4), np.float32)))
    err = collect(rbm, lambda e: isinstance(e, P.Error))[-1]
    assert err.command == "InspectHidden" and "must be (1, 1, 8, 8)" in err.message
    rbm.send(P.GetFilters(request_id=43, layer=1))  # an RBM has one hidden layer
    err = collect(rbm, lambda e: isinstance(e, P.Error))[-1]
    assert err.command == "GetFilters" and "GetFilters.layer" in err.message
    rbm.send(P.GetCodebook(request_id=44))  # no codebook: refused by name
    err = collect(rbm, lambda e: isinstance(e, P.Error))[-1]
    assert err.command == "GetCodebook" and "codebook" in err.message


def test_chains_run_while_training_follow_the_weights(rbm) -> None:
    rbm.send(P.Train(steps=400))
    rbm.send(P.RunChains(request_id=51, n=2, sweeps=1, frames=60, delay_ms=20, seed=3))
    events = collect(rbm, ends(51), timeout=60)
    if not any(isinstance(e, P.Stopped) for e in events):
        events += collect(rbm, lambda e: isinstance(e, P.Stopped), timeout=60)
    frames = [e for e in events if isinstance(e, P.ChainFrame) and e.request_id == 51]
    steps = [f.step for f in frames]
    assert steps == sorted(steps) and steps[-1] > steps[0] >= 200, steps  # later frames drawn by later weights
