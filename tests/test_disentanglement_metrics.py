"""Disentanglement metrics (MIG, SAP, DCI, FactorVAE and beta-VAE scores) on codes with known answers."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score
from sklearn.tree import DecisionTreeClassifier

from engines.shared.datainfo import DataInfo
from engines.shared.errors import DataError, LatentStudioError
from engines.metrics.disentanglement import (
    beta_vae_score,
    dci,
    factor_vae_score,
    histogram_discretize,
    images_of,
    mig,
    mig_details,
    mutual_info_matrix,
    sample_factors,
    sap,
    sap_score_matrix,
)

SIZES = (3, 4, 5)


def draw_factors(n: int, sizes: tuple[int, ...] = SIZES, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, s, n) for s in sizes], axis=1)


def entropy_nats(values: np.ndarray) -> float:
    p = np.bincount(values) / len(values)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def rotated(f: np.ndarray, seed: int = 1) -> np.ndarray:
    """The standardised factors turned by a random rotation: every latent mixes every factor."""
    z = (f - f.mean(0)) / f.std(0)
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(f.shape[1], f.shape[1])))
    return z @ q


class GridData:
    """A ground-truth data set whose "images" (1, 1, K) are the factor values themselves."""

    def __init__(self, sizes: tuple[int, ...] = SIZES, lookup: bool = True) -> None:
        self.sizes = sizes
        n = int(np.prod(sizes))
        self.info = DataInfo(spec="grid-of-factors", kind="image", shape=(1, 1, len(sizes)), size=n, n_train=n,
                             n_test=0, factor_names=tuple(f"f{k}" for k in range(len(sizes))), factor_sizes=sizes)
        if lookup:
            self.index_of = lambda f: np.ravel_multi_index(tuple(np.asarray(f).T), self.sizes)

    def get(self, indices: np.ndarray) -> np.ndarray:
        return np.stack(np.unravel_index(indices, self.sizes), axis=1).astype(np.float32)[:, None, None, :]


def identity(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1)


# -- mutual information and MIG ------------------------------------------------------------------


def test_histogram_discretize_uses_twenty_bins_per_latent() -> None:
    z = np.random.default_rng(0).uniform(size=(1000, 3)) * [1.0, 10.0, 0.01] - [0.0, 5.0, 3.0]
    d = histogram_discretize(z)
    assert d.min() == 1 and d.max() == 20
    assert [len(np.unique(d[:, j])) for j in range(3)] == [20, 20, 20]  # per-latent edges, whatever the scale
    assert np.array_equal(histogram_discretize(z, n_bins=5).max(0), [5, 5, 5])


def test_mutual_info_of_copied_factors_is_their_entropy_in_nats() -> None:
    f = draw_factors(2000)
    m = mutual_info_matrix(f.astype(float), f)
    assert m.shape == (3, 3)
    for k in range(3):
        assert m[k, k] == pytest.approx(entropy_nats(f[:, k]), rel=1e-9)
    assert m[k, k] > math.log(SIZES[k]) - 0.01
    assert (m[~np.eye(3, dtype=bool)] < 0.02).all()


def test_mig_of_the_factors_themselves_is_near_one() -> None:
    f = draw_factors(2000)
    assert mig(f.astype(float), f) > 0.97


def test_mig_drops_for_a_rotation_and_vanishes_for_noise() -> None:
    f = draw_factors(2000)
    noise = np.random.default_rng(5).normal(size=(2000, 3))
    perfect, mixed, none = mig(f.astype(float), f), mig(rotated(f), f), mig(noise, f)
    assert mixed < 0.7 * perfect
    assert none < 0.03


def test_mig_gap_is_zero_for_a_factor_split_over_two_latents() -> None:
    f = draw_factors(2000)
    z = np.c_[f, f[:, 0] * 2.0 + 1.0].astype(float)  # factor 0 in latents 0 and 3
    d = mig_details(z, f)
    assert d.gaps[0] == pytest.approx(0.0, abs=1e-9)
    assert (d.gaps[1:] > 0.97).all()
    assert d.mig == pytest.approx(d.gaps.mean())
    assert d.mi.shape == (4, 3) and list(d.top_latent[1:]) == [1, 2]
    assert d.entropy[2] == pytest.approx(mutual_info_score(f[:, 2], f[:, 2]))


def test_one_latent_carrying_two_factors_keeps_mig_but_lowers_dci_disentanglement() -> None:
    # MIG only penalises a factor spread over latents; a latent shared by two factors is what DCI's
    # disentanglement (and MIG-sup, not implemented) catch.
    f = draw_factors(2000)
    rng = np.random.default_rng(2)
    z = np.c_[f[:, 0] * SIZES[1] + f[:, 1], rng.normal(size=2000), f[:, 2]].astype(float)
    assert mig(z, f) > 0.9
    shared = dci(z[:400], f[:400]).disentanglement  # about 1 with one latent per factor (test below)
    # Latent 0 holds about two thirds of the importance, split evenly between two of three factors.
    assert shared == pytest.approx(1 - (2 / 3) * math.log(2, 3), abs=0.08)


def test_mig_ignores_a_constant_factor_and_rejects_bad_input() -> None:
    f = draw_factors(500)
    f[:, 1] = 2
    d = mig_details(f.astype(float), f)
    assert np.isnan(d.gaps[1]) and d.mig > 0.97
    with pytest.raises(ValueError, match="two latent"):
        mig(f[:, :1].astype(float), f)
    with pytest.raises(ValueError, match="disagree on N"):
        mig(f[:-1].astype(float), f)
    with pytest.raises(ValueError, match="NaN"):
        mig(np.full((500, 3), np.nan), f)
    with pytest.raises(ValueError, match="whole numbers"):
        mig(f.astype(float), f + 0.5)
    with pytest.raises(ValueError, match="varies"):
        mig(f.astype(float), f[:, 1:2])


# -- SAP -----------------------------------------------------------------------------------------


def test_sap_of_copied_binary_factors_is_one_half() -> None:
    # Own latent: a perfect threshold (accuracy 1); the other, independent latent: chance (1/2).
    f = draw_factors(900, sizes=(2, 2))
    s = sap_score_matrix(f.astype(float), f)
    assert np.allclose(np.diag(s), 1.0)
    assert np.allclose(s[~np.eye(2, dtype=bool)], 0.5, atol=0.08)
    assert sap(f.astype(float), f) == pytest.approx(0.5, abs=0.08)


def test_sap_orders_copied_rotated_and_noise_codes() -> None:
    f = draw_factors(900)
    noise = np.random.default_rng(3).normal(size=(900, 3))
    perfect, mixed, none = sap(f.astype(float), f), sap(rotated(f), f), sap(noise, f)
    assert perfect > 0.3
    assert mixed < perfect
    assert abs(none) < 0.06


def test_sap_uses_a_given_test_set() -> None:
    f, g = draw_factors(600, sizes=(2, 2)), draw_factors(300, sizes=(2, 2), seed=9)
    s = sap_score_matrix(f.astype(float), f, 1.0 - g.astype(float), g)  # test codes flipped
    assert np.allclose(np.diag(s), 0.0)
    with pytest.raises(ValueError, match="both"):
        sap(f.astype(float), f, codes_test=g.astype(float))


# -- DCI -----------------------------------------------------------------------------------------


def test_dci_of_copied_factors_is_perfect() -> None:
    f = draw_factors(600)
    d = dci(f.astype(float), f)
    assert d.disentanglement > 0.97 and d.completeness > 0.97
    assert d.informativeness_train == 1.0 and d.informativeness_test == 1.0
    assert np.allclose(d.importance / d.importance.sum(0), np.eye(3), atol=0.02)


def test_dci_of_noise_is_near_zero_and_uninformative() -> None:
    f = draw_factors(400)
    d = dci(np.random.default_rng(4).normal(size=(400, 3)), f)
    assert d.disentanglement < 0.1 and d.completeness < 0.1
    chance = np.mean([1 / s for s in SIZES])
    assert d.informativeness_test < chance + 0.1


def test_dci_rotation_and_other_estimators() -> None:
    f = draw_factors(600)
    mixed = dci(rotated(f), f, estimator="forest")
    assert mixed.disentanglement < 0.6 and mixed.informativeness_test > 0.9
    tree = dci(f.astype(float), f, estimator=lambda: DecisionTreeClassifier(random_state=0))
    assert tree.disentanglement > 0.97 and tree.completeness > 0.97
    with pytest.raises(ValueError, match="estimator"):
        dci(f.astype(float), f, estimator="svm")


# -- sampled metrics: FactorVAE and beta-VAE scores ------------------------------------------------


def test_sample_factors_and_images_of() -> None:
    data = GridData()
    f = sample_factors(data, 4000, np.random.default_rng(0))
    assert f.shape == (4000, 3) and f.dtype == np.int64
    assert [sorted(np.unique(f[:, k])) for k in range(3)] == [list(range(s)) for s in SIZES]
    assert np.array_equal(images_of(data, f)[:, 0, 0], f)
    with pytest.raises(DataError, match="look up examples by factor values"):
        sample_factors(GridData(lookup=False), 10, 0)


def test_factor_vae_score_is_one_for_the_factors_and_near_chance_for_noise() -> None:
    data, kw = GridData(), dict(num_train=300, num_eval=300, num_variance_estimate=1000)
    assert factor_vae_score(identity, data, np.random.default_rng(0), **kw) == 1.0
    rng = np.random.default_rng(1)
    noise = factor_vae_score(lambda x: rng.normal(size=(len(x), 3)), data, 0, **kw)
    assert noise < 0.55  # chance 1/3
    scaled = factor_vae_score(lambda x: identity(x) * 0.01, data, 0, **kw)  # every std < 0.05: pruned
    assert scaled == 0.0
    only_first = factor_vae_score(lambda x: identity(x) * [1.0, 0.001, 0.001], data, 0, **kw)
    assert only_first == pytest.approx(1 / 3, abs=0.1)  # one active latent: it wins factor 0's votes only


def test_factor_vae_score_is_reproducible_by_seed() -> None:
    data, kw = GridData(), dict(num_train=60, num_eval=60, num_variance_estimate=200)

    def blurred(x: np.ndarray) -> np.ndarray:  # a fixed function of x that mixes the factors a little
        z = identity(x)
        return z + 2.0 * np.sin(13.0 * z @ np.array([[0.3, 1.1, -0.7], [0.9, -0.2, 0.5], [-0.4, 0.6, 1.3]]))

    a = factor_vae_score(blurred, data, 5, votes_per_call=1, **kw)
    assert a == factor_vae_score(blurred, data, np.random.default_rng(5), votes_per_call=1, **kw)
    assert 0.5 < a < 1.0  # the blur costs some votes
    assert len({factor_vae_score(blurred, data, seed, **kw) for seed in range(4)}) > 1


def test_beta_vae_score_is_one_for_the_factors_and_near_chance_for_noise() -> None:
    data, kw = GridData(), dict(num_train=300, num_eval=300)
    assert beta_vae_score(identity, data, 0, **kw) > 0.97
    rng = np.random.default_rng(1)
    assert beta_vae_score(lambda x: rng.normal(size=(len(x), 3)), data, 0, **kw) < 0.55
    with pytest.raises(ValueError, match="look up examples by factor values"):
        beta_vae_score(identity, GridData(lookup=False), 0, **kw)
    with pytest.raises(ValueError, match=r"must return \(B, D\) codes"):
        beta_vae_score(lambda x: identity(x)[:1], data, 0, **kw)


# -- evaluate_run and the `metrics` command ------------------------------------------------------


def _saved_vae(tmp_path, spec: str, image_size: int | None = None):
    import torch

    from engines.lib.checkpoint import save_checkpoint
    from engines.data import load_dataset
    from engines.shared.registry import create_engine

    info = load_dataset(spec, image_size).info
    torch.manual_seed(0)
    engine = create_engine("vae", info, latent_dim=3, arch="mlp", hidden=16)
    run = tmp_path / spec.replace(":", "_")
    run.mkdir()
    save_checkpoint(engine, run / "model.safetensors", step=3, data_spec=spec, image_size=image_size)
    return run


def test_evaluate_run_on_shapes_gives_every_metric(tmp_path) -> None:
    from engines.metrics.evaluate import evaluate_run, format_table

    run = _saved_vae(tmp_path, "shapes:8")
    stages = []
    r = evaluate_run(run, n_points=200, seed=0, progress=lambda s, p: stages.append((s, p)), device="cpu",
                     fast=True, num_train=30, num_eval=30, num_variance_estimate=100)
    json.dumps(r, allow_nan=False)
    assert r["factor_names"] == ["shape", "scale", "orientation", "x", "y"]
    assert r["n_points"] == 200 and r["n_test"] == 100 and r["latent_dim"] == 3 and r["step"] == 3
    assert np.array(r["mi_matrix"]).shape == (3, 5) and np.array(r["dci"]["importance"]).shape == (3, 5)
    for key in ("mig", "sap", "factor_vae_score", "beta_vae_score"):
        assert 0.0 <= r[key] <= 1.0, key
    assert set(r["dci"]) == {"disentanglement", "completeness", "informativeness_train",
                             "informativeness_test", "importance"}
    assert r["skipped"] == {} and r["seconds"] > 0
    fractions = [p for _, p in stages]
    assert fractions == sorted(fractions) and stages[-1] == ("done", 1.0)
    names = [s for s, _ in stages]  # progress within every long stage, not only between them
    assert "dci: factor 5 of 5 fitted" in names and "encoding: 300 of 300 examples" in names
    assert sum(s.startswith("factor_vae_score: ") for s in names) >= 2
    assert sum(s.startswith("beta_vae_score: ") for s in names) >= 2
    table = format_table(r)
    assert "MIG" in table and "FactorVAE score" in table and "MIG gap orientation" in table


def test_evaluate_run_errors(tmp_path, monkeypatch) -> None:
    from engines.metrics.evaluate import evaluate_run
    from engines.shared import registry

    with pytest.raises(LatentStudioError, match="no ground-truth factors"):
        evaluate_run(_saved_vae(tmp_path, "ring"), n_points=50, device="cpu")
    run = _saved_vae(tmp_path, "shapes:8")
    with pytest.raises(LatentStudioError, match="unknown metric"):
        evaluate_run(run, metrics=["mig", "fid"], device="cpu")
    entry = registry.MODELS["vae"]  # the same networks, declared without an encoder
    monkeypatch.setitem(registry.MODELS, "vae", dataclasses.replace(
        entry, capabilities=dataclasses.replace(entry.capabilities, encoder="none")))
    with pytest.raises(LatentStudioError, match="declares no encoder"):
        evaluate_run(run, n_points=50, metrics=["mig"], device="cpu")


def test_metrics_command_prints_a_table_and_writes_json(tmp_path, capsys) -> None:
    from engines.cli.metrics import add_metrics_command

    run = _saved_vae(tmp_path, "shapes:8")
    parser = argparse.ArgumentParser()
    add_metrics_command(parser.add_subparsers())
    out = tmp_path / "m" / "metrics.json"
    args = parser.parse_args(["metrics", "--run", str(run), "--json", str(out), "--n", "100", "--fast",
                              "--metrics", "mig,sap", "--seed", "3", "--device", "cpu"])
    assert args.func(args) == 0
    result = json.loads(out.read_text())
    assert result["seed"] == 3 and result["n_points"] == 100 and "dci" not in result
    assert 0.0 <= result["mig"] <= 1.0 and len(result["mig_gaps"]) == 5
    printed = capsys.readouterr().out
    assert "MIG" in printed and "SAP" in printed
