"""The VQ-VAE's learnt prior (issue 16): a categorical PixelCNN over the code grid (van den Oord et al. 2016; 2017).

The masks are causal in raster order and the first kernel spanning the grid leaves no blind spot; on synthetic code
grids with structure the prior's NLL falls far below the uniform G^2 log K and its draws keep the structure;
seeded draws repeat and are one-hot; fitting the prior leaves the VQ-VAE's own training untouched; checkpoints
keep the prior and its optimiser.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engines.data.files import array_dataset
from engines.lib.checkpoint import load_checkpoint, save_checkpoint
from engines.lib.masked_conv import CategoricalPixelCNN, MaskedConv2d, causal_mask
from engines.shared.errors import ConfigError
from engines.shared.registry import create_engine

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: A 16x16 image gives a 4x4 code grid.
SIDE, K = 16, 8


@pytest.fixture(scope="module")
def info():
    x = np.random.default_rng(0).random((32, 1, SIDE, SIDE)).astype(np.float32)
    return array_dataset("vq-prior", (x > 0.5).astype(np.float32)).info


def structured_codes(n: int, grid: int, k: int, gen: torch.Generator) -> torch.Tensor:
    """(n, G, G) grids: half constant at a random code c, half the diagonal stripes (c + i + j) mod K."""
    c = torch.randint(0, k, (n, 1, 1), generator=gen)
    ramp = torch.arange(grid)[:, None] + torch.arange(grid)[None, :]
    stripes = torch.rand(n, 1, 1, generator=gen) < 0.5
    return torch.where(stripes, (c + ramp) % k, c.expand(n, grid, grid))


def is_structured(idx: torch.Tensor, k: int) -> torch.Tensor:
    """(n,) whether each grid (n, G, G) is constant or diagonal stripes from its first code."""
    g = idx.shape[-1]
    first = idx[:, :1, :1]
    ramp = torch.arange(g)[:, None] + torch.arange(g)[None, :]
    constant = (idx == first).flatten(1).all(1)
    stripes = (idx == (first + ramp) % k).flatten(1).all(1)
    return constant | stripes


def test_the_masks_hide_the_centre_under_a_and_show_it_under_b() -> None:
    a, b = causal_mask(3, "A"), causal_mask(3, "B")
    assert a.tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert b.tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    with pytest.raises(ConfigError):
        causal_mask(4, "A")
    with pytest.raises(ConfigError):
        MaskedConv2d("C", 1, 1, 3)


@pytest.mark.parametrize("kernel", [3, 9])
def test_a_positions_logits_see_only_earlier_positions(kernel: int) -> None:
    """Changing the code at p never changes the logits at p or before it; with a first kernel of 2 G - 1 it
    changes those of every later position (no blind spot); with 3 it misses some up and to the right."""
    torch.manual_seed(0)
    g = 5
    net = CategoricalPixelCNN(K, width=8, layers=2, kernel=kernel).double()
    idx = torch.randint(0, K, (1, g, g))
    base = net(idx)[0].flatten(1)  # (K, G G)
    blind = 0
    for p in range(g * g):
        other = idx.clone()
        other.view(-1)[p] = (other.view(-1)[p] + 1 + torch.randint(0, K - 1, ())) % K
        changed = (net(other)[0].flatten(1) - base).abs().amax(0) > 0  # (G G,)
        assert not changed[: p + 1].any(), f"position {p} leaks into {changed[: p + 1].nonzero().flatten().tolist()}"
        blind += int((~changed[p + 1:]).sum())
    if kernel == 2 * g - 1:
        assert blind == 0
    else:
        assert blind > 0  # the plain PixelCNN's blind spot, which the wide first kernel removes


def test_the_prior_learns_structured_grids_and_its_draws_keep_the_structure(info) -> None:
    gen = torch.Generator().manual_seed(0)
    vq = create_engine("vq-vae", info, n_categories=K, latent_dim=4, width=8, prior_lr=3e-3)
    g = vq.grid
    assert g == 4 and vq.uniform_nll == pytest.approx(g * g * math.log(K))
    test = structured_codes(256, g, K, gen)
    best = math.log(2 * K)  # the synthetic distribution's entropy: 2 K grids, equally likely
    with torch.no_grad():
        before = float(vq.code_prior_nll(test).mean())
    for _ in range(120):
        terms = vq.fit_prior(structured_codes(64, g, K, gen))
    with torch.no_grad():
        after = float(vq.code_prior_nll(test).mean())
    assert before > 0.8 * vq.uniform_nll, before
    assert after < 0.15 * vq.uniform_nll and after < best + 0.5, (after, best, vq.uniform_nll)
    assert terms["prior_gain"] == pytest.approx(1 - terms["prior_nll"] / vq.uniform_nll)
    z = vq.prior_sample(200, torch.Generator().manual_seed(1))
    drawn = z.view(200, g, g, K).argmax(-1)
    assert float(is_structured(drawn, K).float().mean()) > 0.85
    assert len(drawn[:, 0, 0].unique()) > K // 2  # and not one grid over and over
    uniform = torch.randint(0, K, (200, g, g), generator=gen)
    assert float(is_structured(uniform, K).float().mean()) < 0.01


def test_seeded_draws_repeat_and_are_one_hot(info) -> None:
    vq = create_engine("vq-vae", info, n_categories=K, latent_dim=4, width=8)
    g = vq.grid
    z = vq.prior_sample(6, torch.Generator().manual_seed(3))
    assert z.shape == (6, g * g * K) and z.shape[1] == vq.latent.dim
    assert set(z.unique().tolist()) <= {0.0, 1.0} and torch.equal(z.view(6, g * g, K).sum(-1), torch.ones(6, g * g))
    assert torch.equal(z, vq.prior_sample(6, torch.Generator().manual_seed(3)))
    assert not torch.equal(z, vq.prior_sample(6, torch.Generator().manual_seed(4)))
    assert vq.sample(3, torch.Generator().manual_seed(0)).shape == (3, 1, SIDE, SIDE)


def test_fitting_the_prior_leaves_the_vq_vae_untouched_and_logs_its_nll(info) -> None:
    x = (torch.rand(16, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    with_prior = create_engine("vq-vae", info, n_categories=K, latent_dim=4, width=8)
    without = create_engine("vq-vae", info, n_categories=K, latent_dim=4, width=8, prior=False)
    for step in range(3):
        terms = with_prior.training_step(x, step)
        plain = without.training_step(x, step)
    mine = {k: v for k, v in with_prior.state_dict().items() if not k.startswith("prior.")}
    assert mine.keys() == without.state_dict().keys()
    assert all(torch.equal(v, without.state_dict()[k]) for k, v in mine.items())
    assert 0 < terms["prior_nll"] < 1.5 * with_prior.uniform_nll and "prior_nll" not in plain
    assert set(with_prior.optimizer_states()) == {"adam", "prior_adam"} and set(without.optimizer_states()) == {"adam"}
    idx = torch.zeros(2, 4, 4, dtype=torch.long)
    torch.testing.assert_close(without.code_prior_nll(idx), torch.full((2,), 16 * math.log(K)))
    with pytest.raises(ConfigError, match="prior=False"):
        without.fit_prior(idx)
    z = without.prior_sample(4, torch.Generator().manual_seed(0))  # uniform draws, one-hot
    assert torch.equal(z.view(4, 16, K).sum(-1), torch.ones(4, 16))


def test_a_checkpoint_keeps_the_prior_and_its_optimiser(info, tmp_path) -> None:
    vq = create_engine("vq-vae", info, n_categories=K, latent_dim=4, width=8)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        vq.fit_prior(structured_codes(16, vq.grid, K, gen))
    path = save_checkpoint(vq, tmp_path / "model.safetensors", step=3, data_spec="vq-prior")
    again, _ = load_checkpoint(path, with_optimizer=True)
    draw = lambda engine: engine.prior_sample(5, torch.Generator().manual_seed(2))  # noqa: E731
    assert torch.equal(draw(vq), draw(again))
    assert again.prior_opt.state_dict()["state"].keys() == vq.prior_opt.state_dict()["state"].keys()
    codes = structured_codes(4, vq.grid, K, gen)
    vq.fit_prior(codes)
    again.fit_prior(codes)
    assert all(torch.equal(a, b) for a, b in zip(vq.prior.parameters(), again.prior.parameters()))


def test_a_checkpoint_from_before_the_prior_loads_without_one(tmp_path) -> None:
    """A VQ-VAE checkpoint whose manifest has no "prior" setting was written before the prior existed."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    rng = np.random.default_rng(0)
    data = array_dataset("old", (rng.random((16, 1, 8, 8)) > 0.5).astype(np.float32))
    old = create_engine("vq-vae", data.info, latent_dim=4, n_categories=8, width=8, prior=False)
    path = save_checkpoint(old, tmp_path / "old.safetensors", step=3, data_spec="old")
    tensors = load_file(str(path))
    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata())
    key = next(k for k, v in meta.items() if '"prior"' in v)
    manifest = json.loads(meta[key])
    manifest["config"].pop("prior")
    meta[key] = json.dumps(manifest)
    save_file(tensors, str(path), metadata=meta)
    again, _ = load_checkpoint(path)
    assert again.config.prior is False and torch.equal(again.codebook, old.codebook)
