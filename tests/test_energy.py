"""The RBM (issue 16, first part): its free energy and exact partition function on enumerable RBMs, AIS against
the exact log Z within its standard error, CD-k's gradient against the exact log-likelihood gradient, and
training that raises the exact likelihood."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from engines.data.files import array_dataset
from engines.lib.ais import ais_log_z, default_betas, exact_log_z, free_energy
from engines.shared.registry import create_engine

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def all_states(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def random_rbm(V: int, H: int, scale: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(V, H, generator=g, dtype=torch.float64),
            0.5 * torch.randn(V, generator=g, dtype=torch.float64), 0.5 * torch.randn(H, generator=g, dtype=torch.float64))


def test_the_exact_partition_function_sums_the_joint_over_every_state() -> None:
    W, b, c = random_rbm(5, 4, 1.0)
    v, h = all_states(5), all_states(4)
    energy = -(v @ b)[:, None] - (h @ c)[None, :] - v @ W @ h.T  # E(v, h) for every pair
    brute = float(torch.logsumexp(-energy.reshape(-1), 0))
    assert exact_log_z(W, b, c) == pytest.approx(brute, abs=1e-9)
    log_p = -free_energy(v, W, b, c) - exact_log_z(W, b, c)  # the free energy sums h out
    assert float(torch.logsumexp(log_p, 0)) == pytest.approx(0.0, abs=1e-9)  # p(v) sums to 1


def test_ais_finds_the_exact_log_z_within_its_standard_error() -> None:
    W, b, c = random_rbm(24, 10, 0.6, seed=3)
    exact = exact_log_z(W, b, c)
    estimate, se = ais_log_z(W, b, c, runs=400, betas=default_betas(2000),
                             generator=torch.Generator().manual_seed(0))
    assert 0 < se < 0.2
    assert abs(estimate - exact) < 3 * se + 1e-3, (estimate, exact, se)


def tiny_images(n: int = 8) -> object:
    """Two 3x3 binary patterns (a bar and its complement), repeated: data an RBM can learn."""
    bar = np.array([[0, 1, 0]] * 3, np.float32)
    x = np.stack([bar if i % 2 else 1 - bar for i in range(n)])[:, None]
    return array_dataset("bars", x)


def test_cd_k_with_long_chains_follows_the_exact_log_likelihood_gradient() -> None:
    data = tiny_images(40)
    torch.manual_seed(0)
    rbm = create_engine("rbm", data.info, latent_dim=3, k=100, seed=1).double()
    with torch.no_grad():
        rbm.W.normal_(0, 0.5)
    x = torch.as_tensor(data.x[data.train_indices], dtype=torch.float64)
    # the exact gradient of the mean log-likelihood, by autograd through -F(x) - log Z (Z summed exactly)
    W = rbm.W.detach().clone().requires_grad_(True)
    states = all_states(9)
    log_z = torch.logsumexp(-free_energy(states, W, rbm.b.detach(), rbm.c.detach()), 0)
    (-(free_energy(x.flatten(1), W, rbm.b.detach(), rbm.c.detach())).mean() - log_z).backward()
    exact = W.grad
    # CD-100 from 4,000 copies of the data: the negative phase is close to the model's expectation
    for group in rbm.opt.param_groups:
        group["lr"], group["momentum"], group["weight_decay"] = 0.0, 0.0, 0.0
    big = x.repeat(100, 1, 1, 1)
    rbm.training_step(big, 0)
    estimate = -rbm.W.grad
    assert torch.allclose(estimate, exact, atol=0.03), (estimate - exact).abs().max()


def test_training_raises_the_exact_likelihood_and_log_prob_is_normalised() -> None:
    data = tiny_images(64)
    for persistent in (False, True):
        torch.manual_seed(0)
        rbm = create_engine("rbm", data.info, latent_dim=4, lr=0.1, persistent=persistent, chains=32, seed=0)
        x = torch.as_tensor(data.x[:2])
        before = float(rbm.log_prob(x).mean())
        for step in range(300):
            rbm.training_step(torch.as_tensor(data.x[np.arange(step * 8, step * 8 + 8) % 64]), step)
        after = float(rbm.log_prob(x).mean())
        assert after > before + 1.0, (persistent, before, after)
        total = torch.logsumexp(rbm.log_prob(all_states(9).float().view(-1, 1, 3, 3)), 0)
        assert float(total) == pytest.approx(0.0, abs=1e-4)  # the 512 images' probabilities sum to 1
    s = rbm.sample(16, torch.Generator().manual_seed(0))
    assert s.shape == (16, 1, 3, 3) and 0 <= float(s.min()) and float(s.max()) <= 1
    assert rbm.latent.kinds == ("binary",) and rbm.encode(x).shape == (2, 4)


def test_a_large_rbm_estimates_log_z_by_ais_once_per_weights(monkeypatch) -> None:
    import engines.models.energy.rbm as module

    data = tiny_images(16)
    rbm = create_engine("rbm", data.info, latent_dim=24, ais_runs=20, ais_betas=200)
    calls = []
    real = module.ais_log_z
    monkeypatch.setattr(module, "ais_log_z", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = torch.as_tensor(data.x[:4])
    first = rbm.log_prob(x)
    assert torch.equal(rbm.log_prob(x), first) and len(calls) == 1  # kept while the weights stay
    rbm.training_step(x, 0)
    rbm.log_prob(x)
    assert len(calls) == 2
