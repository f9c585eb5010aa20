"""The GAN family: gan, wgan, wgan-gp, sngan (one engine), cgan and infogan.

Training runs a few steps on tiny in-memory data (16x16 grey squares, a ring of 2-D points);
the losses, penalties, clipping, packing, live hyperparameters and latent layouts are checked
against their definitions.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import engines.shared.registry
from engines.lib.checkpoint import load_checkpoint, save_checkpoint
from engines.data.base import DataInfo, Dataset, split_indices
from engines.shared.errors import ConfigError, DataError
from engines.models.gan.cgan import CGAN, CGANConfig
from engines.models.gan.gan import GAN, GANConfig, critic_loss, generator_loss, gradient_penalty, pack_inputs
from engines.models.gan.infogan import InfoGAN, InfoGANConfig
from engines.shared.capabilities import CapabilityError
from engines.shared.registry import MODELS, ModelEntry
from engines.lib.training import BatchStream

LOSSES = {"gan": "gan", "wgan": "wgan", "wgan-gp": "wgan-gp", "sngan": "hinge"}
SMALL = dict(width=8, hidden=32, latent_dim=8)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def image_info(classes: tuple[str, ...] | None = None) -> DataInfo:
    return DataInfo(spec="squares", kind="image", shape=(1, 16, 16), size=64, n_train=56, n_test=8, class_names=classes)


def points_info(classes: tuple[str, ...] | None = None) -> DataInfo:
    return DataInfo(spec="ring", kind="points", shape=(2,), size=64, n_train=56, n_test=8, class_names=classes)


def square_images(n: int = 64, size: int = 16, seed: int = 0) -> torch.Tensor:
    """(n, 1, size, size) in [0, 1]: a bright square of random side and place on a dark field."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, size, size)
    for i in range(n):
        side = int(torch.randint(size // 4, size // 2 + 1, (1,), generator=g))
        r, c = (int(v) for v in torch.randint(0, size - side + 1, (2,), generator=g))
        x[i, :, r : r + side, c : c + side] = 0.5 + 0.5 * torch.rand(1, generator=g)
    return x


def ring_points(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 2) points from 8 Gaussians (std 0.05) on a circle of radius 2, and their modes (n,)."""
    g = torch.Generator().manual_seed(seed)
    k = torch.randint(0, 8, (n,), generator=g)
    a = k.float() * (2 * math.pi / 8)
    return 2.0 * torch.stack([a.cos(), a.sin()], 1) + 0.05 * torch.randn(n, 2, generator=g), k


def make(name: str, info: DataInfo, **kw: object) -> GAN:
    engine = GAN(GANConfig(loss=LOSSES[name], **{**SMALL, **kw}), info)
    engine.name = name
    return engine


def assert_terms(terms: dict[str, float], expected: set[str]) -> None:
    assert set(terms) == expected
    assert all(math.isfinite(v) for v in terms.values()), terms


# -- training on images and points ----------------------------------------------------------------
EXPECTED = {
    "gan": {"d_loss", "g_loss", "d_real", "d_fake"},
    "sngan": {"d_loss", "g_loss", "d_real", "d_fake"},
    "wgan": {"d_loss", "g_loss", "d_real", "d_fake", "w_dist"},
    "wgan-gp": {"d_loss", "g_loss", "d_real", "d_fake", "w_dist", "gp"},
}


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("kind", ["image", "points"])
def test_trains_with_finite_named_terms(name, kind):
    info = image_info() if kind == "image" else points_info()
    x = square_images() if kind == "image" else ring_points()[0]
    engine = make(name, info, n_critic=2)
    before = [p.detach().clone() for p in engine.generator.parameters()]
    for step in range(3):
        terms = engine.training_step(x, step)
        assert_terms(terms, EXPECTED[name])
    assert any(not torch.equal(a, b) for a, b in zip(before, engine.generator.parameters()))
    if name == "gan":
        assert 0.0 < terms["d_real"] < 1.0 and 0.0 < terms["d_fake"] < 1.0
    if "w_dist" in terms:
        assert terms["w_dist"] == pytest.approx(terms["d_real"] - terms["d_fake"], abs=1e-6)
    if name == "wgan-gp":
        assert terms["gp"] > 0.0
    samples = engine.sample(5, torch.Generator().manual_seed(0))
    if kind == "image":
        assert samples.shape == (5, 1, 16, 16)
        assert samples.min() >= 0.0 and samples.max() <= 1.0
    else:
        assert samples.shape == (5, 2)
    with pytest.raises(CapabilityError, match="encoder"):
        engine.encode(x[:4])
    with pytest.raises(CapabilityError, match="likelihood"):
        engine.log_prob(x[:4])
    assert engine.family == "gan"


def test_three_channel_images_and_odd_size():
    info = DataInfo(spec="rgb", kind="image", shape=(3, 28, 28), size=16, n_train=14, n_test=2)
    engine = make("sngan", info)
    terms = engine.training_step(torch.rand(8, 3, 28, 28), 0)
    assert_terms(terms, EXPECTED["sngan"])
    z = engine.prior_sample(3)
    out = engine.decode(z)
    assert out.shape == (3, 3, 28, 28) and 0.0 <= out.min() and out.max() <= 1.0


def test_loss_functions_match_their_definitions():
    r, f = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    bce = -(torch.log(torch.sigmoid(r)).mean() + torch.log(1 - torch.sigmoid(f)).mean())
    assert critic_loss("gan", r, f).item() == pytest.approx(bce.item(), rel=1e-5)
    assert critic_loss("wgan", r, f).item() == pytest.approx(f.mean().item() - r.mean().item())
    hinge = (torch.relu(1 - r).mean() + torch.relu(1 + f).mean()).item()
    assert critic_loss("hinge", r, f).item() == pytest.approx(hinge)
    assert generator_loss("gan", f, "ns").item() == pytest.approx(-torch.log(torch.sigmoid(f)).mean().item(), rel=1e-5)
    minimax = torch.log(1 - torch.sigmoid(f)).mean().item()
    assert generator_loss("gan", f, "minimax").item() == pytest.approx(minimax, rel=1e-5)
    assert generator_loss("hinge", f).item() == pytest.approx(-f.mean().item())


def test_minimax_generator_loss_is_selectable():
    engine = make("gan", points_info(), g_loss="minimax")
    terms = engine.training_step(ring_points()[0], 0)
    assert terms["g_loss"] < 0.0  # log(1 - D(G(z))) is negative, the ns loss positive
    with pytest.raises(ConfigError, match="g_loss"):
        make("gan", points_info(), g_loss="wrong")


def test_bad_configs_raise():
    with pytest.raises(ConfigError, match="loss"):
        GAN(GANConfig(loss="lsgan"), points_info())
    with pytest.raises(ConfigError, match="layer"):
        make("wgan-gp", image_info(), d_norm="batch")
    with pytest.raises(ConfigError, match="pack"):
        make("gan", points_info(), pack=5, pack_max=4)
    with pytest.raises(ConfigError, match="square"):
        GAN(GANConfig(), DataInfo(spec="r", kind="image", shape=(1, 8, 16), size=4, n_train=3, n_test=1))


# -- live hyperparameters -------------------------------------------------------------------------
def test_learning_rates_reach_the_optimisers():
    engine = make("wgan-gp", points_info())
    assert engine.set_hyper("g_lr", 3e-4) == pytest.approx(3e-4)
    engine.set_hyper("d_lr", 7e-5)
    assert all(g["lr"] == pytest.approx(3e-4) for g in engine.opt_g.param_groups)
    assert all(g["lr"] == pytest.approx(7e-5) for g in engine.opt_d.param_groups)
    assert all(g["betas"] == (0.5, 0.9) for g in engine.opt_d.param_groups)
    with pytest.raises(ConfigError):
        engine.set_hyper("g_lr", 5.0)
    with pytest.raises(ConfigError):
        engine.set_hyper("clip", 0.1)  # wgan-gp does not clip


def test_n_critic_sets_the_number_of_critic_updates():
    engine = make("wgan", points_info())
    x = ring_points()[0]
    first = next(engine.critic.parameters())
    assert engine.h("n_critic") == 5 and isinstance(engine.opt_d, torch.optim.RMSprop)
    engine.training_step(x, 0)
    assert engine.critic_updates == 5 and int(engine.opt_d.state[first]["step"]) == 5
    assert engine.set_hyper("n_critic", 2.4) == 2.0
    engine.training_step(x, 1)
    assert engine.critic_updates == 7 and int(engine.opt_d.state[first]["step"]) == 7
    g_first = next(engine.generator.parameters())
    assert int(engine.opt_g.state[g_first]["step"]) == 2


def test_wgan_clipping_keeps_critic_weights_within_the_bound():
    engine = make("wgan", points_info(), d_lr=0.05)
    x = ring_points()[0]
    engine.set_hyper("clip", 0.02)
    engine.training_step(x, 0)
    bound = max(p.abs().max().item() for p in engine.critic.parameters())
    assert 0.015 < bound <= 0.02  # large steps push weights to the bound, never past it
    engine.set_hyper("clip", 0.005)
    engine.training_step(x, 1)
    assert max(p.abs().max().item() for p in engine.critic.parameters()) <= 0.005


# -- gradient penalty and packing ------------------------------------------------------------------
def test_gradient_penalty_is_zero_for_a_unit_gradient_critic():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(32, 1, 4, 4, generator=g), torch.randn(32, 1, 4, 4, generator=g)
    w = torch.randn(16, generator=g)
    unit = w / w.norm()
    assert gradient_penalty(lambda x: x.flatten(1) @ unit, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    # norm 3: (3 - 1)^2 = 4 at every interpolate
    assert gradient_penalty(lambda x: x.flatten(1) @ (3 * unit), real, fake).item() == pytest.approx(4.0, rel=1e-5)
    nonlinear = gradient_penalty(lambda x: (x.flatten(1) ** 2).sum(1), real, fake)
    assert nonlinear.item() > 0.1
    # packed: m = 2 examples per critic input, unit gradient over the pair
    pair = torch.randn(32, generator=g)
    pair = pair / pair.norm()
    packed = gradient_penalty(lambda x: pack_inputs(x, 2, 2).flatten(1) @ pair, real, fake, m=2)
    assert packed.item() == pytest.approx(0.0, abs=1e-10)


def test_pack_inputs_groups_examples_and_zero_fills():
    x = torch.arange(5 * 2, dtype=torch.float32).view(5, 2)
    out = pack_inputs(x, 2, 3)
    assert out.shape == (2, 6)
    assert out[0].tolist() == [0, 1, 2, 3, 0, 0] and out[1].tolist() == [4, 5, 6, 7, 0, 0]
    img = torch.rand(8, 3, 4, 4)
    packed = pack_inputs(img, 4, 4)
    assert packed.shape == (2, 12, 4, 4) and torch.equal(packed[1, 3:6], img[5])


@pytest.mark.parametrize("kind", ["image", "points"])
def test_pack_4_critic_takes_packed_input(kind):
    info = image_info() if kind == "image" else points_info()
    x = square_images() if kind == "image" else ring_points()[0]
    engine = make("wgan-gp", info, pack=4, pack_max=4, n_critic=1)
    assert engine.h("pack") == 4
    assert engine.critic_score(x).shape == (16,)
    assert_terms(engine.training_step(x, 0), EXPECTED["wgan-gp"])
    engine.set_hyper("pack", 2)
    assert engine.critic_score(x).shape == (32,) and engine.config.pack == 2
    with pytest.raises(ConfigError, match="pack"):
        make("gan", info, pack=4).training_step(x[:3], 0)


def test_unused_pack_slots_do_not_change_the_critic():
    """A pack_max=4 critic used with pack=1 is exactly a one-sample critic (zero slots)."""
    engine = make("gan", points_info(), pack_max=4)
    x = ring_points(8)[0]
    scores = engine.critic_score(x)
    first = engine.critic[0][0][0]
    assert isinstance(first, nn.Linear) and first.in_features == 8
    with torch.no_grad():
        first.weight[:, 2:].normal_()  # weights of the unused slots
    assert torch.allclose(engine.critic_score(x), scores)


# -- checkpoint ------------------------------------------------------------------------------------
def test_checkpoint_round_trip(tmp_path, monkeypatch):
    entry = ModelEntry("wgan-gp", "gan", "engines.models.gan.gan:GAN", "WGAN-GP", (("loss", "wgan-gp"),),
                       capabilities=MODELS["wgan-gp"].capabilities)
    monkeypatch.setitem(engines.shared.registry.MODELS, "wgan-gp", entry)
    engine = make("wgan-gp", points_info(), pack=2, pack_max=4, n_critic=1)
    x = ring_points()[0]
    engine.training_step(x, 0)
    engine.set_hyper("pack", 3)
    engine.set_hyper("g_lr", 2e-4)
    path = save_checkpoint(engine, tmp_path / "m.safetensors", step=1, data_spec="ring")
    loaded, manifest = load_checkpoint(path)
    assert manifest["step"] == 1 and loaded.h("pack") == 3 and loaded.h("g_lr") == pytest.approx(2e-4)
    z = engine.prior_sample(6, torch.Generator().manual_seed(3))
    assert torch.equal(loaded.decode(z), engine.decode(z))
    assert torch.equal(loaded.critic_score(x), engine.critic_score(x))
    a, b = engine.opt_d.state_dict()["state"], loaded.opt_d.state_dict()["state"]
    assert torch.equal(a[0]["exp_avg"], b[0]["exp_avg"])
    assert_terms(loaded.training_step(x, 1), EXPECTED["wgan-gp"])


# -- cgan ------------------------------------------------------------------------------------------
CLASSES = ("zero", "one", "two", "three")


def test_cgan_needs_labels():
    assert MODELS["cgan"].capabilities.conditional and not MODELS["gan"].capabilities.conditional
    with pytest.raises(ConfigError, match="class"):
        CGAN(CGANConfig(**SMALL), image_info())
    engine = CGAN(CGANConfig(**SMALL), image_info(CLASSES))
    with pytest.raises(ConfigError, match="labels"):
        engine.training_step(square_images(), 0)


@pytest.mark.parametrize("kind", ["image", "points"])
def test_cgan_trains_and_decodes_per_class(kind):
    info = image_info(CLASSES) if kind == "image" else points_info(CLASSES)
    x = square_images() if kind == "image" else ring_points()[0]
    y = torch.arange(64) % 4
    engine = CGAN(CGANConfig(**SMALL), info)
    engine.name = "cgan"
    for step in range(2):
        assert_terms(engine.training_step((x, y), step), EXPECTED["gan"])
    spec = engine.latent
    assert spec.dim == 8 + 4 and spec.names[8:] == CLASSES
    assert all(d.kind == "categorical" and d.group == "class" for d in spec.dims[8:])
    assert all(d.kind == "gaussian" for d in spec.dims[:8])
    z = engine.prior_sample(50, torch.Generator().manual_seed(0))
    assert torch.equal(z[:, 8:].sum(1), torch.ones(50)) and set(z[:, 8:].flatten().tolist()) == {0.0, 1.0}
    noise = torch.randn(1, 8).expand(4, 8)
    out = engine.decode_class(noise, torch.arange(4))
    assert torch.equal(out, engine.decode(torch.cat([noise, torch.eye(4)], 1)))
    for i in range(4):
        for j in range(i + 1, 4):
            assert not torch.allclose(out[i], out[j])
    mix = engine.decode(torch.cat([noise[:1], torch.tensor([[0.5, 0.5, 0.0, 0.0]])], 1))
    assert mix.shape == out[:1].shape and torch.isfinite(mix).all()


def test_batch_stream_with_labels_yields_matching_labels():
    x = np.arange(20, dtype=np.float32).repeat(2).reshape(20, 2)
    y = np.arange(20, dtype=np.int64) % 4
    train, test = split_indices(20)
    info = DataInfo(spec="toy", kind="points", shape=(2,), size=20, n_train=len(train), n_test=len(test),
                    class_names=CLASSES)
    data = Dataset(info, x=x, y=y, train_indices=train, test_indices=test)
    with BatchStream(data, 5, seed=0, with_labels=True) as stream:
        for _ in range(6):
            xb, yb = next(stream)
            assert yb.dtype == torch.int64 and torch.equal(yb, xb[:, 0].long() % 4)
    with pytest.raises(DataError, match="labels"):
        BatchStream(Dataset(info, x=x, train_indices=train, test_indices=test), 5, seed=0, with_labels=True)


# -- infogan ---------------------------------------------------------------------------------------
def test_infogan_latent_layout():
    engine = InfoGAN(InfoGANConfig(width=8, hidden=32), image_info())
    spec = engine.latent
    assert spec.dim == 62 + 10 + 2
    assert all(d.kind == "gaussian" for d in spec.dims[:62])
    cat = spec.dims[62:72]
    assert all(d.kind == "categorical" and d.group == "c1" for d in cat)
    assert [d.name for d in spec.dims[72:]] == ["c2", "c3"]
    assert all(d.kind == "uniform" and (d.low, d.high) == (-1.0, 1.0) for d in spec.dims[72:])
    z = engine.prior_sample(200, torch.Generator().manual_seed(0))
    assert torch.equal(z[:, 62:72].sum(1), torch.ones(200))
    assert z[:, 72:].abs().max() <= 1.0 and z[:, 72:].min() < -0.5
    assert "mi_lambda" in engine.hyper and engine.h("pack") == 1  # pack_max 4 as for the GAN, pack 1


@pytest.mark.parametrize("kind", ["image", "points"])
def test_infogan_trains_and_logs_mi(kind):
    info = image_info() if kind == "image" else points_info()
    x = square_images() if kind == "image" else ring_points()[0]
    engine = InfoGAN(InfoGANConfig(width=8, hidden=32, latent_dim=4, n_categories=3, n_continuous=1), info)
    for step in range(3):
        terms = engine.training_step(x, step)
        assert_terms(terms, EXPECTED["gan"] | {"mi"})
    out = engine.sample(3)
    assert out.shape == ((3, 1, 16, 16) if kind == "image" else (3, 2))
    assert engine.predict_codes(out).shape == (3, 4)


def test_infogan_bound_is_entropy_minus_cross_entropy():
    """With Q perfect on c1 and no continuous code, L_I -> H(c1) = log K."""
    engine = InfoGAN(InfoGANConfig(width=8, hidden=32, latent_dim=2, n_categories=4, n_continuous=0), points_info())
    z = engine.prior_sample(16, torch.Generator().manual_seed(0))
    q = engine.q_head[-1]
    feats = torch.zeros(16, 32)
    with torch.no_grad():
        q.weight.zero_()
        q.bias.zero_()  # uniform prediction: CE = log K, so the bound is 0
    assert engine.mi_bound(z, feats).item() == pytest.approx(0.0, abs=1e-6)
    assert engine.codes_entropy() == pytest.approx(math.log(4))


def test_infogan_mi_lambda_zero_leaves_q_untrained_by_the_bound():
    engine = InfoGAN(InfoGANConfig(width=8, hidden=32, latent_dim=4, mi_lambda=0.0), points_info())
    before = [p.detach().clone() for p in engine.q_head.parameters()]
    engine.training_step(ring_points()[0], 0)
    assert all(torch.equal(a, b) for a, b in zip(before, engine.q_head.parameters()))
    engine.set_hyper("mi_lambda", 1.0)
    engine.training_step(ring_points()[0], 1)
    assert any(not torch.equal(a, b) for a, b in zip(before, engine.q_head.parameters()))


# -- packing for cgan and infogan (PacGAN, Lin et al. 2018) -----------------------------------------
TINY = dict(width=8, hidden=16, latent_dim=4)


def labelled(kind: str, n: int = 16) -> tuple[DataInfo, torch.Tensor, torch.Tensor]:
    info = image_info(CLASSES) if kind == "image" else points_info(CLASSES)
    x = square_images(n) if kind == "image" else ring_points(n)[0]
    return info, x, torch.arange(n) % 4


@pytest.mark.parametrize("loss", ["gan", "wgan-gp"])
@pytest.mark.parametrize("kind", ["image", "points"])
def test_cgan_trains_packed_with_live_pack_changes(kind, loss):
    info, x, y = labelled(kind)
    engine = CGAN(CGANConfig(loss=loss, n_critic=1, pack=2, **TINY), info)
    engine.name = "cgan"
    first = next(m for m in engine.critic.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    want = 4 * ((1 if kind == "image" else 2) + 4)  # pack_max slots of (example, one-hot label)
    assert (first.in_channels if kind == "image" else first.in_features) == want
    expected = EXPECTED["gan" if loss == "gan" else "wgan-gp"]
    for step, m in enumerate([2, 4, 1, 3]):  # 3 does not divide 16: a last incomplete group is dropped
        engine.set_hyper("pack", m)
        terms = engine.training_step((x, y), step)
        assert_terms(terms, expected)
        assert engine.critic_score(x, y).shape == (16 // m,)
        if loss == "wgan-gp":
            assert terms["gp"] > 0.0
    assert engine.config.pack == 3
    with pytest.raises(ConfigError, match="labels"):
        engine.critic_score(x)


@pytest.mark.parametrize("kind", ["image", "points"])
def test_cgan_packed_labels_reach_the_critic_slot_by_slot(kind):
    info, x, y = labelled(kind, 8)
    engine = CGAN(CGANConfig(pack=4, **TINY), info)
    engine.eval()  # batch norm on running statistics: groups scored independently
    base = engine.critic_score(x, y)
    assert base.shape == (2,)
    for i in range(4):  # relabel example i of the first group
        y2 = y.clone()
        y2[i] = (y[i] + 1) % 4
        changed = engine.critic_score(x, y2)
        assert not torch.isclose(changed[0], base[0], rtol=0, atol=1e-7), i
        assert torch.equal(changed[1], base[1])
    # swapping two examples together with their labels is a different packed input from
    # swapping the examples only
    perm = torch.tensor([1, 0, 2, 3, 4, 5, 6, 7])
    both, only_x = engine.critic_score(x[perm], y[perm]), engine.critic_score(x[perm], y)
    assert not torch.allclose(both[0], only_x[0])


def test_cgan_unused_pack_slots_ignore_their_weights():
    """pack 2 of pack_max 4: weights of slots 3, 4 (examples and labels) do not matter."""
    info, x, y = labelled("points", 8)
    engine = CGAN(CGANConfig(pack=2, **TINY), info)
    scores = engine.critic_score(x, y)
    first = engine.critic[0][0][0]
    with torch.no_grad():
        first.weight[:, 4:8].normal_()  # examples of slots 3, 4 (2 features each)
        first.weight[:, 8 + 8 :].normal_()  # labels of slots 3, 4 (4 classes each)
    assert torch.allclose(engine.critic_score(x, y), scores)
    with torch.no_grad():
        first.weight[:, 8 + 4 : 8 + 8].normal_()  # labels of slot 2: used
    assert not torch.allclose(engine.critic_score(x, y), scores)


def test_cgan_gradient_penalty_with_packed_labels():
    """The packed penalty takes the norm over each group's examples, the labels held fixed."""
    info, x, y = labelled("points", 8)
    engine = CGAN(CGANConfig(loss="wgan-gp", pack=2, **TINY), info)
    cond = torch.nn.functional.one_hot(y, 4).float()
    gp = gradient_penalty(lambda t: engine.discriminate(t, cond)[0], x, x.flip(0), 2)
    assert gp.item() > 0.0 and math.isfinite(gp.item())
    # a linear critic on packed (example, label) input: the gradient norm per group is the norm of
    # the example weights of the used slots, whatever the labels
    w = torch.zeros(4 * (2 + 4))
    w[:4] = torch.tensor([0.6, 0.0, 0.0, 0.8])  # unit norm over the two used example slots
    w[8:] = 5.0  # labels: large weights, no effect on the penalty

    def linear(t: torch.Tensor) -> torch.Tensor:
        return torch.cat([pack_inputs(t, 2, 4), pack_inputs(cond, 2, 4)], 1) @ w

    assert gradient_penalty(linear, x, x.flip(0), 2).item() == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("kind", ["image", "points"])
def test_infogan_trains_packed_with_live_pack_changes(kind):
    info = image_info() if kind == "image" else points_info()
    x = square_images(16) if kind == "image" else ring_points(16)[0]
    engine = InfoGAN(InfoGANConfig(n_categories=3, n_continuous=1, pack=2, **TINY), info)
    assert engine.q_head[-1].out_features == 4 * (3 + 2)
    for step, m in enumerate([2, 4, 1, 3]):
        engine.set_hyper("pack", m)
        terms = engine.training_step(x, step)
        assert_terms(terms, EXPECTED["gan"] | {"mi"})
        assert terms["mi"] <= engine.codes_entropy() + 5.0  # the continuous part is a density
        out = engine.sample(5)
        assert engine.predict_codes(out).shape == (5, 3 + 1)  # 5 is not a multiple of m
        probs = engine.predict_codes(out)[:, :3]
        assert torch.allclose(probs.sum(1), torch.ones(5))


def test_infogan_q_loss_uses_only_the_real_slots():
    engine = InfoGAN(InfoGANConfig(n_categories=4, n_continuous=0, pack=2, **TINY), points_info())
    z = engine.prior_sample(8, torch.Generator().manual_seed(0))
    feats = torch.randn(4, 16, generator=torch.Generator().manual_seed(1))
    q = engine.q_head[-1]
    with torch.no_grad():  # uniform predictions in the real slots 1, 2: bound log K - log K = 0
        q.weight.zero_()
        q.bias.zero_()
        q.bias[8:] = torch.randn(8)  # slots 3, 4: arbitrary, must not count
    assert engine.mi_bound(z, feats).item() == pytest.approx(0.0, abs=1e-6)
    # Q as the identity on 16 features = 4 slots x 4 logits, to set each slot's prediction
    lin = nn.Linear(16, 16)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(16))
        lin.bias.zero_()
    engine.q_head = nn.Sequential(lin)
    codes = z[:, 4:].argmax(1).view(4, 2)  # the category of example i of group g
    logits = torch.zeros(4, 16)
    logits[torch.arange(4), codes[:, 0]] = 50.0  # slot 1 sure and right, slot 2 uniform
    # per example: CE ~ 0 in slot 1, log 4 in slot 2, so the bound is log 4 - (0 + log 4) / 2
    assert engine.mi_bound(z, logits).item() == pytest.approx(math.log(4) / 2, abs=1e-6)
    logits[:, 8:] = torch.randn(4, 8)  # unused slots 3, 4
    assert engine.mi_bound(z, logits).item() == pytest.approx(math.log(4) / 2, abs=1e-6)
    logits[:, 4:8] = torch.randn(4, 4)  # slot 2 is used
    assert engine.mi_bound(z, logits).item() != pytest.approx(math.log(4) / 2, abs=1e-3)
    engine.set_hyper("pack", 4)  # now every slot counts: slots 3, 4 are random, the bound moves
    assert engine.mi_bound(z, logits[:2]).item() != pytest.approx(math.log(4) / 2, abs=1e-3)


def test_infogan_packed_q_gets_no_gradient_from_unused_slots():
    engine = InfoGAN(InfoGANConfig(n_categories=3, n_continuous=1, pack=2, **TINY), points_info())
    x = ring_points(16)[0]
    z = engine.draw_z(16)
    _, feats = engine.discriminate(engine.generator(z).detach())
    engine.mi_bound(z, feats).backward()
    grad = engine.q_head[-1].weight.grad.view(4, 5, -1)
    assert grad[:2].abs().sum() > 0 and torch.equal(grad[2:], torch.zeros_like(grad[2:]))
    assert_terms(engine.training_step(x, 0), EXPECTED["gan"] | {"mi"})


@pytest.mark.parametrize("pack_max", [1, 4])
def test_cgan_checkpoint_round_trip_packed_and_unpacked(tmp_path, pack_max):
    """pack_max 1 is the layout of checkpoints saved before packing existed; both reload."""
    info, x, y = labelled("points", 8)
    engine = CGAN(CGANConfig(pack=pack_max, pack_max=pack_max, n_critic=1, **TINY), info)
    engine.name = "cgan"
    engine.training_step((x, y), 0)
    if pack_max > 1:
        engine.set_hyper("pack", 2)
    path = save_checkpoint(engine, tmp_path / "c.safetensors", step=1, data_spec="ring")
    loaded, _ = load_checkpoint(path)
    assert loaded.config.pack_max == pack_max and loaded.pack_size() == min(pack_max, 2)
    loaded.eval()
    engine.eval()
    assert torch.equal(loaded.critic_score(x, y), engine.critic_score(x, y))
