"""The Helmholtz machine (issue 16): wake-sleep beside its NVIL-trained twin on the bars problem of Hinton et al.
(1995), with the ELBO checked against the exact log-likelihood of a machine small enough to enumerate."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from engines.data.files import array_dataset
from engines.lib.training import BatchStream
from engines.metrics.likelihood import HeldOutProbe
from engines.shared.errors import ConfigError
from engines.shared.registry import create_engine

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def bars(side: int, n: int = 600, seed: int = 0):
    """``n`` binary side x side images of the bars problem: vertical bars (probability 2/3) or horizontal ones,
    each bar on with probability 0.3, as a data set with a held-out split."""
    rng = np.random.default_rng(seed)
    on = rng.random((n, side)) < 0.3
    vertical = rng.random(n) < 2 / 3
    x = np.where(vertical[:, None, None], on[:, None, :], on[:, :, None]).astype(np.float32)
    return array_dataset(f"bars:{side}", np.ascontiguousarray(np.broadcast_to(x, (n, side, side)))[:, None])


@pytest.fixture(scope="module")
def bars3():
    return bars(3)


@pytest.fixture(scope="module")
def bars4():
    return bars(4)


def train(engine, dataset, steps: int, batch_size: int = 32) -> dict[str, float]:
    stream = BatchStream(dataset, batch_size, 0, torch.device("cpu"))
    for step in range(steps):
        terms = engine.training_step(next(stream), step)
        assert all(np.isfinite(v) for v in terms.values()), terms
    return terms


def exact(net, v: torch.Tensor) -> tuple[float, float]:
    """log p(v) and the exact ELBO E_q[log p(v, s) - log q(s | v)] of one image v (1, V), nats, by summing over
    every state s of the layers above v."""
    widths = net.sizes[1:]
    grid = torch.tensor(list(itertools.product((0.0, 1.0), repeat=sum(widths))))
    states = [v.expand(len(grid), -1), *torch.split(grid, widths, dim=1)]
    with torch.no_grad():
        log_joint, log_q = sum(net.log_p_terms(states)), sum(net.log_q_terms(states))
    return float(torch.logsumexp(log_joint, 0)), float((log_q.exp() * (log_joint - log_q)).sum())


def test_both_elbos_are_unbiased_estimates_of_a_bound_below_the_exact_log_likelihood(bars3) -> None:
    torch.manual_seed(0)
    engine = create_engine("helmholtz", bars3.info, latent_dim=3, hidden=3, lr=1e-2)
    train(engine, bars3, 150)
    engine.eval()
    gen = torch.Generator().manual_seed(0)
    gaps = []
    for i in bars3.test_indices[:4]:
        x = torch.as_tensor(bars3.get(np.array([i])))
        v = x.flatten(1)
        many = x.expand(4000, -1, -1, -1)
        log_p, elbo = exact(engine.ws, v)
        draws = engine.log_prob(many, gen)
        assert draws.shape == (4000,)
        assert abs(float(draws.mean()) - elbo) < 4 * float(draws.std()) / 4000 ** 0.5 + 1e-3
        log_p_twin, elbo_twin = exact(engine.twin, v)
        assert abs(-engine.held_out_terms(many, gen)["held_out_neg_elbo_vae"] - elbo_twin) < 0.05
        assert elbo <= log_p + 1e-5 and elbo_twin <= log_p_twin + 1e-5
        gaps += [log_p - elbo, log_p_twin - elbo_twin]
    assert max(gaps) > 1e-3  # the bound is not trivially tight


def test_the_sleep_phase_raises_log_q_on_dreams(bars4) -> None:
    torch.manual_seed(0)
    engine = create_engine("helmholtz", bars4.info, latent_dim=8, hidden=0, lr=3e-2)
    with torch.no_grad():  # a peaked posterior p(z | v) for q to learn, held still: only q moves
        engine.ws.gen[0].weight.normal_(0.0, 3.0, generator=torch.Generator().manual_seed(2))
    for p in engine.ws.generative_parameters():
        p.requires_grad_(False)
    before_p = [p.clone() for p in engine.ws.generative_parameters()]
    dreams = engine.ws.dream(512, torch.Generator().manual_seed(1))

    def log_q() -> float:
        with torch.no_grad():
            return float(sum(engine.ws.log_q_terms(dreams)).mean())

    grid = torch.tensor(list(itertools.product((0.0, 1.0), repeat=8)))
    with torch.no_grad():  # the best any q can do: E_p[log p(z | v)], log p(v) summed over all 256 z
        log_p_v = torch.stack([torch.logsumexp(sum(engine.ws.log_p_terms([v.expand(256, -1), grid])), 0)
                               for v in dreams[0]])
        best = float((sum(engine.ws.log_p_terms(dreams)) - log_p_v).mean())
    start = log_q()
    train(engine, bars4, 100)
    assert log_q() > start + 0.6 * (best - start), (start, log_q(), best)  # a factorised q gets about 0.8 of it
    assert all(torch.equal(a, b) for a, b in zip(before_p, engine.ws.generative_parameters()))


def test_wake_sleep_and_the_twin_both_improve_their_held_out_elbo(bars4) -> None:
    torch.manual_seed(0)
    engine = create_engine("helmholtz", bars4.info, latent_dim=8, hidden=8, lr=1e-2)
    assert all(torch.equal(a, b) for a, b in zip(engine.ws.parameters(), engine.twin.parameters()))  # one start
    probe = HeldOutProbe(engine, bars4, n=120)
    first = probe.measure_terms(engine)
    assert set(first) == {"held_out_neg_elbo", "held_out_neg_elbo_vae"}
    assert first["held_out_neg_elbo"] == pytest.approx(first["held_out_neg_elbo_vae"], abs=0.5)
    terms = train(engine, bars4, 300)
    assert {"wake", "sleep", "neg_elbo_ws", "neg_elbo_vae"} <= set(terms)
    last = probe.measure_terms(engine)
    assert all(np.isfinite(v) for v in last.values())
    # 16 pixels: a factorised model costs 9.8 nats, the bars' entropy is about 3
    assert last["held_out_neg_elbo"] < first["held_out_neg_elbo"] - 2.0, (first, last)
    assert last["held_out_neg_elbo_vae"] < first["held_out_neg_elbo_vae"] - 2.0, (first, last)
    assert not torch.equal(engine.ws.gen[0].weight, engine.twin.gen[0].weight)  # separate parameters


def test_latent_sampling_and_the_live_learning_rate(bars4) -> None:
    torch.manual_seed(0)
    engine = create_engine("helmholtz", bars4.info, latent_dim=5, hidden=6)
    engine.eval()
    s = engine.sample(7, torch.Generator().manual_seed(3))
    assert s.shape == (7, 1, 4, 4) and 0 <= float(s.min()) and float(s.max()) <= 1
    assert torch.equal(s, engine.sample(7, torch.Generator().manual_seed(3)))
    z = engine.prior_sample(6, torch.Generator().manual_seed(0))
    assert z.shape == (6, 5) and set(z.unique().tolist()) <= {0.0, 1.0}
    assert engine.decode(z).shape == (6, 1, 4, 4)
    code = engine.encode(torch.as_tensor(bars4.get(np.arange(4))))
    assert code.shape == (4, 5) and 0 <= float(code.min()) and float(code.max()) <= 1
    assert torch.equal(code, engine.encode(torch.as_tensor(bars4.get(np.arange(4)))))  # deterministic
    assert [d.kind for d in engine.latent.dims] == ["binary"] * 5
    engine.set_hyper("lr", 3e-4)
    assert {g["lr"] for opt in engine.optimizer_states().values() for g in opt.param_groups} == {3e-4}


def test_points_are_refused() -> None:
    points = array_dataset("ring", np.zeros((20, 2), np.float32))
    with pytest.raises(ConfigError, match="images"):
        create_engine("helmholtz", points.info)
