"""Latent maths: lerp and slerp, keyframe paths, categorical cross-fades, morph, projection."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from engines.shared.capabilities import Capabilities
from engines.models.base import Engine, EngineConfig
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError
from engines.lib.latent import (
    arithmetic,
    interpolate_spec,
    lerp,
    mask_for,
    morph,
    path,
    slerp,
)
from engines.lib.projection import project, to_latent
from engines.shared.registry import create_engine
from engines.shared.spec import LatentDim, LatentSpec


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True)


def step_lengths(p: torch.Tensor) -> torch.Tensor:
    return (p[1:] - p[:-1]).norm(dim=-1)


# -- lerp and slerp ----------------------------------------------------------------------------
def test_lerp_endpoints_exact_and_midpoint():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(7, generator=g), torch.randn(7, generator=g)
    out = lerp(a, b, torch.linspace(0, 1, 5))
    assert out.shape == (5, 7)
    assert torch.equal(out[0], a) and torch.equal(out[-1], b)
    assert torch.allclose(out[2], (a + b) / 2, atol=1e-6)
    batched = lerp(torch.stack([a, b]), torch.stack([b, a]), [0.0, 1.0])
    assert batched.shape == (2, 2, 7) and torch.equal(batched[1, 1], a)


@pytest.mark.parametrize("norm", ["white", "lerp"])
def test_slerp_keeps_unit_norm_and_hits_endpoints(norm):
    g = torch.Generator().manual_seed(1)
    a, b = unit(torch.randn(16, generator=g)), unit(torch.randn(16, generator=g))
    t = torch.linspace(0, 1, 33)
    out = slerp(a, b, t, norm=norm)
    assert torch.equal(out[0], a) and torch.equal(out[-1], b)
    assert torch.allclose(out.norm(dim=-1), torch.ones(33), atol=1e-5)
    # constant angular speed along the great circle (lerp would cut the chord and shrink the norm)
    angles = torch.acos((out[1:] * out[:-1]).sum(-1).clamp(-1, 1))
    assert torch.allclose(angles, angles.mean().expand_as(angles), atol=1e-4)
    assert lerp(a, b, t).norm(dim=-1).min() < 0.99


def test_slerp_norm_variants_on_unequal_norms():
    a, b = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 4.0])
    t = torch.linspace(0, 1, 11)
    linear = slerp(a, b, t, norm="lerp").norm(dim=-1)
    assert torch.allclose(linear, 2 + 2 * t, atol=1e-5)
    white = slerp(a, b, t, norm="white")
    mid = math.sin(math.pi / 4) / math.sin(math.pi / 2)
    assert torch.allclose(white[5], torch.tensor([2 * mid, 4 * mid]), atol=1e-5)


def test_slerp_parallel_is_lerp_and_antiparallel_is_finite():
    a = torch.tensor([1.0, 2.0, -0.5])
    t = torch.linspace(0, 1, 9)
    assert torch.allclose(slerp(a, 3 * a, t), lerp(a, 3 * a, t), atol=1e-6)
    anti = slerp(a, -a, t)
    assert torch.isfinite(anti).all()
    assert torch.equal(anti[0], a) and torch.equal(anti[-1], -a)
    assert torch.isfinite(slerp(torch.zeros(3), a, t)).all()


def test_slerp_batched_matches_single():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    t = torch.tensor([0.0, 0.3, 1.0])
    out = slerp(a, b, t)
    assert out.shape == (3, 3, 5)
    for i in range(3):
        assert torch.allclose(out[i], slerp(a[i], b[i], t), atol=1e-6)


def test_bad_shapes_raise():
    with pytest.raises(ConfigError):
        lerp(torch.zeros(3), torch.zeros(4), [0.5])
    with pytest.raises(ConfigError):
        path(torch.zeros(3, 2), 2)  # fewer frames than keyframes
    with pytest.raises(ConfigError):
        path(torch.zeros(3, 2), 10, method="cubic")


# -- paths -------------------------------------------------------------------------------------
KEYS = torch.tensor([[0.0, 0.0, 1.0], [2.0, 0.5, 0.0], [2.5, 3.0, -1.0], [-1.0, 1.0, 0.5]])


def keyframe_rows(p: torch.Tensor, keys: torch.Tensor) -> list[int]:
    """Index of the first frame equal to each keyframe (exactly), -1 where none is."""
    return [next((i for i in range(len(p)) if torch.equal(p[i], k)), -1) for k in keys]


@pytest.mark.parametrize("method", ["lerp", "slerp", "spline"])
@pytest.mark.parametrize("constant_speed", [False, True])
def test_paths_hit_every_keyframe_in_order(method, constant_speed):
    p = path(KEYS, 40, method, constant_speed)
    assert p.shape == (40, 3) and torch.isfinite(p).all()
    rows = keyframe_rows(p, KEYS)
    assert rows[0] == 0 and rows[-1] == 39
    assert all(r >= 0 for r in rows) and rows == sorted(rows)


@pytest.mark.parametrize("method", ["lerp", "slerp", "spline"])
def test_constant_speed_gives_near_equal_steps(method):
    p = path(KEYS, 121, method, constant_speed=True)
    steps = step_lengths(p)
    assert steps.std() / steps.mean() < 0.05, steps
    uneven = step_lengths(path(KEYS, 121, method, constant_speed=False))
    assert uneven.std() / uneven.mean() > 0.1  # the segments differ in length


def test_spline_is_smooth_and_lerp_is_not():
    lin, spl = path(KEYS, 61, "lerp"), path(KEYS, 61, "spline")
    turn = lambda p: (p[2:] - 2 * p[1:-1] + p[:-2]).norm(dim=-1).max()  # noqa: E731
    assert turn(spl) < 0.5 * turn(lin)
    # two keyframes: the spline is the straight segment
    assert torch.allclose(path(KEYS[:2], 5, "spline"), path(KEYS[:2], 5, "lerp"), atol=1e-6)


def test_single_keyframe_and_duplicate_keyframes():
    assert torch.equal(path(KEYS[:1], 4), KEYS[:1].expand(4, 3))
    dup = torch.stack([KEYS[0], KEYS[0], KEYS[1]])
    for method in ("lerp", "slerp", "spline"):
        p = path(dup, 9, method, constant_speed=True)
        assert torch.isfinite(p).all() and torch.equal(p[-1], KEYS[1])


# -- latent specs: categorical blocks ----------------------------------------------------------
SPEC = LatentSpec(
    (
        LatentDim("z0"),
        LatentDim("z1"),
        LatentDim("c_a", "categorical", 0.0, 1.0, "digit"),
        LatentDim("c_b", "categorical", 0.0, 1.0, "digit"),
        LatentDim("c_c", "categorical", 0.0, 1.0, "digit"),
        LatentDim("u0", "uniform", -1.0, 1.0),
    )
)


@pytest.mark.parametrize("method", ["lerp", "slerp", "spline"])
@pytest.mark.parametrize("constant_speed", [False, True])
def test_categorical_blocks_stay_valid_mixtures_and_cross_fade(method, constant_speed):
    keys = torch.tensor(
        [
            [1.0, 0.0, 1.0, 0.0, 0.0, -0.5],
            [0.0, 2.0, 0.0, 1.0, 0.0, 0.5],
            [-1.0, 1.0, 0.0, 0.0, 1.0, 0.0],
        ]
    )
    out = interpolate_spec(SPEC, keys, 21, method, constant_speed)
    block = out[:, 2:5]
    assert (block >= 0).all() and torch.allclose(block.sum(1), torch.ones(21), atol=1e-6)
    assert all(r >= 0 for r in keyframe_rows(out, keys))
    mid = keyframe_rows(out, keys)[1]
    # first half fades a -> b (c stays 0) with b rising monotonically; then b -> c
    assert (block[:mid, 2] == 0).all() and (block[mid:, 0] == 0).all()
    assert (block[1:mid + 1, 1] - block[:mid, 1] > 0).all()
    assert (block[mid + 1:, 2] - block[mid:-1, 2] > 0).all()
    # continuous dimensions follow the plain path
    assert torch.allclose(out[:, [0, 1, 5]], path(keys[:, [0, 1, 5]], 21, method, constant_speed), atol=1e-6)


def test_categorical_keyframes_are_normalised():
    keys = torch.tensor([[0.0, 0.0, 2.0, 2.0, -1.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    out = interpolate_spec(SPEC, keys, 5)
    assert torch.allclose(out[0, 2:5], torch.tensor([0.5, 0.5, 0.0]))
    assert torch.allclose(out[-1, 2:5], torch.full((3,), 1 / 3))
    with pytest.raises(ConfigError):
        interpolate_spec(SPEC, torch.zeros(2, 5), 5)


def test_binary_units_cross_fade_and_an_image_shaped_z_follows_the_path():
    spec = LatentSpec((LatentDim("z0"), LatentDim("h0", "binary", 0.0, 1.0), LatentDim("z1")))
    keys = torch.tensor([[1.0, 0.0, -1.0], [-1.0, 1.0, 2.0], [0.5, 0.0, 0.0]])
    out = interpolate_spec(spec, keys, 9, "spline")
    assert torch.allclose(out[:, [0, 2]], path(keys[:, [0, 2]], 9, "spline"), atol=1e-6)
    # the unit is mixed linearly in frame time between its keyframes: in [0, 1], no spline overshoot
    assert torch.allclose(out[:, 1], torch.tensor([0, 0.25, 0.5, 0.75, 1, 0.75, 0.5, 0.25, 0]), atol=1e-6)
    image = LatentSpec.image((1, 2, 2))
    keys = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(interpolate_spec(image, keys, 7, "slerp"), path(keys, 7, "slerp"), atol=1e-6)


# -- morph and arithmetic ----------------------------------------------------------------------
def test_morph_masks_and_strengths():
    g = torch.Generator().manual_seed(3)
    z_a, z_b = torch.randn(6, generator=g), torch.randn(6, generator=g)
    assert torch.equal(morph(z_a, z_b, torch.zeros(6)), z_a)
    assert torch.equal(morph(z_a, z_b, torch.ones(6)), z_b)
    half = morph(z_a, z_b, 0.5)
    assert torch.allclose(half, (z_a + z_b) / 2, atol=1e-6)
    m = mask_for(SPEC, ["digit", "z1"])
    assert m.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    out = morph(z_a, z_b, m)
    assert torch.equal(out[m == 1], z_b[m == 1]) and torch.equal(out[m == 0], z_a[m == 0])
    s = torch.linspace(0, 1, 6)
    assert torch.allclose(morph(z_a, z_b, s), z_a + s * (z_b - z_a), atol=1e-6)
    assert mask_for(SPEC, [5], strength=0.25).tolist() == [0, 0, 0, 0, 0, 0.25]
    with pytest.raises(ConfigError):
        mask_for(SPEC, ["nope"])
    with pytest.raises(ConfigError):
        morph(z_a, z_b, torch.full((6,), 1.5))


def test_arithmetic():
    a, b, c = torch.tensor([1.0, 2.0]), torch.tensor([0.5, -1.0]), torch.tensor([3.0, 0.0])
    assert torch.equal(arithmetic(a, b, c), torch.tensor([3.5, 3.0]))
    assert torch.equal(arithmetic(a, a, c), c)


# -- projection --------------------------------------------------------------------------------
class RandomDecoder(Engine):
    """No encoder; a fixed random decoder sigmoid(W z + c) over a spec with a categorical block."""

    family = "gan"
    declared = Capabilities(latent=("gaussian", "categorical"))

    def __init__(self) -> None:
        super().__init__(EngineConfig(latent_dim=6), DataInfo("test", "image", (1, 6, 6), 8, 8, 0))
        self.latent = SPEC
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.net = nn.Sequential(nn.Linear(6, 36), nn.Sigmoid(), nn.Unflatten(1, (1, 6, 6)))

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def test_projection_recovers_a_decoded_target_and_keeps_blocks_valid():
    engine = RandomDecoder().train()
    z_star = torch.tensor([[1.0, -1.5, 0.0, 1.0, 0.0, 0.5], [-0.5, 0.8, 0.0, 0.0, 1.0, -0.3]])
    x = engine.decode(z_star)
    before = {k: v.clone() for k, v in engine.state_dict().items()}
    calls = []
    z, losses = project(engine, x, steps=300, lr=0.05, callback=lambda s, v: calls.append((s, v)))
    assert z.shape == (2, 6) and len(losses) == 300
    assert losses[-1] < 0.05 * losses[0]
    assert (engine.decode(z) - x).pow(2).mean() < 0.05 * losses[0]
    block = z[:, 2:5]
    assert (block >= 0).all() and torch.allclose(block.sum(1), torch.ones(2), atol=1e-5)
    assert (z[:, 5].abs() <= 1).all()
    # progress: at most 20 reports, increasing steps, the last one at the end
    assert 1 <= len(calls) <= 20 and calls[-1][0] == 300
    assert [s for s, _ in calls] == sorted(s for s, _ in calls)
    # weights, buffers, requires_grad and mode untouched
    after = engine.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.requires_grad for p in engine.parameters()) and engine.training


def test_projection_honours_should_stop_and_falls_back_to_projection():
    engine = RandomDecoder().eval()
    x = torch.rand(3, 1, 6, 6, generator=torch.Generator().manual_seed(4))
    polls = []
    z, losses = project(engine, x, steps=500, should_stop=lambda: polls.append(1) or len(polls) > 7)
    assert len(losses) == 7 and z.shape == (3, 6) and not engine.training
    z2 = to_latent(engine, x, steps=5)  # no encoder: to_latent projects
    assert z2.shape == (3, 6) and torch.isfinite(z2).all()
    z3, losses3 = project(engine, x, steps=5, generator=torch.Generator().manual_seed(1))
    assert len(losses3) == 5 and not torch.allclose(z3, z2)
    with pytest.raises(ConfigError):
        project(engine, x, loss="l1")


class DetachedDecoder(RandomDecoder):
    """A decoder whose output carries no gradient to z, even with ``@torch.no_grad()`` unwrapped."""

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).detach()


def test_projection_refuses_a_decoder_without_gradients():
    engine = DetachedDecoder()
    with pytest.raises(ConfigError, match="not differentiable"):
        project(engine, torch.rand(1, 1, 6, 6), steps=3)
    assert all(p.requires_grad for p in engine.parameters())  # restored after the error


def blobs(n: int, seed: int = 0) -> torch.Tensor:
    """(n, 1, 8, 8) in [0, 1]: a Gaussian blob at a random place."""
    g = torch.Generator().manual_seed(seed)
    r = torch.arange(8.0)
    c = torch.rand(n, 2, generator=g) * 5 + 1.5
    d2 = (r[None, :, None] - c[:, 0, None, None]) ** 2 + (r[None, None, :] - c[:, 1, None, None]) ** 2
    return torch.exp(-d2 / 3.0)[:, None]


@pytest.fixture(scope="module")
def trained_vae():
    info = DataInfo(spec="blobs", kind="image", shape=(1, 8, 8), size=256, n_train=256, n_test=0)
    engine = create_engine("vae", info, latent_dim=4, arch="mlp", hidden=64, lr=3e-3)
    data = blobs(256)
    for step in range(150):
        engine.training_step(data[(step * 32) % 256 : (step * 32) % 256 + 32], step)
    return engine


def test_projection_lowers_vae_reconstruction_error(trained_vae):
    engine = trained_vae
    x = blobs(6, seed=1)
    before = {k: v.clone() for k, v in engine.state_dict().items()}
    z0, cold = project(engine, x, steps=80, warm_start=False)  # from the best of 16 prior draws
    _, flat = project(engine, x, steps=80, warm_start=False, restarts=0)  # from the prior mean
    z1, warm = project(engine, x, steps=80, warm_start=True, loss="bce")
    assert cold[0] <= flat[0] and cold[-1] < cold[0] and cold[-1] < 0.5 * flat[0] and flat[-1] < 0.5 * flat[0]
    assert warm[-1] < warm[0]
    # the warm start is the encoder's posterior mean, and projection refines it
    mse = lambda z: float((engine.decode(z) - x).pow(2).mean())  # noqa: E731
    mu = engine.encode(x)
    assert mse(z1) < mse(mu)
    after = engine.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # to_latent uses the encoder for a VAE
    assert torch.equal(to_latent(engine, x), mu)


def test_latent_spec_describes_a_categorical_code_once() -> None:
    """A cGAN's 10 noise dimensions and its 10-class one-hot code read as such, not as "20 latent dims"."""
    from engines.shared.spec import LatentDim, LatentSpec

    cgan = LatentSpec(tuple(LatentDim(f"z{i}") for i in range(10))
                      + tuple(LatentDim(f"class {k}", kind="categorical", group="class") for k in range(10)))
    assert cgan.dim == 20
    assert cgan.describe() == "10 continuous dimensions and 1 categorical code (10 classes)"
    assert LatentSpec.gaussian(1).describe() == "1 continuous dimension"
    assert LatentSpec.image((1, 28, 28)).describe() == "z of the image's shape, 1x28x28"
    assert LatentSpec.empty().describe() == "no latent"
