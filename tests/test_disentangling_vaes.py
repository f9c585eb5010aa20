"""The disentangling VAEs: annealed capacity, beta-TCVAE, FactorVAE and DIP-VAE.

Their regularisers against hand-made latents with known answers, short training runs on images
and 2-D points, live hyperparameters, and checkpoint round trips through the registry.
"""

from __future__ import annotations

import math

import pytest
import torch

from engines.shared import registry
from engines.lib.checkpoint import load_checkpoint, save_checkpoint
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError
from engines.models.vae.annealed_vae import AnnealedVAE, AnnealedVAEConfig, capacity
from engines.models.vae.beta_tcvae import BetaTCVAE, BetaTCVAEConfig, kl_decomposition
from engines.models.vae.dip_vae import DIPVAE, DIPVAEConfig, dip_penalties, latent_covariance
from engines.models.vae.factor_vae import (
    D_BETAS,
    FactorVAE,
    FactorVAEConfig,
    discriminator,
    discriminator_loss,
    permute_dims,
)
from engines.models.vae.vae import gaussian_kl


pytestmark = pytest.mark.usefixtures("one_torch_thread")


IMAGES = DataInfo(spec="test", kind="image", shape=(1, 16, 16), size=64, n_train=56, n_test=8)
POINTS = DataInfo(spec="test-points", kind="points", shape=(2,), size=512, n_train=460, n_test=52)
SMALL = {"latent_dim": 4, "width": 8, "hidden": 32}

#: name -> (engine class, config class, small settings, extra logged terms)
ENGINES = {
    "annealed-vae": (AnnealedVAE, AnnealedVAEConfig, {"ramp_steps": 10}, {"capacity"}),
    "beta-tcvae": (BetaTCVAE, BetaTCVAEConfig, {}, {"mi", "tc", "dim_kl"}),
    "factor-vae": (FactorVAE, FactorVAEConfig, {"d_hidden": 32, "d_depth": 2}, {"tc_estimate", "d_loss", "d_acc"}),
    "dip-vae": (DIPVAE, DIPVAEConfig, {}, {"dip_od", "dip_d"}),
}


def make(name: str, info: DataInfo = IMAGES, **overrides) -> torch.nn.Module:
    cls, config_cls, small, _ = ENGINES[name]
    settings = {**(SMALL if info.kind == "image" else {"latent_dim": 2}), **small, **overrides}
    engine = cls(config_cls(**settings), info)
    engine.name = name
    return engine


def square_images(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    """(n, 1, size, size) in [0, 1]: a bright square of random side and place on a dark field."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, size, size)
    for i in range(n):
        side = int(torch.randint(size // 4, size // 2 + 1, (1,), generator=g))
        r, c = (int(v) for v in torch.randint(0, size - side + 1, (2,), generator=g))
        x[i, :, r : r + side, c : c + side] = 1.0
    return x


def ring_points(n: int, seed: int = 0) -> torch.Tensor:
    """(n, 2) points from 8 Gaussians (std 0.05) on a circle of radius 2."""
    g = torch.Generator().manual_seed(seed)
    k = torch.randint(0, 8, (n,), generator=g).float() * (2 * math.pi / 8)
    return 2.0 * torch.stack([k.cos(), k.sin()], 1) + 0.05 * torch.randn(n, 2, generator=g)


def expected_loss(name: str, engine, terms: dict[str, float], step: int) -> float:
    """The loss each paper defines, rebuilt from the logged terms and the live hyperparameters."""
    h = engine.h
    if name == "annealed-vae":
        return terms["recon"] + h("gamma") * abs(terms["kl"] - capacity(step, h("c_max"), h("ramp_steps")))
    if name == "beta-tcvae":
        return terms["recon"] + h("alpha") * terms["mi"] + h("beta") * terms["tc"] + h("gamma") * terms["dim_kl"]
    if name == "factor-vae":
        return terms["recon"] + h("beta") * terms["kl"] + h("gamma") * terms["tc_estimate"]
    return terms["recon"] + h("beta") * terms["kl"] + h("lambda_od") * terms["dip_od"] + h("lambda_d") * terms["dip_d"]


# -- training ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(ENGINES))
def test_trains_on_images_with_named_finite_terms(name):
    torch.manual_seed(0)
    engine = make(name)
    x = square_images(64)
    history = []
    for step in range(25):
        terms = engine.training_step(x[(step % 4) * 16 : (step % 4 + 1) * 16], step)
        history.append(terms)
        assert terms["loss"] == pytest.approx(expected_loss(name, engine, terms, step), rel=1e-4, abs=1e-3)
    base = {"recon", "kl", "elbo", "loss"} | {f"kl/z{i}" for i in range(4)}
    assert set(terms) == base | ENGINES[name][3]
    assert all(math.isfinite(v) for t in history for v in t.values())
    assert terms["elbo"] == pytest.approx(-(terms["recon"] + terms["kl"]))
    first = sum(t["recon"] for t in history[:4]) / 4
    last = sum(t["recon"] for t in history[-4:]) / 4
    assert last < 0.9 * first  # it learns to reconstruct
    assert engine.encode(x[:3]).shape == (3, 4) and engine.decode(torch.zeros(2, 4)).shape == (2, 1, 16, 16)


@pytest.mark.parametrize("name", list(ENGINES))
def test_trains_on_points(name):
    torch.manual_seed(0)
    engine = make(name, POINTS)
    x = ring_points(128)
    for step in range(5):
        terms = engine.training_step(x, step)
    assert set(terms) == {"recon", "kl", "elbo", "loss", "sigma", "kl/z0", "kl/z1"} | ENGINES[name][3]
    assert all(math.isfinite(v) for v in terms.values())
    assert engine.sample(3).shape == (3, 2)


# -- annealed capacity -------------------------------------------------------------------------
def test_annealed_capacity_follows_the_ramp_and_changes_live():
    assert [capacity(s, 25.0, 100) for s in (0, 50, 100, 1000)] == [0.0, 12.5, 25.0, 25.0]
    engine = make("annealed-vae", ramp_steps=20, c_max=8.0, gamma=5.0)
    assert "beta" not in engine.hyper and engine.h("gamma") == 5.0
    x = square_images(16)
    caps = {s: engine.training_step(x, s)["capacity"] for s in (0, 5, 10, 20, 40)}
    assert caps == pytest.approx({0: 0.0, 5: 2.0, 10: 4.0, 20: 8.0, 40: 8.0})
    engine.set_hyper("c_max", 30.0)
    engine.set_hyper("ramp_steps", 100.4)
    assert engine.h("ramp_steps") == 100.0  # an integer parameter
    terms = engine.training_step(x, 50)
    assert terms["capacity"] == pytest.approx(15.0)
    assert terms["loss"] == pytest.approx(terms["recon"] + 5.0 * abs(terms["kl"] - 15.0), rel=1e-5)
    defaults = AnnealedVAE(AnnealedVAEConfig(**SMALL), IMAGES)  # the paper's dSprites values
    assert (defaults.h("gamma"), defaults.h("c_max"), defaults.h("ramp_steps")) == (1000.0, 25.0, 100_000.0)
    with pytest.raises(ConfigError):
        engine.set_hyper("ramp_steps", 0.0)
    with pytest.raises(ConfigError):
        engine.set_hyper("beta", 1.0)


# -- beta-TCVAE --------------------------------------------------------------------------------
def grid_posteriors(k: int = 6, scale: float = 1.5, logvar: float = -1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """mu on a full k x k grid (its aggregate posterior is a product over the 2 dimensions)."""
    a = torch.linspace(-scale, scale, k, dtype=torch.float64)
    mu = torch.cartesian_prod(a, a)
    return mu, torch.full_like(mu, logvar)


def test_kl_decomposition_tc_zero_for_independent_dims_and_mws_constants():
    g = torch.Generator().manual_seed(0)
    mu, logvar = grid_posteriors()
    z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g, dtype=torch.float64)
    mi, tc, dim_kl = kl_decomposition(z, mu, logvar, dataset_size=1)  # log(N M) = log M: the batch's own q(z)
    assert abs(tc.item()) < 1e-9  # q(z) = q(z_0) q(z_1) pointwise for a grid
    # Correlated means (on the diagonal z_0 = z_1): clearly positive TC.
    diag = torch.linspace(-2.0, 2.0, 36, dtype=torch.float64)[:, None].expand(-1, 2).contiguous()
    narrow = torch.full_like(diag, -5.0)
    zc = diag + torch.exp(0.5 * narrow) * torch.randn(diag.shape, generator=g, dtype=torch.float64)
    assert kl_decomposition(zc, diag, narrow, dataset_size=1)[1].item() > 0.5
    # The three terms add up to the one-sample KL estimate, for any N; MWS moves them by log N.
    log_q = (-0.5 * (math.log(2 * math.pi) + logvar + (z - mu) ** 2 / logvar.exp())).sum(-1)
    log_p = (-0.5 * (math.log(2 * math.pi) + z**2)).sum(-1)
    n = 1000
    mi_n, tc_n, dim_kl_n = kl_decomposition(z, mu, logvar, dataset_size=n)
    assert (mi_n + tc_n + dim_kl_n).item() == pytest.approx((log_q - log_p).mean().item(), abs=1e-9)
    assert (mi_n - mi).item() == pytest.approx(math.log(n))
    assert (tc_n - tc).item() == pytest.approx(math.log(n))  # (D - 1) log N with D = 2
    assert (dim_kl_n - dim_kl).item() == pytest.approx(-2 * math.log(n))
    with pytest.raises(ValueError):
        kl_decomposition(z, mu[:5], logvar, dataset_size=1)


def test_kl_decomposition_sums_to_the_closed_form_kl_on_average():
    g = torch.Generator().manual_seed(1)
    mu = torch.randn(32, 3, generator=g, dtype=torch.float64)
    logvar = torch.randn(32, 3, generator=g, dtype=torch.float64) * 0.5 - 1.0
    sums = []
    for _ in range(400):
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g, dtype=torch.float64)
        sums.append(sum(kl_decomposition(z, mu, logvar, dataset_size=5000)).item())
    sums_t = torch.tensor(sums)
    closed = gaussian_kl(mu, logvar).sum(-1).mean().item()
    assert abs(sums_t.mean().item() - closed) < 4 * sums_t.std().item() / math.sqrt(len(sums)) + 1e-6


def test_beta_tcvae_with_unit_weights_is_the_elbo_on_average():
    torch.manual_seed(0)
    engine = make("beta-tcvae", alpha=1.0, beta=1.0, gamma=1.0, lr=1e-6)
    assert engine.dataset_size == IMAGES.n_train
    x = square_images(32)
    gaps = []
    for step in range(30):
        t = engine.training_step(x, step)
        assert t["loss"] == pytest.approx(t["recon"] + t["mi"] + t["tc"] + t["dim_kl"], rel=1e-5)
        gaps.append(t["mi"] + t["tc"] + t["dim_kl"] - t["kl"])
    gaps_t = torch.tensor(gaps)
    assert abs(gaps_t.mean().item()) < 4 * gaps_t.std().item() / math.sqrt(len(gaps)) + 0.05


# -- FactorVAE ---------------------------------------------------------------------------------
def test_permute_dims_shuffles_each_dimension_independently():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(500, 3, generator=g)
    z[:, 1] = z[:, 0] + 0.01 * z[:, 1]  # strongly correlated pair
    p = permute_dims(z, generator=g)
    for d in range(3):
        assert torch.equal(p[:, d].sort().values, z[:, d].sort().values)
    assert torch.corrcoef(z.T)[0, 1] > 0.99 and abs(torch.corrcoef(p.T)[0, 1]) < 0.15


def train_discriminator(correlated: bool, steps: int = 150) -> float:
    """Train a small D on z (B, 2) against permuted z; its accuracy on fresh draws."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    d = discriminator(2, hidden=32, depth=2)
    opt = torch.optim.Adam(d.parameters(), lr=3e-3, betas=D_BETAS)

    def draw(n: int) -> torch.Tensor:
        a = torch.randn(n, 2, generator=g)
        if correlated:
            a[:, 1] = 0.98 * a[:, 0] + math.sqrt(1 - 0.98**2) * a[:, 1]
        return a

    for _ in range(steps):
        z = draw(128)
        loss, _ = discriminator_loss(d(z), d(permute_dims(z, generator=g)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        z = draw(2000)
        return discriminator_loss(d(z), d(permute_dims(z, generator=g)))[1].item()


def test_discriminator_detects_correlated_latents_only():
    assert train_discriminator(correlated=True) > 0.75
    assert 0.4 < train_discriminator(correlated=False) < 0.6  # nothing to tell apart


def test_factor_vae_discriminator_has_its_own_adam_and_live_lr():
    engine = make("factor-vae", gamma=35.0, d_lr=2e-4)
    opts = engine.optimizer_states()
    assert set(opts) == {"adam", "discriminator"}
    d_params = {id(p) for p in engine.discriminator.parameters()}
    assert not d_params & {id(p) for g in opts["adam"].param_groups for p in g["params"]}
    assert d_params == {id(p) for g in opts["discriminator"].param_groups for p in g["params"]}
    assert opts["discriminator"].param_groups[0]["betas"] == D_BETAS
    before = [p.detach().clone() for p in engine.discriminator.parameters()]
    terms = engine.training_step(square_images(16), 0)
    assert 0.0 <= terms["d_acc"] <= 1.0 and terms["d_loss"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, engine.discriminator.parameters()))
    engine.set_hyper("d_lr", 5e-5)
    engine.set_hyper("gamma", 10.0)
    assert opts["discriminator"].param_groups[0]["lr"] == 5e-5 and opts["adam"].param_groups[0]["lr"] == 1e-3
    with pytest.raises(ConfigError):
        engine.set_hyper("d_lr", 1.0)
    with pytest.raises(ConfigError):
        make("factor-vae", d_hidden=0)


# -- DIP-VAE -----------------------------------------------------------------------------------
def whitened(n: int, d: int, var: float = 1.0, seed: int = 0) -> torch.Tensor:
    """(n, d) with batch covariance exactly var * I (up to rounding)."""
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x = x - x.mean(0)
    cov = x.T @ x / n
    return x @ torch.linalg.inv(torch.linalg.cholesky(cov)).T * math.sqrt(var)


def test_dip_penalties_zero_for_whitened_means_and_positive_otherwise():
    mu = whitened(256, 4)
    od, d = dip_penalties(latent_covariance(mu))
    assert od.item() < 1e-20 and d.item() < 1e-20
    mixed = mu.clone()
    mixed[:, 1] = 0.8 * mu[:, 0] + 0.6 * mu[:, 1]  # unit variance, correlated with z0
    od, d = dip_penalties(latent_covariance(mixed))
    assert od.item() == pytest.approx(2 * 0.8**2) and d.item() < 1e-12
    od, d = dip_penalties(latent_covariance(2.0 * mu))
    assert od.item() < 1e-12 and d.item() == pytest.approx(4 * 3.0**2)
    # DIP-VAE-II: Cov q(z) = Cov[mu] + E[var]; half from each gives the identity.
    half = whitened(256, 4, var=0.5)
    logvar = torch.full_like(half, math.log(0.5))
    assert sum(dip_penalties(latent_covariance(half, logvar))).item() < 1e-12
    assert dip_penalties(latent_covariance(half))[1].item() == pytest.approx(4 * 0.25)


def test_dip_vae_types_defaults_and_live_weights():
    one, two = make("dip-vae"), make("dip-vae", dip_type="II")
    assert (one.h("lambda_od"), one.h("lambda_d")) == (10.0, 100.0)
    assert two.config.dip_type == "ii" and (two.h("lambda_od"), two.h("lambda_d")) == (10.0, 10.0)
    assert make("dip-vae", lambda_d=3.0).h("lambda_d") == 3.0
    x = square_images(16)
    two.set_hyper("lambda_od", 0.0)
    two.set_hyper("lambda_d", 0.0)
    terms = two.training_step(x, 0)
    assert terms["loss"] == pytest.approx(terms["recon"] + terms["kl"], rel=1e-5)
    two.set_hyper("lambda_d", 500.0)
    terms = two.training_step(x, 1)
    assert terms["loss"] == pytest.approx(terms["recon"] + terms["kl"] + 500.0 * terms["dip_d"], rel=1e-5)
    with pytest.raises(ConfigError):
        make("dip-vae", dip_type="iii")
    with pytest.raises(ConfigError):
        two.set_hyper("lambda_od", -1.0)


# -- live weights of beta-TCVAE and checkpoints ------------------------------------------------
def test_beta_tcvae_weights_change_live():
    engine = make("beta-tcvae")
    assert (engine.h("alpha"), engine.h("beta"), engine.h("gamma")) == (1.0, 6.0, 1.0)
    x = square_images(16)
    engine.set_hyper("beta", 0.0)
    engine.set_hyper("alpha", 2.0)
    t = engine.training_step(x, 0)
    assert t["loss"] == pytest.approx(t["recon"] + 2.0 * t["mi"] + t["dim_kl"], rel=1e-5)
    with pytest.raises(ConfigError):
        engine.set_hyper("gamma", 101.0)


REGISTRY_LINES = {
    "annealed-vae": ("engines.models.vae.annealed_vae:AnnealedVAE", "annealed"),
    "beta-tcvae": ("engines.models.vae.beta_tcvae:BetaTCVAE", "beta-TCVAE"),
    "factor-vae": ("engines.models.vae.factor_vae:FactorVAE", "FactorVAE"),
    "dip-vae": ("engines.models.vae.dip_vae:DIPVAE", "DIP-VAE"),
}


@pytest.mark.parametrize("name", list(ENGINES))
def test_checkpoint_round_trip_through_the_registry(name, tmp_path, monkeypatch):
    target, description = REGISTRY_LINES[name]
    monkeypatch.setitem(registry.MODELS, name, registry.ModelEntry(name, "vae", target, description))
    torch.manual_seed(0)
    engine = make(name)
    x = square_images(32)
    for step in range(3):
        engine.training_step(x[:16], step)
    live = {"annealed-vae": ("c_max", 7.0), "beta-tcvae": ("beta", 3.0), "factor-vae": ("d_lr", 3e-4),
            "dip-vae": ("lambda_d", 42.0)}[name]
    engine.set_hyper(*live)
    path = save_checkpoint(engine, tmp_path / "model.safetensors", step=3, data_spec="test", image_size=16)
    loaded, manifest = load_checkpoint(path)
    assert type(loaded) is type(engine) and manifest["step"] == 3
    assert loaded.config == engine.config and loaded.h(live[0]) == live[1]
    for key, value in engine.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert set(loaded.optimizer_states()) == set(engine.optimizer_states())
    for opt_name, opt in engine.optimizer_states().items():
        a, b = opt.state_dict(), loaded.optimizer_states()[opt_name].state_dict()
        assert a["param_groups"] == b["param_groups"]
        assert set(a["state"]) == set(b["state"]) and a["state"]
        for idx, st in a["state"].items():
            assert torch.equal(st["exp_avg"], b["state"][idx]["exp_avg"])
    # Both carry on identically from the same random state.
    torch.manual_seed(5)
    after = engine.training_step(x[16:], 3)
    torch.manual_seed(5)
    assert loaded.training_step(x[16:], 3) == pytest.approx(after, rel=1e-5, abs=1e-6)
