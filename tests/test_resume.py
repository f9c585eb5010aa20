"""Exact resume (issue 12): a run of 2N steps and a run stopped at N and resumed give the same loss at every
step; the data stream, the random generators and learning-rate schedules continue where they stood; a
damaged checkpoint is refused by its SHA-256."""

from __future__ import annotations

import csv
import json
import random
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import latent_studio
from engines.lib import resume as R
from engines.lib.checkpoint import load_checkpoint, read_resume_state
from engines.lib.training import BatchStream, lr_factor
from engines.shared.errors import CheckpointError, ConfigError
from test_training_helpers import ids, make_dataset


def rows(run: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(open(run / "metrics.csv")))


def train(*args: str) -> None:
    assert latent_studio.main(["train", "--threads", "1", *args]) == 0


@pytest.mark.parametrize("lazy,prefetch", [(False, False), (True, False), (True, True)])
def test_a_stream_resumed_from_its_state_yields_the_batches_that_followed(lazy: bool, prefetch: bool) -> None:
    whole = BatchStream(make_dataset(50, lazy=lazy), 8, seed=3, prefetch=prefetch)
    want = [ids(next(whole)) for _ in range(14)]  # 5 batches an epoch: almost three epochs
    for cut in (3, 5, 9):  # inside an epoch, at its end, in the next
        first = BatchStream(make_dataset(50, lazy=lazy), 8, seed=3, prefetch=prefetch)
        got = [ids(next(first)) for _ in range(cut)]
        tensors, meta = first.state_dict()
        first.close()
        again = BatchStream(make_dataset(50, lazy=lazy), 8, seed=99, prefetch=prefetch)  # the seed is in the state
        again.load_state_dict(tensors, json.loads(json.dumps(meta)))
        got += [ids(next(again)) for _ in range(14 - cut)]
        assert got == want, cut
        assert again.images_seen == whole.images_seen and again.epoch == whole.epoch
        again.close()
    whole.close()


def test_a_stream_state_for_another_split_or_batch_is_refused() -> None:
    tensors, meta = BatchStream(make_dataset(50), 8, seed=0).state_dict()
    with pytest.raises(ConfigError, match="batches of 8"):
        BatchStream(make_dataset(50), 4, seed=0).load_state_dict(tensors, meta)
    with pytest.raises(ConfigError, match="out of range"):
        BatchStream(make_dataset(50), 8, seed=0).load_state_dict(tensors, {**meta, "position": -1})
    with pytest.raises(ConfigError, match="malformed"):
        BatchStream(make_dataset(50), 8, seed=0).load_state_dict({}, meta)


def test_the_generators_come_back_as_they_were() -> None:
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    np.random.normal()  # numpy's cached Gaussian is part of its state
    state = R.capture()
    first = (torch.rand(3), np.random.normal(size=3), random.random())
    R.restore_rng(R.ResumeState({k: v.clone() for k, v in state.tensors.items()}, json.loads(json.dumps(state.meta))))
    again = (torch.rand(3), np.random.normal(size=3), random.random())
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1]) and first[2] == again[2]
    broken = R.ResumeState({**state.tensors, "rng.numpy": torch.zeros(5, dtype=torch.int64)}, state.meta)
    with pytest.raises(CheckpointError, match="malformed"):
        R.restore_rng(broken, "x.safetensors")


def test_learning_rate_schedules() -> None:
    assert lr_factor("constant", 7, 10) == 1.0
    assert lr_factor("cosine", 1, 100) == pytest.approx(1.0, abs=1e-3) and lr_factor("cosine", 100, 100) == 0.01
    assert lr_factor("cosine", 50, 100) == pytest.approx(0.505, abs=0.02)
    assert lr_factor("warmup", 1, 100) == 0.2 and lr_factor("warmup", 5, 100) == 1.0
    with pytest.raises(ConfigError, match="cosine"):
        lr_factor("cyclic", 1, 10)


# a VAE; a GAN with five critic updates a step (two optimisers); a model whose loss follows a step-keyed
# schedule (the annealed VAE's KL capacity) on lazily drawn shapes with prefetch
CASES = {
    "vae": ["--data", "digits", "--model", "vae", "--image-size", "8", "--latent-dim", "3"],
    "wgan": ["--data", "ring", "--model", "wgan"],
    "annealed-vae": ["--data", "shapes:16", "--model", "annealed-vae", "--latent-dim", "3"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_2n_steps_equal_n_saved_and_resumed_for_n_more(tmp_path: Path, case: str) -> None:
    common = [*CASES[case], "--batch-size", "16", "--seed", "5"]
    train(*common, "--steps", "24", "--out", str(tmp_path / "whole"))
    train(*common, "--steps", "12", "--out", str(tmp_path / "half"))
    train("--resume", str(tmp_path / "half"), "--steps", "12")
    whole, resumed = rows(tmp_path / "whole"), rows(tmp_path / "half")
    assert [r["step"] for r in resumed] == [str(s) for s in range(1, 25)]
    assert resumed == whole  # every term at every step, to the last digit
    run = json.loads((tmp_path / "half" / "run.json").read_text())
    assert run["step"] == 24 and run["train"]["resumed_from"] == 12 and "resume" not in run


def test_a_run_cut_short_resumes_to_its_planned_steps_with_its_learning_rate_schedule(tmp_path: Path) -> None:
    common = [*CASES["vae"], "--batch-size", "16", "--steps", "40", "--lr-schedule", "cosine"]
    train(*common, "--out", str(tmp_path / "whole"))
    train(*common, "--max-seconds", "0.05", "--out", str(tmp_path / "cut"))  # stopped after a few steps
    cut = int(json.loads((tmp_path / "cut" / "run.json").read_text())["step"])
    assert 1 <= cut < 40
    train("--resume", str(tmp_path / "cut"))  # no --steps: the 40 it planned
    assert rows(tmp_path / "cut") == rows(tmp_path / "whole")
    group = json.loads((tmp_path / "cut" / "model.json").read_text())["optimizers"]["adam"]["param_groups"][0]
    assert group["lr"] == pytest.approx(group["initial_lr"] * 0.01)  # the cosine's end, saved
    assert latent_studio.main(["train", "--resume", str(tmp_path / "cut")]) == 2  # nothing left, no --steps


def test_resume_refuses_to_change_the_run_and_names_a_checkpoint_without_resume_state(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    train(*CASES["vae"], "--steps", "2", "--out", str(run))
    assert latent_studio.main(["train", "--resume", str(run), "--steps", "2", "--model", "gan"]) == 2
    assert "--model cannot change it" in capsys.readouterr().err
    assert latent_studio.main(["train", "--out", str(run)]) == 2
    assert "train needs --data" in capsys.readouterr().err
    from engines.lib.checkpoint import save_checkpoint

    engine, manifest = load_checkpoint(run)
    save_checkpoint(engine, run / "model.safetensors", step=2, data_spec="digits", image_size=8)  # no resume state
    assert read_resume_state(run) is None
    assert latent_studio.main(["train", "--resume", str(run), "--steps", "2"]) == 2
    assert "saved without the state an exact resume needs" in capsys.readouterr().err


def test_flipped_bytes_and_diverged_weights_are_refused_by_name(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(*CASES["vae"], "--steps", "2", "--out", str(run))
    path = run / "model.safetensors"
    data = bytearray(path.read_bytes())
    (n,) = struct.unpack("<Q", data[:8])
    data[8 + n + 100] ^= 0x10  # one bit of one weight
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256") as err:
        load_checkpoint(damaged)
    assert str(damaged) in str(err.value)

    from engines.lib.checkpoint import save_checkpoint

    engine, _ = load_checkpoint(run)
    with torch.no_grad():
        next(engine.parameters()).fill_(float("nan"))
    save_checkpoint(engine, tmp_path / "nan.safetensors", step=2, data_spec="digits", image_size=8)
    with pytest.raises(CheckpointError, match="NaN or inf"):
        load_checkpoint(tmp_path / "nan.safetensors")
