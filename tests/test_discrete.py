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


def test_vq_straight_through_passes_the_decoders_gradient_to_the_encoder(digits) -> None:
    torch.manual_seed(0)
    vq = create_engine("vq-vae", digits.info, latent_dim=4, n_categories=8, width=16)
    x = torch.as_tensor(digits.x[digits.train_indices[:8]])
    z_e = vq.encoder(x)
    z_q = vq.lookup(vq.codes(z_e)).detach().requires_grad_(True)
    recon = F.binary_cross_entropy_with_logits(vq.decoder(z_q), x, reduction="sum")
    (g_q,) = torch.autograd.grad(recon, z_q)
    st = z_e + (z_q.detach() - z_e).detach()
    recon_st = F.binary_cross_entropy_with_logits(vq.decoder(st), x, reduction="sum")
    (g_e,) = torch.autograd.grad(recon_st, z_e)
    torch.testing.assert_close(g_e, g_q)  # the quantisation is skipped backwards
    assert torch.equal(vq.codes(z_e), vq.codes(z_e + 0 * z_e))


def test_vq_ema_moves_each_code_to_the_mean_of_its_vectors_and_training_uses_the_codebook(digits) -> None:
    torch.manual_seed(0)
    vq = create_engine("vq-vae", digits.info, latent_dim=4, n_categories=8, width=16, ema=True, ema_decay=0.01)
    assert not vq.codebook.requires_grad
    x = torch.as_tensor(digits.x[digits.train_indices[:64]])
    with torch.no_grad():
        z_e = vq.encoder(x)
        idx = vq.codes(z_e)
    vq.training_step(x, 0)  # decay 0.01: the codebook is (almost) this batch's means
    flat, assigned = z_e.permute(0, 2, 3, 1).reshape(-1, 4), idx.reshape(-1)
    for k in assigned.unique().tolist():
        torch.testing.assert_close(vq.codebook[k], flat[assigned == k].mean(0), atol=0.02, rtol=0.02)
    trained = create_engine("vq-vae", digits.info, latent_dim=8, n_categories=16, width=32, lr=3e-3)
    first = trained.training_step(x, 0)
    for step in range(1, 80):
        terms = trained.training_step(x, step)
    assert terms["recon"] < first["recon"] and 1.0 < terms["perplexity"] <= 16.0
    codes = trained.encode(x[:2])
    assert codes.shape == (2, 4 * 16) and torch.equal(codes.view(2, 4, 16).sum(-1), torch.ones(2, 4))
    assert trained.decode(codes).shape == (2, 1, 8, 8)
