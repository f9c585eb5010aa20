"""Sample-quality metrics: known answers on identical, disjoint and collapsed distributions, and ``evaluate``."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from scipy import linalg

from engines.metrics import classifier as clf
from engines.metrics.sample_quality import (
    classifier_score, density_coverage, frechet_distance, knn_radii, precision_recall,
)
from engines.shared.errors import ConfigError


def _gauss(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)) + shift


def test_frechet_distance_matches_the_matrix_square_root_formula() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 12))
    b = rng.standard_normal((300, 12)) @ rng.standard_normal((12, 12)) * 0.5 + 1.0
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    want = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(s_a + s_b - 2 * np.real(linalg.sqrtm(s_a @ s_b)))
    assert frechet_distance(a, b) == pytest.approx(want, rel=1e-8)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    # a mean shift of 3 in every one of 12 dimensions adds 12 * 9 to the distance
    assert frechet_distance(a, a + 3.0) == pytest.approx(108.0, rel=1e-6)
    # singular covariances (a feature that never fires, as a dead ReLU) still give a finite answer
    dead = a.copy()
    dead[:, 0] = 0.0
    assert np.isfinite(frechet_distance(dead, dead + 1.0)) and frechet_distance(dead, dead) == pytest.approx(0, abs=1e-8)


def test_classifier_score_is_k_for_confident_even_classes_and_1_for_one_answer() -> None:
    k = 10
    even = np.eye(k)[np.arange(1000) % k]
    assert classifier_score(even) == pytest.approx(k, rel=1e-6)
    assert classifier_score(np.eye(k)[np.zeros(500, int)]) == pytest.approx(1.0)  # mode collapse: one class
    assert classifier_score(np.full((50, k), 1.0 / k)) == pytest.approx(1.0)  # never confident
    with pytest.raises(ConfigError, match="sum to 1"):
        classifier_score(np.ones((3, 2)))


def test_knn_radii_agree_with_scikit_learn() -> None:
    from sklearn.neighbors import NearestNeighbors

    x = _gauss(300, 5, 1)
    dist, _ = NearestNeighbors(n_neighbors=4).fit(x).kneighbors(x)  # itself first, at distance 0
    np.testing.assert_allclose(knn_radii(x, 3), dist[:, 3], rtol=1e-9, atol=1e-9)
    with pytest.raises(ConfigError, match="1 <= k < N"):
        knn_radii(x[:3], 3)


def test_identical_distributions_score_as_naeem_et_al_expect() -> None:
    """Density near 1 and coverage near 1 - 2^-5 = 0.97 for two draws of one Gaussian; precision and recall high."""
    real, fake = _gauss(2000, 64, 0), _gauss(2000, 64, 1)
    density, coverage = density_coverage(real, fake, k=5)
    assert density == pytest.approx(1.0, abs=0.1)
    assert coverage == pytest.approx(1 - 2**-5, abs=0.02)
    precision, recall = precision_recall(real, fake, k=3)
    assert precision > 0.5 and recall > 0.5 and abs(precision - recall) < 0.05
    assert frechet_distance(real, fake) < 3.0  # 64 dimensions' worth of sampling error only


def test_disjoint_distributions_score_zero() -> None:
    real, fake = _gauss(500, 16, 0), _gauss(500, 16, 1, shift=10.0)
    assert density_coverage(real, fake) == (0.0, 0.0)
    assert precision_recall(real, fake) == (0.0, 0.0)
    assert frechet_distance(real, fake) == pytest.approx(1600.0, rel=0.02)


def test_a_collapsed_generator_is_precise_but_covers_nothing() -> None:
    """Mode collapse: every sample near one real point: realistic (precision 1) but no variety (recall,
    coverage near 0), the failure FD alone cannot tell from blur."""
    real = _gauss(1000, 8, 0)
    fake = real[:1] + 0.01 * _gauss(1000, 8, 1)
    precision, recall = precision_recall(real, fake)
    density, coverage = density_coverage(real, fake)
    assert precision == 1.0 and recall < 0.01
    assert coverage < 0.03 and density > 0.0  # only the balls around the collapse point (about k of 1,000)


def test_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="differ in width"):
        precision_recall(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(ConfigError, match="NaN"):
        frechet_distance(np.full((4, 2), np.nan), np.zeros((4, 2)))
    with pytest.raises(ConfigError, match=r"\(N, F\)"):
        density_coverage(np.zeros(10), np.zeros((10, 1)))


# -- a saved run, and the `evaluate` command ---------------------------------------------------
@pytest.fixture
def stripe_runs(tmp_path, monkeypatch):
    """Two runs on labelled stripes: a collapsed model (every sample horizontal) and one of both classes."""
    from engines.data import load_dataset
    from engines.lib.checkpoint import save_checkpoint
    from tests.test_coverage import stripe_vae, stripes

    monkeypatch.setenv("LATENT_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(clf, "DEFAULT_STEPS", 40)
    x, y = stripes(300, seed=0)
    np.savez(tmp_path / "stripes.npz", x=x, y=y)
    ds = load_dataset(f"npz:{tmp_path / 'stripes.npz'}")
    save_checkpoint(stripe_vae(ds.info, switch=False), tmp_path / "one.safetensors", step=1, data_spec=ds.info.spec)
    save_checkpoint(stripe_vae(ds.info, switch=True), tmp_path / "both.safetensors", step=2, data_spec=ds.info.spec)
    return tmp_path / "one.safetensors", tmp_path / "both.safetensors"


def test_quality_for_run_tells_a_collapsed_model_from_a_covering_one(stripe_runs) -> None:
    from engines.metrics.quality_run import format_quality, quality_for_run

    one, both = (quality_for_run(run, n=200, seed=0, device="cpu") for run in stripe_runs)
    json.dumps(one, allow_nan=False)
    assert one["feature_space"] == "classifier" and "classifier features" in one["features"]
    assert one["n"] == 200 and one["model"]["n"] == 200 and 0 < one["floor"]["n"] <= 200
    m1, m2, floor = one["model"], both["model"], one["floor"]
    assert m1["classes_covered"] == 1 and m2["classes_covered"] == 2 and floor["classes_covered"] == 2
    assert m1["classes_covered_confident"] <= m1["classes_covered"]
    assert m1["classifier_score"] == pytest.approx(1.0, abs=0.05) and m2["classifier_score"] > 1.5
    assert m1["recall"] < m2["recall"]  # (clean stripes lie outside the noisy real balls: coverage 0 for both)
    assert floor["fd"] < m1["fd"] and floor["coverage"] > m1["coverage"]
    if one["floor"]["n"] < 200:  # the held-out split is smaller than n: the model again at its count
        assert one["model_at_floor_n"]["n"] == one["floor"]["n"]
    table = format_quality(one)
    assert "FD (classifier features)" in table and "classes covered (PacGAN: any sample)" in table
    assert "held-out real" in table and "1 / 2" in table


def test_evaluate_command_prints_a_table_and_writes_json(stripe_runs, tmp_path, capsys) -> None:
    from engines.cli.metrics import add_evaluate_command

    parser = argparse.ArgumentParser()
    add_evaluate_command(parser.add_subparsers())
    out = tmp_path / "q.json"
    args = parser.parse_args(["evaluate", "--run", str(stripe_runs[1]), "--n", "100", "--json", str(out)])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "precision (k=3)" in printed and "coverage (k=5)" in printed
    saved = json.loads(out.read_text())
    assert saved["model"]["n"] == 100 and 0.0 <= saved["model"]["coverage"] <= 1.0


def test_evaluate_on_points_uses_the_coordinates(tmp_path) -> None:
    from engines.data import load_dataset
    from engines.lib.checkpoint import save_checkpoint
    from engines.metrics.quality_run import quality_for_run
    from engines.shared.registry import create_engine

    ring = load_dataset("ring")
    save_checkpoint(create_engine("vae", ring.info, latent_dim=2, hidden=0), tmp_path / "r.safetensors", step=1,
                    data_spec="ring")
    r = quality_for_run(tmp_path / "r.safetensors", n=300, seed=0, device="cpu")
    assert r["feature_space"] == "points" and "classifier_score" not in r["model"]
    assert r["floor"]["precision"] > r["model"]["precision"]  # an untrained decoder is no ring
    with pytest.raises(ConfigError, match="n >= 10"):
        quality_for_run(tmp_path / "r.safetensors", n=5, device="cpu")
