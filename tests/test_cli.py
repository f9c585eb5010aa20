"""The headless CLI: `latent-studio train` and `sample` on the built-in digits."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
from PIL import Image

import latent_studio


def test_train_then_sample_on_digits(tmp_path) -> None:
    out = tmp_path / "run"
    code = latent_studio.main([
        "train", "--data", "digits", "--model", "beta-vae", "--image-size", "16", "--latent-dim", "3",
        "--steps", "6", "--batch-size", "32", "--beta", "2", "--threads", "1", "--out", str(out),
    ])
    assert code == 0
    for name in ("model.safetensors", "run.json", "metrics.csv", "samples.png"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert {"recon", "kl", "elbo", "kl/z0", "kl/z2"} <= set(rows[0])
    assert all(np.isfinite(float(r["recon"])) for r in rows)
    run = json.loads((out / "run.json").read_text())
    assert run["data_spec"] == "digits" and run["step"] == 6
    assert run["config"]["beta"] == 2.0 and run["config"]["latent_dim"] == 3
    held = run["held_out"]
    assert held["kind"] == "elbo" and held["nats"] < 0 and held["nll_nats"] == -held["nats"]
    assert held["space"] == "bernoulli-pseudo" and "bits_per_dim" not in held  # grey digits: a pseudo-likelihood
    assert Image.open(out / "samples.png").size[0] > 16 * 8

    png = tmp_path / "s.png"
    assert latent_studio.main(["sample", "--run", str(out), "--n", "9", "--seed", "3", "--out", str(png)]) == 0
    first = np.asarray(Image.open(png))
    assert latent_studio.main(["sample", "--run", str(out), "--n", "9", "--seed", "3", "--out", str(png)]) == 0
    assert np.array_equal(first, np.asarray(Image.open(png)))  # same seed, same picture


def test_points_data_trains_with_mlp(tmp_path) -> None:
    out = tmp_path / "ring"
    assert latent_studio.main([
        "train", "--data", "ring", "--model", "vae", "--latent-dim", "2", "--steps", "3", "--threads", "1",
        "--out", str(out),
    ]) == 0
    assert json.loads((out / "run.json").read_text())["config"]["arch"] == "mlp"


def test_a_run_stopped_by_max_seconds_before_its_first_log_writes_every_term(tmp_path) -> None:
    """--max-seconds may stop before the first --log-every step: the last step is still logged, every
    loss term a column of metrics.csv (a GAN's d_loss, g_loss, ... once failed the CSV writer)."""
    import csv

    out = tmp_path / "gan"
    assert latent_studio.main([
        "train", "--data", "ring", "--model", "gan", "--steps", "1000", "--log-every", "1000", "--max-seconds", "0.001",
        "--threads", "1", "--out", str(out),
    ]) == 0
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert len(rows) == 1 and rows[0]["step"] == "1" and rows[0]["d_loss"] and rows[0]["g_loss"]


def test_bad_input_is_a_clear_error_not_a_traceback(tmp_path) -> None:
    bad = tmp_path / "bad-images-idx3-ubyte"
    bad.write_bytes(b"\x00\x00\x08\x03" + b"\x00\x00\x00\x05" + b"\x00\x00\x00\x1c" * 2 + b"\x00" * 10)
    proc = subprocess.run(
        [sys.executable, "-m", "latent_studio", "train", "--data", f"idx:{bad}", "--model", "vae", "--steps", "1",
         "--out", str(tmp_path / "x")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert str(bad.name) in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "latent_studio", "sample", "--run", str(tmp_path / "missing"), "--out", str(tmp_path / "y.png")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2 and "missing" in proc.stderr and "Traceback" not in proc.stderr


def test_set_passes_any_model_setting_typed_and_checks_it_first(tmp_path) -> None:
    """``--set n_masks=1`` reaches the config (run.json says so); an unknown key or a bad value is one line, no run."""
    from latent_studio import main

    out = tmp_path / "made"
    assert main(["train", "--data", "binarized:digits", "--model", "made", "--steps", "2", "--set", "n_masks=1",
                 "--set", "hidden=16", "--out", str(out)]) == 0
    config = json.loads((out / "run.json").read_text())["config"]
    assert config["n_masks"] == 1 and config["hidden"] == 16
    for bad, words in ((["--set", "bogus=1"], "has no such setting"), (["--set", "hidden=abc"], "not a int"),
                       (["--set", "hidden"], "KEY=VALUE")):
        proc = subprocess.run([sys.executable, "-m", "latent_studio", "train", "--data", "digits", "--model", "made",
                               "--steps", "1", "--out", str(tmp_path / "bad"), *bad],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr
        assert not (tmp_path / "bad").exists()


def test_an_export_with_the_wrong_suffix_is_named_as_typed(tmp_path) -> None:
    """``--out t.webm`` is refused before the checkpoint loads, naming t.webm (not t.webm.json)."""
    for command, extra in (("traverse", []), ("interpolate", ["--from", "random:0", "--to", "random:1", "--frames", "4"])):
        proc = subprocess.run([sys.executable, "-m", "latent_studio", command, "--run", str(tmp_path / "nowhere"),
                               "--out", str(tmp_path / "t.webm"), *extra], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and "t.webm:" in proc.stderr and ".json" not in proc.stderr


def test_an_energy_models_run_records_its_held_out_free_energies_and_a_twins_elbo(tmp_path) -> None:
    import json

    for model, extra in (("rbm", {"free_energy_held_out", "free_energy_train", "free_energy_gap"}),
                         ("helmholtz", {"held_out_neg_elbo_vae"})):
        out = tmp_path / model
        assert latent_studio.main(["train", "--data", "binarized:digits", "--model", model, "--image-size", "8",
                                   "--latent-dim", "8", "--steps", "40", "--threads", "1", "--out", str(out)]) == 0
        run = json.loads((out / "run.json").read_text())
        assert set(run["held_out_terms"]) == extra and all(np.isfinite(v) for v in run["held_out_terms"].values())
