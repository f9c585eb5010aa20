"""Checkpoints: safetensors + manifest round trips, and clean errors on bad files (no pickle)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from engines.lib.checkpoint import METADATA_KEY, load_checkpoint, read_manifest, save_checkpoint
from engines.shared.datainfo import DataInfo
from engines.shared.errors import CheckpointError
from engines.shared.registry import create_engine


pytestmark = pytest.mark.usefixtures("one_torch_thread")


INFO = DataInfo(
    spec="test", kind="image", shape=(1, 16, 16), size=64, n_train=56, n_test=8, class_names=("a", "b")
)
POINTS = DataInfo(
    spec="ring", kind="points", shape=(2,), size=100, n_train=90, n_test=10, modes=((1.0, 0.0), (0.0, 1.0)),
    mode_std=0.1,
)


def batch(seed: int = 0) -> torch.Tensor:
    return torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(seed)).round()


def trained(name: str = "beta-vae", info: DataInfo = INFO, steps: int = 2, **config) -> object:
    torch.manual_seed(0)
    engine = create_engine(name, info, latent_dim=4, width=8, hidden=32, **config)
    for s in range(steps):
        x = batch(s) if info.kind == "image" else torch.randn(16, 2)
        engine.training_step(x, s)
    return engine


@pytest.fixture
def saved(tmp_path: Path) -> tuple[object, Path]:
    engine = trained()
    engine.set_hyper("beta", 2.5)
    engine.set_hyper("lr", 3e-4)
    path = save_checkpoint(
        engine, tmp_path / "run" / "model.safetensors", step=7, data_spec="test", image_size=16, extra={"note": "hi"}
    )
    return engine, path


def test_round_trip_restores_weights_step_hyper_and_optimizer(saved):
    engine, path = saved
    loaded, manifest = load_checkpoint(path)
    assert loaded.name == "beta-vae" and manifest["step"] == 7 and manifest["extra"] == {"note": "hi"}
    assert manifest["data_spec"] == "test" and manifest["image_size"] == 16 and manifest["family"] == "vae"
    assert loaded.data == INFO and loaded.config == engine.config
    z = torch.randn(5, 4)
    assert torch.equal(loaded.decode(z), engine.decode(z))
    assert torch.equal(loaded.kl_ema, engine.kl_ema)
    assert loaded.h("beta") == 2.5 and loaded.h("lr") == 3e-4 and loaded.opt.param_groups[0]["lr"] == 3e-4
    a, b = engine.opt.state_dict(), loaded.opt.state_dict()
    assert a["param_groups"] == b["param_groups"] and a["state"].keys() == b["state"].keys()
    for i, state in a["state"].items():
        for key, value in state.items():
            assert torch.equal(value, b["state"][i][key]), (i, key)
    # Resuming takes exactly the step the original would have taken.
    torch.manual_seed(9)
    t1 = engine.training_step(batch(5), 7)
    torch.manual_seed(9)
    t2 = loaded.training_step(batch(5), 7)
    assert t1 == t2
    assert all(torch.equal(p, q) for p, q in zip(engine.parameters(), loaded.parameters()))


def test_manifest_beside_the_file_and_run_folder(saved):
    engine, path = saved
    side = json.loads(path.with_suffix(".json").read_text())
    assert side == read_manifest(path) == read_manifest(path.with_suffix(".json")) == read_manifest(path.parent)
    assert side["engine"] == "beta-vae" and side["config"]["beta"] == 4.0 and side["hyper"]["beta"] == 2.5
    assert set(side["versions"]) == {"latent-studio", "torch", "numpy", "safetensors"}
    assert side["format_version"] == 1 and side["created"]
    loaded, _ = load_checkpoint(path.parent)  # a run folder
    assert torch.equal(loaded.decode(torch.ones(1, 4)), engine.decode(torch.ones(1, 4)))
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.json", "model.safetensors"]  # no temp files


def test_without_optimizer_and_saving_over(saved, tmp_path):
    engine, path = saved
    loaded, _ = load_checkpoint(path, with_optimizer=False)
    assert loaded.opt.state_dict()["state"] == {}
    assert loaded.h("beta") == 2.5
    engine.training_step(batch(3), 7)
    save_checkpoint(engine, path, step=8, data_spec="test")  # overwrite in place
    assert read_manifest(path)["step"] == 8


def test_points_engine_round_trip(tmp_path):
    engine = trained("vae", POINTS, steps=3)
    path = save_checkpoint(engine, tmp_path / "p.safetensors", step=3, data_spec="ring")
    loaded, manifest = load_checkpoint(path)
    assert loaded.data.modes == POINTS.modes
    assert torch.equal(loaded.log_sigma, engine.log_sigma)
    x = torch.randn(6, 2)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert torch.equal(loaded.log_prob(x, generator=g1), engine.log_prob(x, generator=g2))


def test_unnamed_engine_cannot_be_saved(tmp_path):
    from engines.models.vae.vae import VAE, VAEConfig

    engine = VAE(VAEConfig(latent_dim=2), INFO)
    with pytest.raises(CheckpointError, match="registry name"):
        save_checkpoint(engine, tmp_path / "x.safetensors", step=0, data_spec="test")
    with pytest.raises(CheckpointError, match="JSON"):
        save_checkpoint(trained(steps=0), tmp_path / "y.safetensors", step=0, data_spec="t", extra={"x": math.nan})


# -- bad files -----------------------------------------------------------------------------------
def expect_error(path: Path, *words: str) -> str:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message or path.name in message, message
    for w in words:
        assert w in message, message
    return message


def test_missing_file(tmp_path):
    expect_error(tmp_path / "nope.safetensors", "no such")
    expect_error(tmp_path, "no such")  # a folder without model.safetensors


def test_not_a_safetensors_file(tmp_path):
    cases = [("empty", b""), ("text", b"hello, this is not a checkpoint\n" * 4), ("random", bytes(range(256)) * 8)]
    for name, data in cases:
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(data)
        expect_error(path)


def test_corrupt_header(saved):
    _, path = saved
    data = bytearray(path.read_bytes())
    data[10:40] = b"#" * 30  # inside the JSON header
    path.write_bytes(bytes(data))
    expect_error(path, "corrupt")


def test_truncated_file(saved):
    _, path = saved
    data = path.read_bytes()
    for cut in (len(data) - 7, len(data) // 2, 100):
        path.write_bytes(data[:cut])
        expect_error(path, "truncated")


def test_pickle_payload_is_rejected_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    # A protocol-0 pickle that would call exec(...) when unpickled, written by hand.
    code = f"open({str(marker)!r}, 'w').write('x')"
    payload = b"cbuiltins\nexec\n(V" + code.encode() + b"\ntR."
    path = tmp_path / "evil.safetensors"
    path.write_bytes(payload)
    expect_error(path, "not a safetensors file")
    expect_error(path.rename(tmp_path / "evil.pt"))
    assert not marker.exists()


def test_loading_never_unpickles(saved, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("pickle or torch.load used")

    for target in ("pickle.load", "pickle.loads", "pickle.Unpickler", "torch.load"):
        monkeypatch.setattr(target, forbidden)
    engine, path = saved
    loaded, _ = load_checkpoint(path)
    assert torch.equal(loaded.decode(torch.zeros(2, 4)), engine.decode(torch.zeros(2, 4)))


def rewrite(path: Path, tensors: dict[str, torch.Tensor] | None = None, manifest: dict | str | None = None) -> dict:
    """Re-save a checkpoint with changed tensors and/or manifest; returns the original manifest."""
    from safetensors.torch import load_file

    original = read_manifest(path)
    tensors = load_file(str(path)) if tensors is None else tensors
    if manifest is None:
        manifest = original
    meta = None if manifest == "" else {METADATA_KEY: manifest if isinstance(manifest, str) else json.dumps(manifest)}
    save_file(tensors, str(path), metadata=meta)
    return original


@pytest.mark.parametrize(
    "change, words",
    [
        ("", ["no Latent Studio manifest"]),
        ("{not json", ["not valid JSON"]),
        ("[1, 2]", ["not a JSON object"]),
        ({"format": "something-else"}, ["not a Latent Studio checkpoint"]),
        ({"engine": "no-such-model"}, ["unknown engine", "no-such-model"]),
        ({"step": -3}, ["step"]),
        ({"format_version": 99}, ["newer"]),
        ({"data": {"spec": "x"}}, ["data"]),
        ({"config": {"latent_dim": 4, "arch": "transformer"}}, ["cannot build"]),
        ({"hyper": {"beta": 1e9}}, ["beta"]),
        ({"optimizers": {}}, ["optimiser"]),
        # tampered sizes are refused before anything is built (issue 12: latent_dim 5e7 built for 5 minutes)
        ({"config": {"latent_dim": 50_000_000}}, ["latent_dim", "[0, 4096]"]),
        ({"config": {"latent_dim": 4, "hidden": 10**9}}, ["hidden"]),
        ({"config": {"latent_dim": True}}, ["latent_dim"]),
        ("[" * 100_000 + "]" * 100_000, ["nested absurdly deep"]),
    ],
)
def test_wrong_manifest(saved, change, words):
    _, path = saved
    manifest = read_manifest(path)
    if isinstance(change, dict):
        manifest.update(change)
        change = manifest
    rewrite(path, manifest=change)
    expect_error(path, *words)


@pytest.mark.parametrize("data, words", [
    ({"shape": [1, -8, 8]}, ["image shape"]),
    ({"shape": [7, 8, 8]}, ["image shape"]),
    ({"kind": "audio"}, ["kind"]),
    ({"n_train": -1}, ["n_train"]),
    ({"class_names": ["x"] * 5000}, ["class_names"]),
])
def test_a_tampered_data_description_is_refused_by_field(saved, data, words):
    _, path = saved
    manifest = read_manifest(path)
    manifest["data"] = {**manifest["data"], **data}
    rewrite(path, manifest=manifest)
    expect_error(path, "data description", *words)


def test_remove_required_key(saved):
    _, path = saved
    manifest = read_manifest(path)
    del manifest["config"]
    rewrite(path, manifest=manifest)
    expect_error(path, "lacks config")


def test_tensors_of_another_model_name_the_key(saved, tmp_path):
    _, path = saved
    other = create_engine("beta-vae", INFO, latent_dim=6, width=8, hidden=32)  # same keys, other shapes
    rewrite(path, tensors={k: v.contiguous() for k, v in other.state_dict().items()})
    message = expect_error(path, "shape")
    key = message.split("tensor ")[1].split()[0].strip("'")
    assert key in other.state_dict()


def test_missing_and_unexpected_tensors_name_the_key(saved):
    _, path = saved
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    dropped = sorted(k for k in tensors if not k.startswith("optim."))[0]
    rewrite(path, tensors={k: v for k, v in tensors.items() if k != dropped})
    expect_error(path, dropped, "missing")
    rewrite(path, tensors={**tensors, "decoder.extra.weight": torch.zeros(2)})
    expect_error(path, "decoder.extra.weight", "unexpected")


def test_bad_optimizer_tensor_names_the_key(saved):
    _, path = saved
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    key = next(k for k in tensors if k.endswith(".exp_avg") and tensors[k].dim() == 2)
    tensors[key] = torch.zeros(3, 3)
    rewrite(path, tensors=tensors)
    expect_error(path, key, "shape")


def test_a_configure_with_absurd_sizes_is_refused_before_building():
    """The same caps guard a Configure from the window or a peer (issue 12: latent_dim 1e6 took 10 GB)."""
    from engines.shared.errors import ConfigError
    from engines.shared.registry import SIZE_CAPS, make_config

    with pytest.raises(ConfigError, match="latent_dim must be an integer in"):
        make_config("vae", latent_dim=10**6)
    with pytest.raises(ConfigError, match="width"):
        make_config("gan", width=-4)
    assert make_config("vae", latent_dim=SIZE_CAPS["latent_dim"]).latent_dim == SIZE_CAPS["latent_dim"]
