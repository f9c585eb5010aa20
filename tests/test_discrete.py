"""Discrete latents (issue 16): Gumbel-softmax samples and their frequencies, REINFORCE and the relaxation agreeing
on a toy objective's gradient, the four estimators in the categorical VAE and their measured variances."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engines.data import load_dataset
from engines.models.discrete.gumbel_vae import ESTIMATORS, gumbel_softmax, sample_categorical
from engines.shared.registry import create_engine

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LOGITS = torch.tensor([0.5, -0.3, 1.2, 0.0], dtype=torch.float64)


def test_gumbel_softmax_at_low_temperature_is_one_hot_with_the_class_frequencies() -> None:
    gen = torch.Generator().manual_seed(0)
    y = gumbel_softmax(LOGITS.expand(40_000, 4), 0.05, generator=gen)
    assert float(y.max(1).values.mean()) > 0.97  # nearly one-hot
    freq = torch.bincount(y.argmax(1), minlength=4).double() / len(y)
    np.testing.assert_allclose(freq, F.softmax(LOGITS, 0), atol=0.01)
    hard = gumbel_softmax(LOGITS.expand(10, 4).clone().requires_grad_(True), 0.5, hard=True, generator=gen)
    assert set(hard.detach().unique().tolist()) <= {0.0, 1.0}  # straight-through: one-hot forwards
    draws = sample_categorical(F.log_softmax(LOGITS, 0).expand(40_000, 4), gen)
    np.testing.assert_allclose(torch.bincount(draws, minlength=4).double() / 40_000, F.softmax(LOGITS, 0), atol=0.01)


def test_reinforce_and_the_relaxation_agree_on_a_toy_objectives_gradient() -> None:
    """E_q[c . z] over a categorical q = softmax(l): the exact gradient is p (c - p.c); REINFORCE is unbiased,
    the Gumbel-softmax relaxation close at a low temperature."""
    c = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    p = F.softmax(LOGITS, 0)
    exact = p * (c - (p * c).sum())
    n = 200_000
    gen = torch.Generator().manual_seed(1)
    logits = LOGITS.expand(n, 4).clone().requires_grad_(True)
    (gumbel_softmax(logits, 0.1, generator=gen) @ c).sum().backward()
    relaxed = logits.grad.mean(0)
    logits.grad = None
    log_q = F.log_softmax(logits, -1)
    z = F.one_hot(sample_categorical(log_q.detach(), gen), 4).double()
    ((z @ c) * (log_q * z).sum(1)).sum().backward()
    reinforce, se = logits.grad.mean(0), logits.grad.std(0) / n ** 0.5
    assert bool(((reinforce - exact).abs() < 4 * se).all()), (reinforce, exact, se)
    np.testing.assert_allclose(relaxed, exact, atol=0.015)
    np.testing.assert_allclose(relaxed, reinforce, atol=0.02)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("binarized:digits", 8)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_each_estimator_trains_the_categorical_vae(digits, estimator: str) -> None:
    torch.manual_seed(0)
    vae = create_engine("gumbel-vae", digits.info, latent_dim=4, n_categories=5, hidden=64, estimator=estimator,
                        variance_every=20, variance_draws=4, lr=3e-3)
    x = torch.as_tensor(digits.x[digits.train_indices[:256]])
    first = None
    for step in range(60):
        terms = vae.training_step(x[(step % 8) * 32:(step % 8 + 1) * 32], step)
        assert all(np.isfinite(v) for v in terms.values()), terms
        first = first if first is not None else terms
    assert set(f"grad_var/{e}" for e in ESTIMATORS) <= set(first)
    assert terms["recon"] < first["recon"]  # it learnt
    if estimator == "nvil":
        assert "baseline_mse" in terms
    z = vae.encode(x[:3])
    assert z.shape == (3, 20) and torch.allclose(z.view(3, 4, 5).sum(-1), torch.ones(3, 4))
    assert vae.decode(vae.prior_sample(2)).shape == (2, 1, 8, 8)


def test_the_score_function_pays_in_variance_what_the_relaxation_pays_in_bias(digits) -> None:
    torch.manual_seed(0)
    vae = create_engine("gumbel-vae", digits.info, latent_dim=4, n_categories=5, hidden=64)
    x = torch.as_tensor(digits.x[digits.train_indices[:16]])
    var = vae.gradient_variance(x, 1.0, draws=16, generator=torch.Generator().manual_seed(0))
    assert var["reinforce"] > 10 * var["gumbel"], var
    assert var["nvil"] < var["reinforce"] * 2  # an untrained baseline does not help yet, but it must not hurt much


def test_the_temperature_anneals_to_its_floor(digits) -> None:
    vae = create_engine("gumbel-vae", digits.info, temperature=2.0, anneal_rate=0.01, tau_min=0.5)
    assert vae.tau(0) == 2.0 and vae.tau(100) == pytest.approx(2.0 * np.exp(-1.0)) and vae.tau(10_000) == 0.5
    vae.set_hyper("temperature", 1.0)  # live: the schedule starts from the new value
    assert vae.tau(0) == 1.0
