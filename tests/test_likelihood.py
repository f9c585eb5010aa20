"""The binarised data option and the held-out likelihood report: one draw everywhere, honest names and units."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engines.data import load_dataset, parse_spec
from engines.data.binarize import binarize_examples
from engines.data.files import array_dataset
from engines.metrics.likelihood import HeldOutProbe, held_out_likelihood, likelihood_space, term_name
from engines.shared.datainfo import split_binarized, with_binarized
from engines.shared.errors import DataError
from engines.shared.registry import create_engine
from engines.shared.results import HeldOutLikelihood

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_binarized_spec_round_trips_and_refuses_points():
    assert split_binarized("Binarized:digits") == ("digits", True)
    assert split_binarized("digits") == ("digits", False)
    assert with_binarized("digits", True) == "binarized:digits" == with_binarized("binarized:digits", True)
    assert with_binarized("binarized:idx:/a:b.gz", False) == "idx:/a:b.gz"
    assert parse_spec("binarized:shapes:16") == ("shapes", "16")
    with pytest.raises(DataError, match="only images"):
        parse_spec("binarized:ring")
    with pytest.raises(DataError, match="only images"):
        load_dataset("binarized:grid")


def test_binarisation_is_static_seeded_and_index_keyed():
    d = load_dataset("binarized:digits:8")
    grey = load_dataset("digits:8")
    assert d.info.binarized == 0 and d.info.spec == "binarized:digits:8"
    assert set(np.unique(d.x)) <= {0.0, 1.0}
    assert np.array_equal(d.train_indices, grey.train_indices)  # the same split
    assert np.array_equal(d.y, grey.y)
    # the mean of the binary images follows the grey levels (each pixel is Bernoulli(grey))
    assert abs(float(d.x.mean()) - float(grey.x.mean())) < 0.01
    # example i is the same whichever batch it is read in, and the same on a second load
    again = load_dataset("binarized:digits:8")
    assert np.array_equal(d.get(np.array([5, 3])), again.get(np.array([5, 3])))
    assert np.array_equal(binarize_examples(grey.x[[7]], np.array([7])), d.x[[7]])


def test_lazy_data_sets_binarise_the_same_way():
    lazy = load_dataset("binarized:shapes:8")
    grey = load_dataset("shapes:8")
    idx = np.array([11, 2, 40])
    a = lazy.get(idx)
    assert set(np.unique(a)) <= {0.0, 1.0}
    assert np.array_equal(a[1], lazy.get(np.array([2]))[0])
    assert np.array_equal(a, binarize_examples(grey.get(idx), idx))
    assert np.array_equal(lazy.factor_values(idx), grey.factor_values(idx))


def _binary_data(n: int = 60, side: int = 8):
    rng = np.random.default_rng(0)
    x = (rng.random((n, 1, side, side)) < 0.3).astype(np.float32)
    return array_dataset("toy", x, np.arange(n) % 3, ("a", "b", "c"))


def test_held_out_likelihood_of_a_vae_names_its_bound_and_space():
    data = _binary_data()
    engine = create_engine("vae", data.info, latent_dim=2, width=4, hidden=16)
    result = held_out_likelihood(engine, data, batch_size=4)
    assert isinstance(result, HeldOutLikelihood)
    assert result.kind == "elbo" and result.nats < 0 and result.n == result.n_test == len(data.test_indices)
    assert result.space == "bernoulli-pseudo" and result.bits_per_dim is None  # not flagged as binarised
    assert result.stderr > 0  # a one-sample bound varies over the examples
    back = HeldOutLikelihood.from_json(result.to_json())
    assert back == result and "bits_per_dim" not in result.to_json()
    assert term_name(engine) == "held_out_neg_elbo"
    # measuring draws from its own generator: the same number twice, and the global RNG untouched
    state = torch.random.get_rng_state()
    assert held_out_likelihood(engine, data, batch_size=4).nats == result.nats
    assert torch.equal(state, torch.random.get_rng_state())


def test_bits_per_dim_only_on_discrete_spaces():
    r = HeldOutLikelihood(kind="exact", nats=-64 * math.log(2), stderr=0.0, n=5, n_test=5, dims=64, space="binary")
    assert r.bits_per_dim == pytest.approx(1.0) and r.to_json()["bits_per_dim"] == pytest.approx(1.0)
    assert "bits/dim" in r.summary() and "NLL" in r.summary()
    assert HeldOutLikelihood("exact", -3.0, 0.0, 5, 5, 2, "continuous").bits_per_dim is None


def test_binarised_data_make_a_bernoulli_likelihood_binary():
    data = load_dataset("binarized:digits:8")
    engine = create_engine("vae", data.info, latent_dim=2, width=4, hidden=16)
    assert likelihood_space(engine) == "binary"
    result = held_out_likelihood(engine, data, max_examples=40, batch_size=20)
    assert result.n == 40 and result.n_test == len(data.test_indices) and result.bits_per_dim > 0


def test_probe_restores_the_training_mode():
    data = _binary_data()
    engine = create_engine("vae", data.info, latent_dim=2, width=4, hidden=16)
    engine.train()
    probe = HeldOutProbe(engine, data, n=8)
    value = probe.measure(engine)
    assert engine.training and math.isfinite(value) and value > 0 and probe.seconds >= 0
    assert probe.measure(engine) == value


def test_density_map_and_warped_grid_over_the_plane():
    from engines.worker.live_metrics import critic_extent, density_map, has_density_map, warped_grid
    from studio.features.coverage.state import grid_polyline
    from studio.widgets.basic import density_levels

    ring = load_dataset("ring")
    vae = create_engine("vae", ring.info, latent_dim=2, hidden=16)
    assert has_density_map(vae, ring)
    extent = critic_extent(ring.info.modes, ring.info.mode_std)
    m = density_map(vae, extent, size=16)
    assert m.shape == (16, 16) and np.isfinite(m).all()
    assert np.array_equal(m, density_map(vae, extent, size=16))  # the bound's draws are seeded
    lo, hi = density_levels(m)
    assert hi == pytest.approx(float(m.max())) and hi - lo <= 10.0 + 1e-6
    lines = warped_grid(vae, lines=3, points=5)  # any decoder maps the z-grid; flows invert exactly
    assert lines.shape == (6, 5, 2)
    x, y, connect = grid_polyline(lines)
    assert len(x) == len(y) == len(connect) == 30 and connect.sum() == 6 * 4
