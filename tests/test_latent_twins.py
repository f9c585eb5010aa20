"""The numpy latent maths (engines.shared.latent_np, the window's) against its torch twins (the worker's).

Both sides take "which dimensions are which" from LatentSpec (groups(), continuous, categorical,
indices(kind)); each numpy function is checked against its torch twin on the same inputs, over
InfoGAN's real latent (Gaussian noise, a categorical block, uniform codes) and a spec that adds
binary units and an asymmetric uniform range.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engines.lib import projection
from engines.lib.latent import interpolate_spec, mask_for, morph, path
from engines.models.gan.infogan import InfoGAN, InfoGANConfig
from engines.shared import latent_np
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError
from engines.shared.spec import LatentDim, LatentSpec

pytestmark = pytest.mark.usefixtures("one_torch_thread")

IMAGES = DataInfo(spec="squares", kind="image", shape=(1, 16, 16), size=64, n_train=56, n_test=8)
#: Two noise dimensions, two binary units, a three-class code and a uniform code over [0, 2].
MIXED = LatentSpec((
    LatentDim("z0"), LatentDim("z1"),
    LatentDim("h0", "binary", 0.0, 1.0), LatentDim("h1", "binary", 0.0, 1.0),
    *(LatentDim(f"class={k}", "categorical", 0.0, 1.0, "class") for k in range(3)),
    LatentDim("u", "uniform", 0.0, 2.0),
))


@pytest.fixture(scope="module")
def infogan() -> InfoGAN:
    return InfoGAN(InfoGANConfig(width=8, hidden=32, latent_dim=4, n_categories=3, n_continuous=2), IMAGES)


def specs(infogan: InfoGAN) -> list[LatentSpec]:
    return [infogan.latent, MIXED, LatentSpec.gaussian(5)]


def test_infogan_spec_is_the_mixed_case(infogan) -> None:
    spec = infogan.latent
    assert spec.continuous == [0, 1, 2, 3, 7, 8] and spec.categorical == {"c1": [4, 5, 6]}
    assert spec.kinds == ("gaussian", "categorical", "uniform")
    assert MIXED.indices("binary") == [2, 3] and MIXED.continuous == [0, 1, 7]


# -- morph -------------------------------------------------------------------------------------
def test_morph_twins_agree(infogan) -> None:
    rng = np.random.default_rng(0)
    for spec in specs(infogan):
        d = spec.dim
        a, b = rng.standard_normal((2, 6, d)).astype(np.float32)
        masks = [mask_for(spec, spec.names[0]).numpy(), rng.uniform(0, 1, d).astype(np.float32),
                 np.array(([0, 1, 0.5, 0.25, 0.4999, 1e-4] * d)[:d], np.float32)]
        masks += [mask_for(spec, name, 0.3).numpy() for name in spec.categorical]
        for s in masks:
            want = morph(torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(s)).numpy()
            np.testing.assert_allclose(latent_np.morph(a, b, s), want, rtol=1e-6, atol=1e-6)
            want1 = morph(torch.from_numpy(a[0]), torch.from_numpy(b[0]), torch.from_numpy(s)).numpy()
            np.testing.assert_allclose(latent_np.morph(a[0], b[0], s), want1, rtol=1e-6, atol=1e-6)
        for s in (0.0, 1.0, 0.5):  # a scalar strength; both ends exact
            want = morph(torch.from_numpy(a), torch.from_numpy(b), s).numpy()
            np.testing.assert_allclose(latent_np.morph(a, b, s), want, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(latent_np.morph(a, b, 0.0), a)
        np.testing.assert_array_equal(latent_np.morph(a, b, 1.0), b)


@pytest.mark.parametrize("bad", ["shape", "count", "range"])
def test_morph_twins_refuse_the_same_inputs(bad) -> None:
    a, b, s = np.zeros((2, 4), np.float32), np.ones((2, 4), np.float32), np.full(4, 0.5, np.float32)
    if bad == "shape":
        b = b[:, :3]
    elif bad == "count":
        s = s[:3]
    else:
        s = np.full(4, 1.5, np.float32)
    with pytest.raises(ConfigError):
        latent_np.morph(a, b, s)
    with pytest.raises(ConfigError):
        morph(torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(s))


# -- the prior: mean, centre and draws -----------------------------------------------------------
def test_prior_mean_twins_agree(infogan) -> None:
    for spec in [*specs(infogan), LatentSpec.image((1, 2, 2)), LatentSpec.empty()]:
        for n in (1, 3):
            want = projection.prior_mean(spec, n)
            assert want.dtype == torch.float32 and want.shape == (n, spec.dim)
            np.testing.assert_array_equal(latent_np.prior_mean(spec, n), want.numpy())
    np.testing.assert_allclose(latent_np.prior_mean(MIXED)[0], [0, 0, 0.5, 0.5, 1 / 3, 1 / 3, 1 / 3, 1.0])


def test_prior_mean_is_the_mean_of_the_engines_prior(infogan) -> None:
    z = infogan.prior_sample(20_000, torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_allclose(z.mean(0), projection.prior_mean(infogan.latent)[0].numpy(), atol=0.03)


def test_prior_centre_is_a_valid_z_over_the_groups(infogan) -> None:
    for spec in specs(infogan):
        c = latent_np.prior_centre(spec)
        mean = latent_np.prior_mean(spec)
        assert c.shape == (1, spec.dim) and c.dtype == np.float32
        np.testing.assert_array_equal(c[0, spec.continuous], mean[0, spec.continuous])  # 0, the middle of [low, high]
        for idx in spec.categorical.values():  # class 0 of each code
            np.testing.assert_array_equal(c[0, idx], np.eye(len(idx))[0])
        assert (c[0, spec.indices("binary")] == 0).all()
    np.testing.assert_array_equal(latent_np.prior_centre(MIXED)[0], [0, 0, 0, 0, 1, 0, 0, 1])
    # the worker's traversal base is this array as a tensor: the torch side has no copy of it
    assert torch.equal(torch.from_numpy(latent_np.prior_centre(MIXED)), torch.tensor([[0.0, 0, 0, 0, 1, 0, 0, 1]]))


def test_prior_draw_matches_the_engines_prior_sample(infogan) -> None:
    """The window's draws (numpy) and InfoGAN's own prior_sample (torch): the same support and moments."""
    spec = infogan.latent
    rng = np.random.default_rng(0)
    mine = np.stack([latent_np.prior_draw(spec, rng) for _ in range(4000)])
    theirs = infogan.prior_sample(4000, torch.Generator().manual_seed(0)).numpy()
    cont, block = spec.continuous, spec.categorical["c1"]
    uniform = spec.indices("uniform")
    for z in (mine, theirs):
        assert z.shape == (4000, spec.dim) and z.dtype == np.float32
        assert set(np.unique(z[:, block])) == {0.0, 1.0} and (z[:, block].sum(1) == 1).all()
        assert (np.abs(z[:, uniform]) <= 1).all()
    np.testing.assert_allclose(mine.mean(0), theirs.mean(0), atol=0.06)
    np.testing.assert_allclose(mine[:, cont].std(0), theirs[:, cont].std(0), atol=0.06)
    np.testing.assert_allclose(mine[:, uniform].std(0), 1 / np.sqrt(3), atol=0.03)  # U[-1, 1]


def test_prior_draw_respects_each_kind() -> None:
    rng = np.random.default_rng(1)
    z = np.stack([latent_np.prior_draw(MIXED, rng) for _ in range(2000)])
    assert set(np.unique(z[:, [2, 3]])) == {0.0, 1.0} and abs(z[:, [2, 3]].mean() - 0.5) < 0.05
    assert (z[:, 4:7].sum(1) == 1).all() and ((0 <= z[:, 7]) & (z[:, 7] <= 2)).all()
    np.testing.assert_array_equal(latent_np.prior_draw(MIXED, np.random.default_rng(5)),
                                  latent_np.prior_draw(MIXED, np.random.default_rng(5)))  # a seed repeats
    image = latent_np.prior_draw(LatentSpec.image((1, 4, 4)), rng)
    assert image.shape == (16,) and image.std() > 0  # an image-shaped z: standard normal, not zeros
    assert latent_np.prior_draw(LatentSpec.empty(), rng).shape == (0,)


# -- groups: the torch maths reads the spec's ------------------------------------------------------
def test_torch_maths_uses_the_specs_groups(infogan) -> None:
    for spec in (infogan.latent, MIXED):
        for name, idx in spec.categorical.items():
            assert torch.nonzero(mask_for(spec, name)).flatten().tolist() == idx
        keys = torch.from_numpy(np.stack([latent_np.prior_draw(spec, np.random.default_rng(k)) for k in range(3)]))
        out = interpolate_spec(spec, keys, 9, "slerp")
        for idx in spec.categorical.values():
            assert torch.allclose(out[:, idx].sum(1), torch.ones(9, dtype=out.dtype), atol=1e-6)
        assert torch.allclose(out[:, spec.continuous], path(keys[:, spec.continuous], 9, "slerp"), atol=1e-6)
