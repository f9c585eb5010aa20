"""The coupling flows (NICE, RealNVP, Glow) and their invertible layers.

Each layer and each engine is checked on tiny inputs for an exact inverse (float32), for its
log-determinant against the slogdet of the full autograd Jacobian (float64), and the engines for a
density that integrates to 1 on a grid, a falling nll, bits/dim bookkeeping and the image shapes the
studio uses (28x28, 32x32, odd sides).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd.functional import jacobian

from engines.models.flow import layers as L
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError
from engines.shared.registry import create_engine

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ENGINES = ["nice", "realnvp", "glow"]
#: Small settings per engine (each takes only the ones its config has).
SMALL = {"nice": {"hidden": 16, "depth": 4}, "realnvp": {"hidden": 16, "blocks": 2},
         "glow": {"hidden": 16, "levels": 2, "steps": 2}}


def info(shape: tuple[int, ...]) -> DataInfo:
    return DataInfo("test", "points" if len(shape) == 1 else "image", tuple(shape), 64, 48, 16)


def engine(name: str, shape: tuple[int, ...], **overrides):
    return create_engine(name, info(shape), **{**SMALL[name], **overrides})


def ring(n: int, generator: torch.Generator, radius: float = 1.5, std: float = 0.1) -> torch.Tensor:
    """n points from 8 Gaussians on a circle, (n, 2)."""
    k = torch.randint(0, 8, (n,), generator=generator).float()
    centres = radius * torch.stack([torch.cos(k * math.pi / 4), torch.sin(k * math.pi / 4)], 1)
    return centres + std * torch.randn(n, 2, generator=generator)


def tiny_images(n: int, side: int = 8) -> torch.Tensor:
    """n structured grey images (a bright bar at a random row, faint noise), (n, 1, side, side) in [0, 1]."""
    g = torch.Generator().manual_seed(5)
    x = 0.1 * torch.rand(n, 1, side, side, generator=g)
    rows = torch.randint(0, side, (n,), generator=g)
    x[torch.arange(n), 0, rows, :] = 0.9
    return x


def perturb(module: torch.nn.Module, scale: float, seed: int = 0) -> None:
    """Move every parameter off its (often identity) initialisation."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


def jacobian_logdet(forward, x0: torch.Tensor) -> tuple[float, float]:
    """(slogdet of the full Jacobian of the flattened map at one example x0, the map's own logdet)."""
    shape = x0.shape
    jac = jacobian(lambda v: forward(v.view(1, *shape))[0].flatten(), x0.flatten())
    with torch.no_grad():
        own = float(forward(x0.unsqueeze(0))[1][0])
    return float(torch.linalg.slogdet(jac)[1]), own


# -- the layers ------------------------------------------------------------------------------------
LAYERS = {
    "actnorm-image": (lambda: L.ActNorm(2), (2, 4, 4)),
    "actnorm-vector": (lambda: L.ActNorm(3), (3,)),
    "invconv-image": (lambda: L.InvertibleConv1x1(3), (3, 4, 4)),
    "invconv-vector": (lambda: L.InvertibleConv1x1(2), (2,)),
    "additive-checkerboard": (lambda: L.AdditiveCoupling((2, 4, 4), L.checkerboard_mask(4, 4, 1), 8), (2, 4, 4)),
    "additive-channel": (lambda: L.AdditiveCoupling((2, 4, 4), L.channel_mask(2), 8), (2, 4, 4)),
    "additive-interleaved": (lambda: L.AdditiveCoupling((4,), L.vector_mask(4, 0), 8), (4,)),
    "additive-halves": (lambda: L.AdditiveCoupling((4,), L.vector_mask(4, 1, "halves"), 8), (4,)),
    "affine-tanh-checkerboard": (lambda: L.AffineCoupling((2, 4, 4), L.checkerboard_mask(4, 4), 8), (2, 4, 4)),
    "affine-sigmoid-channel": (lambda: L.AffineCoupling((2, 4, 4), L.channel_mask(2, 1), 8, scale="sigmoid"),
                               (2, 4, 4)),
    "affine-tanh-points": (lambda: L.AffineCoupling((2,), L.vector_mask(2, 1), 8), (2,)),
    "affine-sigmoid-halves": (lambda: L.AffineCoupling((4,), L.vector_mask(4, 0, "halves"), 8, scale="sigmoid"),
                              (4,)),
    "scaling-image": (lambda: L.Scaling((2, 4, 4)), (2, 4, 4)),
    "scaling-vector": (lambda: L.Scaling((2,)), (2,)),
    "squeeze": (lambda: L.Squeeze(), (2, 4, 4)),
    "multiscale": (lambda: L.MultiScale(
        L.FlowSequence([L.AffineCoupling((1, 4, 4), L.checkerboard_mask(4, 4), 8)]),
        L.FlowSequence([L.ActNorm(4), L.InvertibleConv1x1(4), L.AffineCoupling((4, 2, 2), L.channel_mask(4), 8)]),
        L.FlowSequence([L.AffineCoupling((2, 2, 2), L.checkerboard_mask(2, 2, 1), 8)]),
    ), (1, 4, 4)),
}


def prepared(name: str, seed: int = 0) -> tuple[torch.nn.Module, tuple[int, ...]]:
    """The layer after one training-mode pass (ActNorm's initialisation) and a perturbation, in eval mode."""
    make, shape = LAYERS[name]
    torch.manual_seed(seed)
    layer = make()
    layer.train()
    layer(torch.randn(16, *shape) * 2 + 0.5)
    perturb(layer, 0.3, seed)
    return layer.eval(), shape


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_inverts_in_float32(name):
    layer, shape = prepared(name)
    x = torch.randn(6, *shape)
    y, logdet = layer(x)
    assert y.shape == (x.shape if name != "squeeze" else (6, 8, 2, 2))
    assert logdet.shape == (6,) and torch.isfinite(logdet).all()
    assert (layer.inverse(y) - x).abs().max() < 1e-4


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_logdet_matches_the_jacobian(name):
    layer, shape = prepared(name, seed=1)
    layer.double()
    x0 = torch.randn(*shape, dtype=torch.float64)
    exact, own = jacobian_logdet(layer, x0)
    assert own == pytest.approx(exact, abs=1e-8)
    if name in ("additive-channel", "squeeze"):
        assert own == 0.0


def test_actnorm_initialises_on_the_first_training_batch_only():
    layer = L.ActNorm(2)
    x = torch.randn(32, 2, 4, 4) * torch.tensor([3.0, 0.5]).view(1, 2, 1, 1) + 2.0
    layer.eval()
    assert torch.equal(layer(x)[0], x) and float(layer.initialised) == 0.0  # eval does not initialise
    layer.train()
    y = layer(x)[0]
    assert float(layer.initialised) == 1.0
    assert torch.allclose(y.mean((0, 2, 3)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(y.std((0, 2, 3), unbiased=False), torch.ones(2), atol=1e-4)
    state = {k: v.clone() for k, v in layer.state_dict().items()}
    again = L.ActNorm(2)
    again.load_state_dict(state, strict=True)
    again.train()
    again(torch.randn(8, 2, 4, 4))  # a loaded layer keeps its statistics
    assert torch.equal(again.bias, state["bias"]) and torch.equal(again.log_scale, state["log_scale"])


def test_invconv_lu_factors():
    torch.manual_seed(0)
    conv = L.InvertibleConv1x1(5)
    perturb(conv, 0.2)
    with torch.no_grad():
        w = conv.weight()
        assert torch.allclose(w @ conv.inverse_weight(), torch.eye(5), atol=1e-5)
        assert float(conv.log_s.sum()) == pytest.approx(float(torch.linalg.slogdet(w)[1]), abs=1e-5)
        _, logdet = conv(torch.randn(2, 5, 3, 3))
        assert float(logdet[0]) == pytest.approx(9 * float(conv.log_s.sum()), abs=1e-4)
    assert set(dict(conv.named_buffers())) == {"perm", "sign_s"}


def test_masks_partition():
    for a, b in [(L.checkerboard_mask(4, 6, 0), L.checkerboard_mask(4, 6, 1)),
                 (L.channel_mask(4, 0), L.channel_mask(4, 1)),
                 (L.vector_mask(5, 0), L.vector_mask(5, 1)),
                 (L.vector_mask(6, 0, "halves"), L.vector_mask(6, 1, "halves"))]:
        assert torch.equal(a + b, torch.ones_like(a)) and 0 < float(a.sum()) < a.numel()
    assert L.checkerboard_mask(2, 2).tolist() == [[[1.0, 0.0], [0.0, 1.0]]]
    assert L.vector_mask(2, 0).tolist() == [1.0, 0.0] == L.vector_mask(2, 0, "halves").tolist()
    with pytest.raises(ConfigError):
        L.vector_mask(4, 0, "stripes")


def test_squeeze_layout_and_levels():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    s = L.squeeze(x)
    assert s.shape == (2, 4, 2, 2) and torch.equal(L.unsqueeze(s), x)
    assert s[0, :, 0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]  # one 2x2 block -> 4 channels
    assert L.squeezes_possible(28, 28) == 2 and L.squeezes_possible(7, 7) == 0
    assert L.squeezes_possible(32, 32, min_side=2) == 4 and L.squeezes_possible(8, 8, min_side=2) == 2


def test_couplings_start_as_the_identity():
    x = torch.randn(3, 2, 4, 4)
    for layer in (L.AffineCoupling((2, 4, 4), L.checkerboard_mask(4, 4), 8),
                  L.AffineCoupling((2, 4, 4), L.channel_mask(2), 8, scale="sigmoid"),
                  L.AdditiveCoupling((2, 4, 4), L.channel_mask(2), 8)):
        y, logdet = layer(x)
        assert torch.equal(y, x) and torch.equal(logdet, torch.zeros(3))


# -- the engines -----------------------------------------------------------------------------------
def trained_a_little(name: str, shape: tuple[int, ...], seed: int = 0):
    """An engine after one training step (ActNorm's initialisation) and a perturbation, in eval mode."""
    eng = engine(name, shape)
    g = torch.Generator().manual_seed(seed)
    batch = ring(16, g) if len(shape) == 1 else torch.rand(16, *shape, generator=g)
    eng.training_step(batch, 0)
    perturb(eng, 0.05, seed)
    return eng.eval()


@pytest.mark.parametrize("shape", [(1, 4, 4), (2,)], ids=["image", "points"])
@pytest.mark.parametrize("name", ENGINES)
def test_engine_inverts_and_logdet_matches_the_jacobian(name, shape):
    eng = trained_a_little(name, shape)
    s = torch.randn(5, *shape) * 1.5
    z, logdet = eng.flow_forward(s)
    assert z.shape == s.shape and logdet.shape == (5,)
    assert (eng.flow_inverse(z) - s).abs().max() < 1e-4
    if len(shape) == 3:
        x = torch.rand(5, *shape)
        code = eng.encode(x)
        assert code.shape == (5, math.prod(shape))
        assert (eng.decode(code) - x).abs().max() < 1e-4
    eng.double()
    exact, own = jacobian_logdet(eng.flow_forward, torch.randn(*shape, dtype=torch.float64))
    assert own == pytest.approx(exact, abs=1e-8)


@pytest.mark.parametrize("name", ENGINES)
def test_image_log_prob_is_the_change_of_variables_of_the_whole_chain(name):
    """log_prob(x) + D log 255 = log N(z(x)) + log |det dz/dx| (x -> y = (255 x + 1/2) / 256 -> logit -> flow)."""
    eng = trained_a_little(name, (1, 4, 4), seed=2)
    x0 = torch.rand(1, 4, 4) * 0.8 + 0.1
    with torch.enable_grad():
        jac = jacobian(lambda v: eng.flow_forward(eng.to_flow_space(v.view(1, 1, 4, 4), noise=False)[0])[0].flatten(),
                       x0.flatten())
    z = eng.encode(x0.unsqueeze(0))
    expected = float(-0.5 * (z.pow(2) + math.log(2 * math.pi)).sum() + torch.linalg.slogdet(jac)[1])
    got = float(eng.log_prob(x0.unsqueeze(0))[0]) + 16 * math.log(255.0)
    assert got == pytest.approx(expected, abs=2e-3)


@pytest.mark.parametrize("name", ENGINES)
def test_points_density_integrates_to_one(name):
    eng = engine(name, (2,), hidden=32, lr=5e-3)
    g = torch.Generator().manual_seed(0)
    for step in range(30):
        eng.train()
        eng.training_step(ring(128, g), step)
    eng.eval()
    n, lo, hi = 400, -4.0, 4.0
    cell = (hi - lo) / n
    centres = lo + cell * (torch.arange(n, dtype=torch.float32) + 0.5)
    grid = torch.cartesian_prod(centres, centres)
    mass = float(eng.log_prob(grid).double().exp().sum()) * cell**2
    assert mass == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("kind", ["image", "points"])
@pytest.mark.parametrize("name", ENGINES)
def test_nll_falls_with_training(name, kind):
    g = torch.Generator().manual_seed(1)
    if kind == "image":
        data, shape = tiny_images(64), (1, 8, 8)
    else:
        data, shape = ring(256, g, radius=2.0, std=0.2) + torch.tensor([1.0, -0.5]), (2,)  # off-centre: N(0, I) fits badly
    eng = engine(name, shape, lr=3e-3)
    held = data[:32]
    before = float(-eng.eval().log_prob(held).mean())
    for step in range(100):
        idx = torch.randint(0, data.shape[0], (32,), generator=g)
        terms = eng.training_step(data[idx], step)
        assert math.isfinite(terms["nll"])
    after = float(-eng.eval().log_prob(held).mean())
    assert after < before - (50.0 if kind == "image" else 0.3), (before, after)


@pytest.mark.parametrize("name", ENGINES)
def test_bits_per_dim_is_nll_over_d_ln2(name):
    eng = engine(name, (1, 8, 8))
    terms = eng.training_step(tiny_images(16), 0)
    assert terms["loss"] == terms["nll"]
    assert terms["bits_per_dim"] == pytest.approx(terms["nll"] / (64 * math.log(2)), rel=1e-9)
    lp = eng.eval().log_prob(tiny_images(4))
    assert lp.shape == (4,) and bool((lp < 0).all())  # a probability of discrete images: below 1
    points = engine(name, (2,)).training_step(ring(16, torch.Generator().manual_seed(0)), 0)
    assert "bits_per_dim" not in points and points["loss"] == points["nll"]


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 32, 32), (3, 32, 32), (1, 9, 9)], ids=str)
@pytest.mark.parametrize("name", ENGINES)
def test_default_model_builds_and_round_trips(name, shape):
    eng = create_engine(name, info(shape))
    x = torch.rand(2, *shape, generator=torch.Generator().manual_seed(0))
    terms = eng.training_step(x, 0)
    assert all(math.isfinite(v) for v in terms.values())
    eng.eval()
    z = eng.encode(x)
    assert z.shape == (2, math.prod(shape)) and eng.latent.shape == shape
    assert (eng.decode(z) - x).abs().max() < 1e-4
    s = eng.sample(2, torch.Generator().manual_seed(1))
    assert s.shape == (2, *shape) and float(s.min()) >= 0.0 and float(s.max()) <= 1.0


def test_levels_stop_where_the_side_stops_halving():
    assert engine("realnvp", (1, 28, 28), scales=5).n_scales == 3  # 28 -> 14 -> 7
    assert engine("realnvp", (1, 8, 8), scales=2).n_scales == 2
    assert engine("realnvp", (1, 9, 9)).n_scales == 1
    assert engine("glow", (1, 28, 28), levels=3).n_levels == 2
    assert engine("glow", (1, 32, 32), levels=3).n_levels == 3
    assert engine("glow", (1, 9, 9)).n_levels == 0


@pytest.mark.parametrize("name,bad", [("nice", {"hidden": 0}), ("nice", {"depth": 0}), ("realnvp", {"blocks": 0}),
                                      ("realnvp", {"scales": 0}), ("glow", {"steps": 0}), ("glow", {"levels": 0}),
                                      ("glow", {"lr": 0.0})])
def test_bad_settings_raise_config_errors_naming_the_model(name, bad):
    model = {"nice": "NICE", "realnvp": "RealNVP", "glow": "Glow"}[name]
    with pytest.raises(ConfigError, match=model):
        create_engine(name, info((1, 8, 8)), **bad)
