"""The deep belief net (issue 16): the layer in training follows the step and the frozen layers stay put, the up and
down passes' shapes, a one-layer DBN trained as an RBM is that RBM, samples of the stack look like bars and
stripes after training on them, a checkpoint taken in the second layer's turn resumes exactly, and the chain and
filter methods the Energy tab calls."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from engines.data.files import array_dataset
from engines.lib.checkpoint import load_checkpoint, save_checkpoint
from engines.shared.capabilities import CapabilityError
from engines.shared.errors import ConfigError
from engines.shared.registry import create_engine

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIDE = 4


def bars_and_stripes() -> np.ndarray:
    """The 30 distinct 4x4 bars-and-stripes images (every row, or every column, on or off), (30, 4, 4) float32."""
    out = []
    for bits in itertools.product([0.0, 1.0], repeat=SIDE):
        row = np.array(bits, np.float32)
        out += [np.repeat(row[:, None], SIDE, 1), np.repeat(row[None, :], SIDE, 0)]
    return np.unique(np.stack(out), axis=0)


@pytest.fixture(scope="module")
def data():
    patterns = bars_and_stripes()
    return array_dataset("bars", patterns[np.arange(300) % len(patterns)][:, None])


def batches(data, n: int, size: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield torch.as_tensor(data.x[rng.integers(0, len(data.x), size)])


def params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_the_layer_in_training_follows_the_step_and_the_layers_below_stay_frozen(data) -> None:
    dbn = create_engine("dbn", data.info, hidden=8, layers=2, latent_dim=5, layer_steps=4, momentum=0.9)
    assert dbn.n_layers == 3 and dbn.sizes == (16, 8, 8, 5)
    assert [dbn.current_layer(s) for s in (0, 3, 4, 7, 8, 10**6)] == [0, 0, 1, 1, 2, 2]
    start = [params(r) for r in dbn.rbms]
    layers, snapshots = [], []
    for step, batch in enumerate(batches(data, 14)):
        if step % 4 == 0:
            snapshots.append([params(r) for r in dbn.rbms])
        layers.append(dbn.training_step(batch, step)["layer"])
    end = [params(r) for r in dbn.rbms]
    assert layers == [1.0] * 4 + [2.0] * 4 + [3.0] * 6  # 1-based, the top keeps training after its turn

    def same(a, b):
        return all(torch.equal(a[k], b[k]) for k in a)

    # while layer 1 trains the others keep their initial weights; after its turn layer 1 never changes again
    assert not same(snapshots[1][0], start[0]) and same(snapshots[1][1], start[1]) and same(snapshots[1][2], start[2])
    assert same(end[0], snapshots[1][0]) and same(snapshots[2][1], end[1]) and not same(end[1], start[1])
    assert not same(end[2], snapshots[2][2])
    assert {"layer", "recon", "free_energy", "pseudo_nll"} <= set(dbn.training_step(next(batches(data, 1)), 99))


def test_the_up_and_down_passes_have_the_layers_shapes(data) -> None:
    dbn = create_engine("dbn", data.info, hidden=7, layers=2, latent_dim=5)
    x = torch.as_tensor(data.x[:6])
    v = x.flatten(1)
    assert dbn.up(v, 0, sample=False) is v
    for to, width in ((1, 7), (2, 7)):
        up = dbn.up(v, to, sample=True, generator=torch.Generator().manual_seed(0))
        assert up.shape == (6, width) and set(up.unique().tolist()) <= {0.0, 1.0}
    means, states = dbn.down(torch.ones(6, 7), 2, sample=True, generator=torch.Generator().manual_seed(0))
    assert means.shape == states.shape == (6, 16) and set(states.unique().tolist()) <= {0.0, 1.0}
    with torch.no_grad():
        means, again = dbn.down(torch.ones(6, 7), 2, sample=False)
    assert torch.equal(means, again) and 0 <= float(means.min()) and float(means.max()) <= 1
    assert [h.shape for h in dbn.hidden_layers(x)] == [(6, 7), (6, 7), (6, 5)]
    assert torch.equal(dbn.encode(x), dbn.hidden_layers(x)[-1])
    z = dbn.prior_sample(4, torch.Generator().manual_seed(0))
    assert z.shape == (4, 5) and set(z.unique().tolist()) <= {0.0, 1.0}
    assert dbn.decode(z).shape == (4, 1, SIDE, SIDE)
    s = dbn.sample(4, torch.Generator().manual_seed(1))
    assert torch.equal(s, dbn.sample(4, torch.Generator().manual_seed(1)))  # seeded: reproducible
    with pytest.raises(CapabilityError, match="likelihood"):
        dbn.log_prob(x)


@pytest.mark.parametrize("persistent", [False, True])
def test_a_dbn_with_no_lower_layer_is_an_rbm_trained_the_same_way(data, persistent) -> None:
    settings = dict(latent_dim=6, lr=0.1, momentum=0.5, persistent=persistent, chains=12, seed=3, sample_sweeps=20)
    rbm = create_engine("rbm", data.info, **settings)
    dbn = create_engine("dbn", data.info, layers=0, layer_steps=1, **settings)
    top = dbn.rbms[0]
    assert torch.equal(top.W, rbm.W) and torch.equal(top.persistent_v, rbm.persistent_v)  # the same initial draws
    for model in (rbm, dbn):
        torch.manual_seed(0)
        terms = [model.training_step(b, step) for step, b in enumerate(batches(data, 25))]
        model.terms = terms[-1]
    assert torch.equal(top.W, rbm.W) and torch.equal(top.b, rbm.b) and torch.equal(top.c, rbm.c)
    assert all(dbn.terms[k] == rbm.terms[k] for k in rbm.terms)
    gen = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    assert torch.equal(dbn.sample(3, gen()), rbm.sample(3, gen()))
    v = rbm.chain_start(4, gen())
    assert torch.equal(dbn.chain_step(v, gen()), rbm.chain_step(v, gen()))
    assert torch.equal(dbn.chain_images(v, gen()), rbm.chain_images(v, gen()))
    assert torch.equal(dbn.filters(), rbm.filters())


def test_samples_of_the_stack_look_like_the_bars_and_stripes_it_was_trained_on(data) -> None:
    torch.manual_seed(0)
    dbn = create_engine("dbn", data.info, hidden=32, layers=1, latent_dim=32, layer_steps=1000, lr=0.1,
                        sample_sweeps=200)
    for step, batch in enumerate(batches(data, 3000)):
        dbn.training_step(batch, step)
    valid = {p.tobytes() for p in bars_and_stripes()}
    shown = (dbn.sample(200, torch.Generator().manual_seed(0)) > 0.5).float().numpy()[:, 0]
    hits = [p.tobytes() for p in shown if p.tobytes() in valid]
    # chance: 30 of the 65,536 binary 4x4 images; the stack's samples are mostly bars and stripes, and varied
    assert len(hits) >= 100 and len(set(hits)) >= 15, (len(hits), len(set(hits)))
    x = torch.as_tensor(bars_and_stripes()[:, None])
    assert float(((dbn.decode(dbn.encode(x)) > 0.5).float() != x).float().mean()) < 0.05  # the up-down pass


def test_a_checkpoint_in_the_second_layers_turn_resumes_exactly(data, tmp_path) -> None:
    dbn = create_engine("dbn", data.info, hidden=8, layers=1, latent_dim=5, layer_steps=6, momentum=0.9,
                        persistent=True, chains=10)
    dbn.set_hyper("lr", 0.2)
    stream = batches(data, 10)
    for step in range(9):
        dbn.training_step(next(stream), step)
    assert dbn.current_layer(9) == 1
    path = save_checkpoint(dbn, tmp_path / "dbn.safetensors", step=9, data_spec="bars")
    again, manifest = load_checkpoint(path)
    assert manifest["step"] == 9 and again.h("lr") == 0.2 and set(again.optimizer_states()) == {"sgd1", "sgd2"}
    batch = next(stream)
    out = []
    for model in (dbn, again):
        torch.manual_seed(11)
        out.append(model.training_step(batch, 9))
    assert out[0] == out[1] and out[0]["layer"] == 2.0
    after, resumed = dbn.state_dict(), again.state_dict()
    assert all(torch.equal(after[k], resumed[k]) for k in after)  # momentum and PCD's chains came back too


def test_filters_of_each_layer_are_receptive_fields_in_pixel_space(data) -> None:
    dbn = create_engine("dbn", data.info, hidden=7, layers=2, latent_dim=5)
    for layer, units in enumerate((7, 7, 5)):
        f = dbn.filters(layer)
        assert f.shape == (units, 1, SIDE, SIDE) and 0 <= float(f.min()) and float(f.max()) <= 1
        assert torch.allclose(f.flatten(1).sub(0.5).abs().amax(1), torch.full((units,), 0.5))  # scaled per unit
    w = (dbn.rbms[0].W @ dbn.rbms[1].W).detach().T  # the linear map from the pixels to layer 2's units
    assert torch.allclose(dbn.filters(1).flatten(1) - 0.5, 0.5 * w / w.abs().amax(1, keepdim=True), atol=1e-6)
    for bad in (3, -1, True, 1.0):
        with pytest.raises(ConfigError, match="layer"):
            dbn.filters(bad)


@torch.no_grad()  # as the worker runs them (under inference mode)
def test_the_chain_methods_keep_the_pixel_state_binary(data) -> None:
    dbn = create_engine("dbn", data.info, hidden=7, layers=2, latent_dim=5)
    gen = torch.Generator().manual_seed(0)
    v = dbn.chain_start(6, gen)
    assert v.shape == (6, 16) and set(v.unique().tolist()) <= {0.0, 1.0}
    clamp = dbn.clamp_values(torch.as_tensor(data.x[:1]), gen)
    assert clamp.shape == (1, 16) and torch.equal(clamp, torch.as_tensor(data.x[:1]).reshape(1, -1))  # binary data
    for _ in range(3):
        v = dbn.chain_step(v, gen)
        assert v.shape == (6, 16) and set(v.unique().tolist()) <= {0.0, 1.0}
    images = dbn.chain_images(v, gen)
    assert images.shape == (6, 1, SIDE, SIDE) and 0 <= float(images.min()) and float(images.max()) <= 1


def test_bad_settings_are_refused(data) -> None:
    with pytest.raises(ConfigError, match="hidden"):
        create_engine("dbn", data.info, hidden=0, layers=1)
    with pytest.raises(ConfigError, match="layer_steps"):
        create_engine("dbn", data.info, layer_steps=0)
    assert create_engine("dbn", data.info, hidden=0, layers=0, latent_dim=4).sizes == (16, 4)
