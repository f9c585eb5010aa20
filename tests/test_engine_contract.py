"""One contract test for every registered engine, driven by what each declares (scikit-learn's check_estimator).

Parametrised over :data:`engines.shared.registry.MODELS`: a new registry line is covered with no edit here.
Each engine is built on tiny data (8x8 labelled images, or 2-D points where it declares a critic map), takes a
training step with finite terms, samples in range, exercises every capability it declares (encode and decode
shapes, the exact inverse's round trip, log_prob's shape and sign, IWAE, per-dimension KL, the critic, packing,
conditioning), refuses the ones it does not declare with :class:`CapabilityError`, and survives a checkpoint
save and load with identical outputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engines.data.files import array_dataset
from engines.lib.checkpoint import load_checkpoint, save_checkpoint
from engines.lib.training import BatchStream
from engines.shared.capabilities import EXTRAS, Capabilities, CapabilityError
from engines.shared.datainfo import DataInfo
from engines.shared.registry import MODELS, create_engine
from engines.shared.spec import LATENT_KINDS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Settings that make every registered model tiny; each engine takes those its config has.
TINY = {"latent_dim": 3, "width": 4, "hidden": 16, "d_hidden": 16, "d_depth": 2, "n_categories": 3, "n_continuous": 1}
N, SIDE = 48, 8


def images() -> object:
    """48 labelled 8x8 grey images in [0, 1] (3 classes), as a data set."""
    rng = np.random.default_rng(0)
    x = rng.random((N, 1, SIDE, SIDE)).astype(np.float32)
    y = np.arange(N) % 3
    return array_dataset("contract", x, y, ("a", "b", "c"))


def tiny(name: str, info: DataInfo):
    """``name`` built for ``info`` with every TINY setting its config accepts."""
    from dataclasses import fields

    from engines.shared.registry import engine_class

    known = {f.name for f in fields(engine_class(name).config_class)}
    torch.manual_seed(0)
    return create_engine(name, info, **{k: v for k, v in TINY.items() if k in known})


def batch(engine, dataset, size: int = 16):
    return next(BatchStream(dataset, size, 0, torch.device("cpu"), with_labels=engine.capabilities.conditional))


@pytest.fixture(scope="module")
def data():
    return images()


@pytest.mark.parametrize("name", list(MODELS))
def test_declaration_is_well_formed(name):
    caps = MODELS[name].capabilities
    assert isinstance(caps, Capabilities)
    assert caps == Capabilities.from_json(caps.to_json())  # it travels in Ready
    assert set(caps.latent) <= set(LATENT_KINDS) and set(caps.extras) <= set(EXTRAS)


@pytest.mark.parametrize("name", list(MODELS))
def test_engine_honours_its_declaration(name, data, tmp_path):
    caps = MODELS[name].capabilities
    engine = tiny(name, data.info)
    assert engine.capabilities == caps
    assert set(engine.latent.kinds) <= set(caps.latent), "z holds a kind the registry line does not declare"
    assert set(engine.hyper) <= set(caps.hyper), "a live hyperparameter the registry line does not declare"
    x = torch.as_tensor(data.get(np.arange(8)))

    # a training step with finite terms
    terms = engine.training_step(batch(engine, data), 0)
    assert terms and all(np.isfinite(v) for v in terms.values()), terms

    # sampling: shape and range
    engine.eval()
    s = engine.sample(5, torch.Generator().manual_seed(0))
    assert s.shape == (5, 1, SIDE, SIDE) and float(s.min()) >= 0.0 and float(s.max()) <= 1.0
    z = engine.prior_sample(5, torch.Generator().manual_seed(1))
    assert z.shape == (5, engine.latent.dim)
    if "none" in engine.latent.kinds:  # no latent (autoregressive): nothing to decode, sampling is seeded
        with pytest.raises(CapabilityError, match="no latent"):
            engine.decode(z)
        again_s = engine.sample(5, torch.Generator().manual_seed(0))
        assert torch.equal(s, again_s), "a seeded sample is not reproducible"
    else:
        assert engine.decode(z).shape == (5, 1, SIDE, SIDE)

    # encoder: declared -> shapes (and the exact inverse's round trip); undeclared -> refused
    if caps.has_encoder:
        code = engine.encode(x)
        assert code.shape == (8, engine.latent.dim) and torch.isfinite(code).all()
        if caps.encoder == "exact":
            assert torch.allclose(engine.decode(code), x, atol=1e-4)
    else:
        with pytest.raises(CapabilityError, match="encoder"):
            engine.encode(x)

    # likelihood: (N,) finite nats; under a Bernoulli decoder every term is a log-probability, so <= 0
    if caps.has_likelihood:
        lp = engine.log_prob(x)
        assert lp.shape == (8,) and torch.isfinite(lp).all()
        if getattr(engine.config, "likelihood", "") == "bernoulli":
            assert bool((lp <= 0).all()), lp
        if "iwae" in caps.likelihood:
            iw = engine.iwae_bound(x, k=4, generator=torch.Generator().manual_seed(0))
            assert iw.shape == (8,) and torch.isfinite(iw).all()
    else:
        with pytest.raises(CapabilityError, match="likelihood"):
            engine.log_prob(x)

    # extras
    if caps.has("latent_kl"):
        kl = engine.latent_kl()
        assert kl.shape == (engine.latent.dim,) and bool((kl >= -1e-6).all())
    if caps.has("pack"):
        assert engine.pack_size() >= 1
    if caps.has("codebook"):
        usage, dead = engine.code_usage()
        assert usage.ndim == 1 and usage.shape == dead.shape and dead.dtype == torch.bool
    if caps.has("chains"):  # what the Energy tab's jobs call
        with torch.no_grad():
            v = engine.chain_step(engine.chain_start(3, torch.Generator().manual_seed(0)))
            assert engine.chain_images(v).shape == (3, 1, SIDE, SIDE)
            assert [h.shape[0] for h in engine.hidden_layers(x)] and engine.clamp_values(x[:1]).shape[0] == 1
    if caps.has("critic_map") and not caps.conditional:
        m = engine.pack_size() if caps.has("pack") else 1
        assert engine.critic_score(x.repeat_interleave(m, 0)).shape == (8,)

    # checkpoint: save, load, identical outputs from the same z
    path = save_checkpoint(engine, tmp_path / "model.safetensors", step=1, data_spec="contract")
    again, manifest = load_checkpoint(path)
    again.eval()
    assert manifest["step"] == 1 and again.capabilities == caps
    with torch.no_grad():
        if engine.latent.dim:
            assert torch.equal(engine.decode(z), again.decode(z))
        else:
            gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
            assert torch.equal(engine.sample(4, gen()), again.sample(4, gen()))
        if "exact" in caps.likelihood:  # deterministic: the same nats after the round trip
            assert torch.allclose(engine.log_prob(x), again.log_prob(x), atol=1e-4)
        if caps.has_encoder:
            assert torch.equal(engine.encode(x), again.encode(x))


def test_an_undeclared_capability_names_the_model_and_what_it_declares(data):
    engine = tiny("gan", data.info)
    with pytest.raises(CapabilityError, match=r"gan does not declare 'encoder' \(it declares latent gaussian"):
        engine.encode(torch.zeros(1, 1, SIDE, SIDE))
    with pytest.raises(CapabilityError):
        engine.capabilities.require("iwae", "gan")
