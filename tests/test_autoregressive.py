"""The autoregressive family: normalisation on tiny spaces, the autoregressive property, drawing and completion."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from engines.data.files import array_dataset
from engines.lib.checkpoint import load_checkpoint, save_checkpoint
from engines.shared.errors import ConfigError
from engines.shared.registry import create_engine

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Every autoregressive model, tiny, with a Bernoulli likelihood.
TINY = {
    "fvsbn": {},
    "nade": {"hidden": 8},
    "made": {"hidden": 32, "depth": 2, "n_masks": 3},
    "pixelcnn": {"channels": 8, "layers": 2},
    "gated-pixelcnn": {"channels": 8, "layers": 2},
}


def info(side: int = 3, width: int | None = None, binarized: bool = True, channels: int = 1):
    x = np.zeros((4, channels, side, width or side), np.float32)
    d = array_dataset("tiny", x, np.zeros(4, int), ("a",)).info
    return dataclasses.replace(d, binarized=0 if binarized else None)


def model(name: str, data, **extra):
    """``name`` with its weights jolted off their initial values, so nothing is trivially uniform."""
    torch.manual_seed(0)
    e = create_engine(name, data, **{**TINY[name], **extra})
    with torch.no_grad():
        for p in e.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    return e.eval()


def all_binary_images(h: int, w: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=h * w))).view(-1, 1, h, w)


@pytest.mark.parametrize("name", list(TINY))
def test_probabilities_of_all_512_binary_3x3_images_sum_to_one(name):
    e = model(name, info(3))
    total = float(e.log_prob(all_binary_images(3, 3)).double().exp().sum())
    assert total == pytest.approx(1.0, abs=1e-5)


def test_every_made_mask_is_normalised():
    e = model("made", info(3))
    x = all_binary_images(3, 3)
    for k in range(3):
        e.set_hyper("mask", k)
        assert float(e.log_prob(x).double().exp().sum()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("gated", [False, True])
def test_the_256_way_softmax_is_normalised_over_all_8_bit_two_pixel_images(gated):
    e = model("pixelcnn", info(1, width=2, binarized=False), gated=gated)
    assert e.config.likelihood == "categorical"
    levels = torch.arange(256.0) / 255
    x = torch.cartesian_prod(levels, levels).view(-1, 1, 1, 2)
    assert float(e.log_prob(x).double().exp().sum()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("name", [*TINY, "pixelcnn-categorical"])
def test_output_i_has_zero_gradient_with_respect_to_inputs_at_or_after_i(name):
    if name == "pixelcnn-categorical":
        e = model("pixelcnn", info(5, binarized=False))
    else:
        e = model(name, info(5))
    if name == "made":
        e.set_hyper("mask", 2)  # a shuffled ordering, not the raster one
    x = torch.rand(1, 1, 5, 5)
    jac = torch.autograd.functional.jacobian(lambda v: e.conditionals(v.view(1, 1, 5, 5)).flatten(2)[0], x.flatten())
    jac = jac.abs().sum(0)  # (D outputs, D inputs), summed over the K logits
    rank = torch.empty(25, dtype=torch.long)
    rank[e.sampling_order()] = torch.arange(25)
    later = rank[None, :] >= rank[:, None]  # input j at or after output i in the order
    assert float(jac[later].abs().max()) == 0.0
    assert float(jac[~later].abs().sum()) > 0  # and it does see the earlier ones


@pytest.mark.parametrize("name", list(TINY))
def test_the_one_position_logits_match_the_full_pass(name):
    e = model(name, info(9, width=11))
    x = (torch.rand(3, 1, 9, 11) > 0.5).float()
    full = e.conditionals(x).flatten(2)
    with torch.no_grad():
        for pos in range(0, 99, 5):
            assert torch.allclose(e.step_logits(x, pos), full[:, :, pos], atol=1e-5), pos


def test_the_gated_pixelcnn_has_no_blind_spot_and_the_plain_one_has():
    """The pixel just above and four to the right of (7, 7), after a 7x7 mask A and three 3x3 mask B layers."""
    for gated in (False, True):
        e = model("pixelcnn", info(15), layers=3, gated=gated)
        x = torch.rand(1, 1, 15, 15, requires_grad=True)
        e.conditionals(x)[0, 0, 0, 7, 7].backward()
        seen = x.grad[0, 0].abs() > 0
        assert bool(seen[6, 10]) and bool(seen[6, 11]) == gated  # the plain net's blind spot
        assert not seen[7, 7:].any() and not seen[8:].any()


def test_a_seeded_draw_is_reproducible_and_binary():
    e = model("nade", info(4))
    a = e.sample(3, torch.Generator().manual_seed(5))
    b = e.sample(3, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}


def test_completion_keeps_the_known_pixels_and_reports_progress():
    e = model("pixelcnn", info(6))
    image = (torch.rand(1, 1, 6, 6) > 0.5).float()
    known = np.zeros((6, 6), bool)
    known[:3] = True
    seen = []
    out = e.draw(4, torch.Generator().manual_seed(0), image=image, known=known,
                 callback=lambda done, total, x, drawn: seen.append((done, total, int(drawn.sum()))), every=5)
    assert torch.equal(out[:, :, :3], image[:, :, :3].expand(4, 1, 3, 6))
    assert seen[-1] == (18, 18, 36) and [s[0] for s in seen] == [5, 10, 15, 18]


def test_a_stopped_draw_returns_the_partial_images():
    e = model("fvsbn", info(4))
    calls = iter(range(100))
    out = e.draw(2, torch.Generator().manual_seed(0), should_stop=lambda: next(calls) >= 6)
    assert out.shape == (2, 1, 4, 4) and float(out.flatten(1)[:, 6:].abs().sum()) == 0.0


def test_made_masks_change_the_order_live_and_training_restores_the_live_mask(tmp_path):
    e = model("made", info(4))
    assert torch.equal(e.sampling_order(), torch.arange(16))
    e.set_hyper("mask", 1)
    order = e.sampling_order()
    assert sorted(order.tolist()) == list(range(16)) and not torch.equal(order, torch.arange(16))
    e.train()
    for step in range(4):  # cycles through masks 0, 1, 2, 0
        e.training_step((torch.rand(8, 1, 4, 4) > 0.5).float(), step)
    assert torch.equal(e.sampling_order(), order)
    e.eval()
    x = (torch.rand(5, 1, 4, 4) > 0.5).float()
    path = save_checkpoint(e, tmp_path / "made.safetensors", step=4, data_spec="tiny")
    again, _ = load_checkpoint(path)
    assert again.h("mask") == 1 and torch.allclose(again.log_prob(x), e.log_prob(x), atol=1e-5)


def test_training_lowers_the_nll_towards_the_entropy_of_the_data():
    """Two 3x3 patterns, equally likely: the best NLL is log 2 nats."""
    patterns = torch.tensor([[1, 0, 1, 0, 1, 0, 1, 0, 1], [0, 1, 0, 1, 0, 1, 0, 1, 0]], dtype=torch.float32)
    for name in ("fvsbn", "made", "pixelcnn"):
        torch.manual_seed(0)
        e = create_engine(name, info(3), **{**TINY[name], "lr": 5e-2, **({"n_masks": 1} if name == "made" else {})})
        batch = patterns.repeat(8, 1).view(-1, 1, 3, 3)
        first = e.training_step(batch, 0)["nll"]
        for step in range(1, 300):
            last = e.training_step(batch, step)["nll"]
        e.eval()
        assert first > 3.0 and last < np.log(2) + 0.15, (name, first, last)
        assert float(e.log_prob(patterns.view(-1, 1, 3, 3)).exp().sum()) > 0.85


def test_the_likelihood_follows_the_data_and_bad_data_are_refused():
    assert create_engine("pixelcnn", info(4)).config.likelihood == "bernoulli"
    assert create_engine("pixelcnn", info(4, binarized=False)).config.likelihood == "categorical"
    with pytest.raises(ConfigError, match="grey images"):
        create_engine("pixelcnn", info(4, channels=3))
    points = array_dataset("pts", np.zeros((4, 2), np.float32), np.zeros(4, int), ("a",)).info
    with pytest.raises(ConfigError, match="pixel by pixel"):
        create_engine("nade", points)
    with pytest.raises(ConfigError, match="likelihood"):
        create_engine("fvsbn", info(4), likelihood="categorical")
