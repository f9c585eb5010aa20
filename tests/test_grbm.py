"""The Gaussian-Bernoulli RBM (issue 16): its exact log Z against a numerical integral, its pixel-space density
normalised, AIS against the exact log Z, CD-k's gradients (W and the learnt variances) against the exact
log-likelihood gradient, training on smooth grey images, and the chain interface the Energy tab uses."""

from __future__ import annotations

import itertools
import math
import threading

import numpy as np
import pytest
import torch

from engines.data.files import array_dataset
from engines.lib.ais import default_betas
from engines.lib.ais_gaussian import ais_log_z_gaussian, exact_log_z_gaussian, free_energy_gaussian
from engines.shared.errors import ConfigError
from engines.shared.registry import create_engine

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def all_states(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def random_grbm(V: int, H: int, scale: float, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """W, b, c, log_var in float64."""
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(V, H, generator=g, dtype=torch.float64),
            0.5 * torch.randn(V, generator=g, dtype=torch.float64),
            0.5 * torch.randn(H, generator=g, dtype=torch.float64),
            0.4 * torch.randn(V, generator=g, dtype=torch.float64))


def test_exact_log_z_matches_a_numerical_integral_of_the_joint() -> None:
    W, b, c, log_var = random_grbm(2, 3, 0.8, seed=1)
    step = 0.02
    axis = torch.arange(-12.0, 12.0, step, dtype=torch.float64)
    v = torch.cartesian_prod(axis, axis)  # (K, 2): a grid wide enough for every component
    h = all_states(3)
    var = torch.exp(log_var)
    energy = (0.5 * ((v[:, None, :] - b) ** 2 / var).sum(-1) - (h @ c)[None, :]
              - ((v / var) @ W @ h.T))  # E(v, h) for every grid point and hidden state
    brute = float(torch.logsumexp(-energy.reshape(-1), 0)) + 2 * math.log(step)
    assert exact_log_z_gaussian(W, b, c, log_var) == pytest.approx(brute, abs=1e-6)
    # the free energy sums h out
    assert torch.allclose(free_energy_gaussian(v[:50], W, b, c, log_var), -torch.logsumexp(-energy[:50], 1))


def tiny_pixels(n: int, seed: int = 0) -> object:
    """n grey 1x2 images in [0, 1] with correlated pixels."""
    rng = np.random.default_rng(seed)
    a = rng.random(n)
    x = np.stack([a, np.clip(a + 0.2 * rng.standard_normal(n), 0, 1)], 1).astype(np.float32)
    return array_dataset("pairs", x.reshape(n, 1, 1, 2))


def test_the_pixel_space_density_integrates_to_one() -> None:
    data = tiny_pixels(64)
    grbm = create_engine("grbm", data.info, latent_dim=3, learn_sigma=True).double()
    grbm.training_step(torch.as_tensor(data.x, dtype=torch.float64), 0)  # sets the standardisation
    with torch.no_grad():  # weights far from their start, unequal variances
        W, b, c, log_var = random_grbm(2, 3, 0.8, seed=2)
        grbm.W.copy_(W), grbm.b.copy_(b), grbm.c.copy_(c), grbm.log_var.copy_(log_var)
    grbm._version += 1
    m, s = grbm.pixel_mean, grbm.pixel_std()
    assert float(s.min()) > 0.1
    step = 0.004
    axes = [torch.arange(float(m[i] - 14 * s[i]), float(m[i] + 14 * s[i]), step, dtype=torch.float64) for i in (0, 1)]
    x = torch.cartesian_prod(*axes).view(-1, 1, 1, 2)
    total = float(torch.logsumexp(grbm.log_prob(x), 0)) + 2 * math.log(step)
    assert total == pytest.approx(0.0, abs=1e-4)  # log of the integral of p(x) over the plane


def test_ais_finds_the_exact_log_z_within_its_standard_error() -> None:
    W, b, c, log_var = random_grbm(20, 10, 0.3, seed=3)
    exact = exact_log_z_gaussian(W, b, c, log_var)
    estimate, se = ais_log_z_gaussian(W, b, c, log_var, runs=200, betas=default_betas(1000),
                                      generator=torch.Generator().manual_seed(0))
    assert 0 < se < 0.2
    assert abs(estimate - exact) < 3 * se + 1e-3, (estimate, exact, se)


def test_cd_k_with_long_chains_follows_the_exact_gradients_of_w_and_the_variances() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((40, 1, 1, 3)).astype(np.float32)
    data = array_dataset("triples", x)
    torch.manual_seed(0)
    grbm = create_engine("grbm", data.info, latent_dim=2, k=100, learn_sigma=True, seed=1).double()
    for group in grbm.opt.param_groups:
        group["lr"], group["momentum"], group["weight_decay"] = 0.0, 0.0, 0.0
    with torch.no_grad():
        W, b, c, log_var = random_grbm(3, 2, 0.5, seed=4)
        grbm.W.copy_(W), grbm.b.copy_(b), grbm.c.copy_(c), grbm.log_var.copy_(log_var)
    big = torch.as_tensor(x, dtype=torch.float64).repeat(500, 1, 1, 1)  # 20,000 chains, started at the data
    grbm.training_step(big, 0)  # CD-100: the negative phase is close to the model's expectation
    cd_w, cd_log_var = -grbm.W.grad, -grbm.log_var.grad
    # the exact gradients of the mean log-likelihood, by autograd through -F(v) - log Z (Z in closed form)
    v = grbm.standardise(torch.as_tensor(x, dtype=torch.float64))
    W, log_var = W.clone().requires_grad_(True), log_var.clone().requires_grad_(True)
    h = all_states(2)
    wh = h @ W.T
    log_z = torch.logsumexp(h @ c + (0.5 * wh * (2 * b + wh) / torch.exp(log_var)).sum(1), 0) + 0.5 * log_var.sum()
    (-free_energy_gaussian(v, W, b, c, log_var).mean() - log_z).backward()
    assert torch.allclose(cd_w, W.grad, atol=0.05), (cd_w - W.grad).abs().max()
    assert torch.allclose(cd_log_var, log_var.grad, atol=0.05), (cd_log_var - log_var.grad).abs().max()


def smooth_images(n: int, side: int = 8, seed: int = 0) -> object:
    """n grey side x side images in [0, 1]: a Gaussian blob at a random place on a random slope."""
    rng = np.random.default_rng(seed)
    r = np.arange(side)
    yy, xx = np.meshgrid(r, r, indexing="ij")
    cy, cx = rng.uniform(1, side - 2, (2, n, 1, 1))
    slope = rng.uniform(-0.3, 0.3, (n, 1, 1))
    x = 0.7 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 4.0) + 0.3 + slope * (xx - side / 2) / side
    return array_dataset("blobs", np.clip(x, 0, 1).astype(np.float32)[:, None])


@pytest.mark.parametrize("learn_sigma", [False, True])
def test_training_on_smooth_grey_images_lowers_the_reconstruction_error(learn_sigma: bool) -> None:
    data = smooth_images(256)
    torch.manual_seed(0)
    grbm = create_engine("grbm", data.info, latent_dim=16, learn_sigma=learn_sigma, lr=0.005, momentum=0.9)
    x = torch.as_tensor(data.x)
    recon = [grbm.training_step(x[np.arange(step * 32, step * 32 + 32) % 256], step)["recon"] for step in range(400)]
    first, last = np.mean(recon[:10]), np.mean(recon[-20:])
    assert last < 0.5 * first, (first, last)
    moved = float(grbm.log_var.detach().abs().max())
    assert moved > 0.05 if learn_sigma else moved == 0.0
    lp = grbm.log_prob(x[:8])
    assert lp.shape == (8,) and torch.isfinite(lp).all()


def test_the_chain_interface_gives_images_in_range() -> None:
    data = smooth_images(64)
    grbm = create_engine("grbm", data.info, latent_dim=24, ais_runs=20, ais_betas=200)
    x = torch.as_tensor(data.x[:4])
    grbm.training_step(torch.as_tensor(data.x[:32]), 0)
    gen = torch.Generator().manual_seed(0)
    v = grbm.chain_start(5, gen)
    assert v.shape == (5, 64)
    for _ in range(3):
        v = grbm.chain_step(v, gen)
    images = grbm.chain_images(v, gen)
    assert images.shape == (5, 1, 8, 8) and 0 <= float(images.min()) and float(images.max()) <= 1
    clamp = grbm.clamp_values(x[:1], gen)
    assert clamp.shape == (1, 64) and torch.allclose(grbm.to_pixels(clamp), x[:1], atol=1e-5)
    hidden = grbm.hidden_layers(x)
    assert len(hidden) == 1 and hidden[0].shape == (4, 24) and torch.equal(hidden[0], grbm.encode(x))
    f = grbm.filters()
    assert f.shape == (24, 1, 8, 8) and 0 <= float(f.min()) and float(f.max()) <= 1
    with pytest.raises(ConfigError, match="one hidden layer"):
        grbm.filters(layer=1)
    s = grbm.sample(6, torch.Generator().manual_seed(1))
    assert s.shape == (6, 1, 8, 8) and torch.equal(s, grbm.sample(6, torch.Generator().manual_seed(1)))
    assert 0 <= float(s.min()) and float(s.max()) <= 1
    # beyond 20 hidden units: no exact log Z, AIS with progress and cancel
    assert grbm.exact_log_z() is None
    done = []
    log_z, se = grbm.estimate_log_z(20, 200, torch.Generator().manual_seed(0), progress=lambda d, t: done.append((d, t)))
    assert math.isfinite(log_z) and se >= 0 and done[-1] == (200, 200)
    cancel = threading.Event()
    cancel.set()
    assert math.isnan(grbm.estimate_log_z(20, 200, torch.Generator().manual_seed(0), cancel=cancel)[0])
    assert torch.isfinite(grbm.log_prob(x)).all()


def test_held_out_free_energy_terms_and_a_continuous_likelihood_space() -> None:
    from engines.metrics.likelihood import likelihood_space

    rng = np.random.default_rng(0)
    x = rng.random((64, 1, 4, 4)).astype(np.float32)
    data = array_dataset("grey", x)
    grbm = create_engine("grbm", data.info, latent_dim=4)
    assert likelihood_space(grbm) == "continuous" and grbm.held_out_terms(torch.as_tensor(x[:8])) == {}
    for step in range(3):
        grbm.training_step(torch.as_tensor(x[step * 16:(step + 1) * 16]), step)
    terms = grbm.held_out_terms(torch.as_tensor(x[48:]))
    assert int(grbm.train_probe_n) == 48 and set(terms) == {"free_energy_held_out", "free_energy_train",
                                                             "free_energy_gap"}
    assert math.isclose(terms["free_energy_gap"], terms["free_energy_held_out"] - terms["free_energy_train"])
