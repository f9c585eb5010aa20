"""Mode coverage: the VEEGAN / PacGAN mixture protocol, class and cluster coverage, the classifier
and its cache, the live tracker, saved runs and the ``coverage`` command, on hand-made samples."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest
import torch

from engines.models.base import Engine, EngineConfig
from engines.lib.checkpoint import save_checkpoint
from engines.data import load_dataset
from engines.data.builtin import grid_modes, ring_modes
from engines.data.files import array_dataset
from engines.shared.capabilities import Capabilities
from engines.shared.errors import ConfigError, DataError
from engines.metrics import classifier as clf
from engines.metrics.coverage import (
    ClusterModel,
    CoverageTracker,
    class_coverage,
    cluster_coverage,
    coverage_for_run,
    kl_divergence,
    mixture_coverage,
)
from engines.cli.metrics import add_coverage_command
from engines.shared.registry import create_engine


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def around(means: np.ndarray, per_mode: list[int], std: float, seed: int = 0) -> np.ndarray:
    """per_mode[k] points drawn from N(means[k], std^2 I)."""
    rng = np.random.default_rng(seed)
    return np.concatenate([m + std * rng.standard_normal((c, 2)) for m, c in zip(means, per_mode) if c])


# -- mixture_coverage -------------------------------------------------------------------------
@pytest.mark.parametrize("means,std", [(ring_modes(), 0.01), (grid_modes(), 0.05)])
def test_all_modes_equally(means, std):
    m = len(means)
    x = around(means, [2500 // m] * m, std)
    r = mixture_coverage(x, means, std)
    assert r.modes_total == m and r.modes_captured == m
    # a 2-D Gaussian lies within 3 std of its mean with probability 1 - exp(-4.5) = 0.989
    assert r.high_quality_share == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert r.reverse_kl < 0.01
    assert sum(r.per_mode_counts) == round(r.high_quality_share * len(x))
    json.dumps(r.to_json(), allow_nan=False)


def test_exact_centres_are_all_high_quality_and_kl_zero():
    means = grid_modes()
    r = mixture_coverage(np.repeat(means, 4, axis=0), means, 0.05)
    assert r.high_quality_share == 1.0 and r.modes_captured == 25
    assert r.per_mode_counts == (4,) * 25
    assert r.reverse_kl == pytest.approx(0.0, abs=1e-12)


def test_one_mode_gives_log_m():
    means = ring_modes()
    x = around(means, [0, 0, 2500, 0, 0, 0, 0, 0], 0.01)
    r = mixture_coverage(x, means, 0.01)
    assert r.modes_captured == 1
    assert r.per_mode_counts[2] == sum(r.per_mode_counts)
    assert r.reverse_kl == pytest.approx(math.log(8), abs=1e-9)


def test_off_mode_noise_is_low_quality():
    means = ring_modes()
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, size=(2500, 2))
    r = mixture_coverage(x, means, 0.01)
    # area of 8 discs of radius 0.03 over a 4x4 square: 0.0014 -> about 3 samples of 2,500
    assert r.high_quality_share < 0.005
    assert r.modes_captured <= 8
    far = mixture_coverage(x + 10.0, means, 0.01)
    assert far.high_quality_share == 0.0 and far.modes_captured == 0
    assert far.reverse_kl is None and far.per_mode_counts == (0,) * 8
    json.dumps(far.to_json(), allow_nan=False)


def test_a_mix_of_modes_and_noise():
    means = ring_modes()
    good = around(means, [500, 500, 0, 0, 0, 0, 0, 0], 0.01)  # two modes, equal weight
    noise = np.full((1000, 2), 0.0)  # the centre of the ring: 1.0 from every mode
    r = mixture_coverage(np.concatenate([good, noise]), means, 0.01)
    assert r.modes_captured == 2
    assert r.high_quality_share == pytest.approx(0.989 * 1000 / 2000, abs=0.02)
    # KL(two equal modes || uniform over 8) = log 8 - log 2 = log 4
    assert r.reverse_kl == pytest.approx(math.log(4), abs=0.01)


def test_threshold_is_n_std_standard_deviations():
    means = np.array([[0.0, 0.0], [10.0, 0.0]])
    x = np.array([[0.29, 0.0], [0.31, 0.0]])
    r = mixture_coverage(x, means, 0.1)
    assert r.high_quality_share == 0.5
    assert mixture_coverage(x, means, 0.1, n_std=4.0).high_quality_share == 1.0


def test_mixture_rejects_bad_input():
    with pytest.raises(ConfigError):
        mixture_coverage(np.zeros((0, 2)), ring_modes(), 0.01)
    with pytest.raises(ConfigError):
        mixture_coverage(np.zeros((5, 3)), ring_modes(), 0.01)
    with pytest.raises(ConfigError):
        mixture_coverage(np.full((5, 2), np.nan), ring_modes(), 0.01)
    with pytest.raises(ConfigError):
        mixture_coverage(np.zeros((5, 2)), ring_modes(), 0.0)


def test_kl_direction_and_zeros():
    assert kl_divergence([1, 0], [0.5, 0.5]) == pytest.approx(math.log(2))
    assert kl_divergence([0.25, 0.75], [0.5, 0.5]) == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5))
    with pytest.raises(ConfigError):
        kl_divergence([0.5, 0.5], [1.0, 0.0])


# -- class_coverage with a constructed classifier ---------------------------------------------------
def one_hot_classifier(k: int, confidence: float):
    """'Classifies' image i as the class stored in its first pixel, with the given top probability."""

    def classify(x: np.ndarray) -> np.ndarray:
        c = np.asarray(x)[:, 0, 0, 0].astype(int)
        p = np.full((len(x), k), (1 - confidence) / (k - 1))
        p[np.arange(len(x)), c] = confidence
        return p

    return classify


def images_of(classes: list[int]) -> np.ndarray:
    x = np.zeros((len(classes), 1, 4, 4), np.float32)
    x[:, 0, 0, 0] = classes
    return x


def test_class_coverage_matching_histogram():
    data_hist = np.array([10, 20, 30, 40])
    x = images_of([0] * 10 + [1] * 20 + [2] * 30 + [3] * 40)
    r = class_coverage(x, one_hot_classifier(4, 0.97), data_hist)
    assert r.classes_total == 4 and r.classes_covered == 4
    assert r.class_kl == pytest.approx(0.0, abs=1e-5)
    assert r.confident_share == 1.0
    assert r.generated_hist == pytest.approx([0.1, 0.2, 0.3, 0.4])
    json.dumps(r.to_json(), allow_nan=False)


def test_class_coverage_one_class_and_unconfident():
    data_hist = np.array([10, 20, 30, 40])
    r = class_coverage(images_of([1] * 50), one_hot_classifier(4, 0.97), data_hist)
    assert r.classes_covered == 1
    assert r.class_kl == pytest.approx(math.log(1 / 0.2), abs=1e-5)
    unsure = class_coverage(images_of([0, 1, 2, 3] * 5), one_hot_classifier(4, 0.5), data_hist)
    assert unsure.confident_share == 0.0 and unsure.classes_covered == 0
    assert unsure.classes_covered_any == 4  # PacGAN counts every sample: 4 of 4 where the confident count says 0
    assert r.classes_covered_any == 1
    assert class_coverage(images_of([0, 1, 2, 3] * 5), one_hot_classifier(4, 0.5), data_hist,
                          confident=0.0).classes_covered == 4


def test_class_coverage_rejects_wrong_probabilities():
    with pytest.raises(ConfigError):
        class_coverage(images_of([0, 1]), one_hot_classifier(3, 0.9), np.ones(4))


# -- cluster coverage ---------------------------------------------------------------------------
def blobs(k: int, per: list[int], seed: int, spread: float = 0.05) -> np.ndarray:
    """Images (sum(per), 1, 8, 8): cluster c lights pixel block c, plus small noise."""
    rng = np.random.default_rng(seed)
    out = []
    for c, n in enumerate(per):
        x = np.zeros((n, 1, 8, 8))
        x[:, 0, (2 * c) % 8 : (2 * c) % 8 + 2, 4 * (c // 4) : 4 * (c // 4) + 4] = 1.0
        out.append(np.clip(x + spread * rng.standard_normal(x.shape), 0, 1))
    return np.concatenate(out).astype(np.float32)


def test_cluster_coverage_on_separable_clusters():
    real = blobs(6, [100] * 6, seed=0)
    model = ClusterModel.fit(real, k=6, n_components=16, seed=0)
    r = cluster_coverage(blobs(6, [50] * 6, seed=1), model)
    assert r.metric == "clusters" and r.classes_total == 6 and r.classes_covered == 6
    assert r.class_kl < 0.01
    assert r.confident_share > 0.8
    one = cluster_coverage(blobs(6, [0, 0, 0, 80, 0, 0], seed=2), model)
    assert one.classes_covered == 1 and one.class_kl == pytest.approx(math.log(6), abs=0.01)
    noise = np.random.default_rng(3).uniform(0, 1, size=(200, 1, 8, 8))
    assert cluster_coverage(noise, model).confident_share < 0.05
    with pytest.raises(ConfigError):
        cluster_coverage(np.zeros((3, 1, 4, 4)), model)


# -- the classifier -----------------------------------------------------------------------------
def stripes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two classes of 16x16 images: horizontal (0) or vertical (1) stripes, random phase and noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    phase = rng.integers(0, 4, n)
    idx = np.arange(16)
    x = np.zeros((n, 1, 16, 16), np.float32)
    for i in range(n):
        line = ((idx + phase[i]) % 4 < 2).astype(np.float32)
        x[i, 0] = line[:, None] * np.ones(16) if y[i] == 0 else np.ones((16, 1)) * line[None, :]
    x = np.clip(x + 0.2 * rng.standard_normal(x.shape), 0, 1).astype(np.float32)
    return x, y.astype(np.int64)


@pytest.fixture(scope="module")
def stripe_data():
    x, y = stripes(300, seed=0)
    return array_dataset("stripes", x, y, ("horizontal", "vertical"))


def test_classifier_learns_a_tiny_image_set(stripe_data):
    model, acc = clf.train_classifier(stripe_data, steps=60, seed=0)
    assert acc >= 0.95
    x, y = stripes(200, seed=5)
    p = clf.predict_proba(model, x)
    assert p.shape == (200, 2) and np.allclose(p.sum(1), 1)
    assert (p.argmax(1) == y).mean() >= 0.95
    p64 = clf.predict_proba(model, np.repeat(np.repeat(x, 4, axis=2), 4, axis=3))  # 64x64 input
    assert p64.shape == (200, 2)


def test_tracker_quality_scores_samples_in_the_classifier_features(stripe_data, tmp_path, monkeypatch):
    """The live sample quality: real stripes score near the floor, one class of stripes loses recall and coverage."""
    monkeypatch.setenv("LATENT_STUDIO_HOME", str(tmp_path))
    monkeypatch.setattr(clf, "DEFAULT_STEPS", 60)
    tracker = CoverageTracker(stripe_data, seed=0)
    x, y = stripes(200, seed=9)
    real = tracker.quality(x)
    one = tracker.quality(x[y == 0])
    assert set(real) >= {"fd", "precision", "recall", "density", "coverage", "classifier_score", "n", "n_reference"}
    assert real["n"] == 200 and real["n_reference"] == len(stripe_data.train_indices)
    assert real["precision"] > 0.7 and real["recall"] > 0.7
    assert one["coverage"] < real["coverage"] and one["fd"] > real["fd"]
    assert one["classifier_score"] < real["classifier_score"]
    assert tracker.features(x[:5]).shape == (5, 128)
    assert tracker.quality(x[:3]) == {}


def test_classifier_needs_labels():
    x, _ = stripes(40, seed=0)
    with pytest.raises(DataError):
        clf.train_classifier(array_dataset("stripes", x), steps=2)


def test_classifier_cache_round_trip(stripe_data, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENT_STUDIO_HOME", str(tmp_path))
    model, acc = clf.load_or_train_classifier(stripe_data, steps=40, seed=0)
    files = sorted(p.name for p in (tmp_path / "cache" / "classifiers").iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".safetensors")
    meta = json.loads((tmp_path / "cache" / "classifiers" / files[0]).read_text())
    assert meta["held_out_accuracy"] == acc and meta["spec"] == "stripes"

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been loaded")

    monkeypatch.setattr(clf, "train_classifier", no_training)
    again, acc2 = clf.load_or_train_classifier(stripe_data, steps=40, seed=0)
    assert acc2 == acc
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k])
    # a damaged cache file is retrained, not trusted
    (tmp_path / "cache" / "classifiers" / files[1]).write_bytes(b"not a safetensors file")
    monkeypatch.undo()
    monkeypatch.setenv("LATENT_STUDIO_HOME", str(tmp_path))
    _, acc3 = clf.load_or_train_classifier(stripe_data, steps=40, seed=0)
    assert acc3 == pytest.approx(acc)


# -- the tracker ---------------------------------------------------------------------------------
class ModeEngine(Engine):
    """Samples the first `k` modes of a mixture equally, exactly at their centres plus tiny noise."""

    name = "mode-engine"
    family = "gan"
    declared = Capabilities()  # a sampler: no encoder, no likelihood

    def __init__(self, data, k: int) -> None:
        super().__init__(EngineConfig(latent_dim=1), data)
        self.means = torch.tensor(data.modes, dtype=torch.float32)[:k]
        self.scale = torch.nn.Parameter(torch.tensor(0.001))

    def sample(self, n, generator=None):
        assert not self.training, "coverage must sample in eval mode"
        idx = torch.randint(len(self.means), (n,), generator=generator)
        return self.means[idx] + self.scale * torch.randn(n, 2, generator=generator)


def test_tracker_on_ring_is_right():
    ring = load_dataset("ring")
    tracker = CoverageTracker(ring)
    assert tracker.metric == "mixture" and tracker.default_n == 2500
    engine = ModeEngine(ring.info, k=4)
    engine.train()
    r, ms = tracker.measure(engine, generator=torch.Generator().manual_seed(0))
    assert engine.training
    assert r.n == 2500 and r.modes_captured == 4 and r.high_quality_share == 1.0
    assert r.per_mode_counts[4:] == (0, 0, 0, 0) and sum(r.per_mode_counts) == 2500
    assert r.reverse_kl == pytest.approx(math.log(2), abs=0.01)
    assert math.isfinite(ms) and ms > 0  # a wall time is reported (how fast belongs to benchmarks/)
    # measure = evaluate of the engine's samples drawn with that generator
    engine.eval()
    with torch.no_grad():
        x = engine.sample(2500, generator=torch.Generator().manual_seed(0)).numpy()
    assert r.per_mode_counts == tracker.evaluate(x).per_mode_counts
    real = tracker.evaluate(ring.get(ring.test_indices[:2500]))
    assert real.modes_captured == 8 and real.reverse_kl < 0.02


def test_tracker_picks_clusters_for_unlabelled_images():
    ds = array_dataset("blobs", blobs(6, [60] * 6, seed=0))
    tracker = CoverageTracker(ds, n_clusters=6)
    assert tracker.metric == "clusters" and tracker.classifier_accuracy is None
    r = tracker.evaluate(blobs(6, [30] * 6, seed=4))
    assert r.classes_covered == 6


# -- saved runs and the command -------------------------------------------------------------------
def decoder_linear(engine) -> torch.nn.Linear:
    """The one linear layer of an mlp VAE decoder built with hidden=0."""
    layers = [m for m in engine.decoder.modules() if isinstance(m, torch.nn.Linear)]
    assert len(layers) == 1
    return layers[0]


def test_coverage_for_run_and_command_on_ring(tmp_path, capsys):
    ring = load_dataset("ring")
    std = ring.info.mode_std
    engine = create_engine("vae", ring.info, latent_dim=2, hidden=0)
    # a decoder that puts every sample at mode 2 plus 2 std of Gaussian noise: x = mode_2 + 2 std z, so a
    # sample is high quality (within 3 std) when |z| < 1.5: probability 1 - exp(-1.5^2 / 2) = 0.675
    with torch.no_grad():
        decoder_linear(engine).weight.copy_(2 * std * torch.eye(2))
        decoder_linear(engine).bias.copy_(torch.tensor(ring.info.modes[2]))
    save_checkpoint(engine, tmp_path / "run" / "model.safetensors", step=3, data_spec="ring")
    r = coverage_for_run(tmp_path / "run", n=500, seed=1, device="cpu").to_json()
    assert r["modes_total"] == 8 and r["modes_captured"] == 1 and r["n"] == 500
    assert r["step"] == 3 and r["data_spec"] == "ring"
    assert r["high_quality_share"] == pytest.approx(1 - math.exp(-1.125), abs=0.07)  # 3 binomial std
    counts = r["per_mode_counts"]
    assert counts[2] == round(500 * r["high_quality_share"]) and sum(counts) == counts[2]
    assert r["reverse_kl"] == pytest.approx(math.log(8))
    again = coverage_for_run(tmp_path / "run", n=500, seed=1, device="cpu").to_json()
    assert again["per_mode_counts"] == counts
    assert coverage_for_run(tmp_path / "run", n=500, seed=2, device="cpu").to_json()["per_mode_counts"] != counts

    parser = argparse.ArgumentParser()
    add_coverage_command(parser.add_subparsers())
    args = parser.parse_args(["coverage", "--run", str(tmp_path / "run"), "--n", "300", "--json", str(tmp_path / "c.json"), "--device", "cpu"])
    assert args.func(args) == 0
    out = json.loads((tmp_path / "c.json").read_text())
    assert out["modes_total"] == 8 and out["modes_captured"] == 1 and out["n"] == 300
    assert out["high_quality_share"] == pytest.approx(1 - math.exp(-1.125), abs=0.09)
    assert out["reverse_kl"] == pytest.approx(math.log(8))
    assert "modes captured" in capsys.readouterr().out


def stripe_logits(horizontal: bool) -> torch.Tensor:
    """(256,) logits of a clean 16x16 stripe image (class 0: horizontal, 1: vertical), +-1 per pixel."""
    line = torch.tensor([1.0, 1.0, -1.0, -1.0]).repeat(4)
    grid = line[:, None] * torch.ones(16) if horizontal else torch.ones(16)[:, None] * line[None, :]
    return grid.reshape(-1)


def stripe_vae(info, switch: bool):
    """A 1-latent mlp VAE whose samples are known: always horizontal stripes (``switch`` False), or
    horizontal stripes for z > 0 and vertical ones for z < 0 (``switch`` True)."""
    engine = create_engine("vae", info, latent_dim=1, arch="mlp", hidden=2, depth=1)
    first, last = [m for m in engine.decoder.modules() if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        if switch:  # hidden = (relu(z), relu(-z)); logits = 1000 z * pattern: saturated unless |z| < 0.005
            first.weight.copy_(torch.tensor([[1.0], [-1.0]]))
            first.bias.zero_()
            last.weight.copy_(1000.0 * torch.stack([stripe_logits(True), stripe_logits(False)], 1))
            last.bias.zero_()
        else:
            last.weight.zero_()
            last.bias.copy_(20.0 * stripe_logits(True))
    return engine


def test_coverage_for_run_on_labelled_images(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENT_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(clf, "DEFAULT_STEPS", 40)
    x, y = stripes(200, seed=0)
    np.savez(tmp_path / "stripes.npz", x=x, y=y)
    ds = load_dataset(f"npz:{tmp_path / 'stripes.npz'}")
    p_data = np.bincount(ds.labels(ds.train_indices), minlength=2) / len(ds.train_indices)

    # every sample is horizontal stripes: one class covered, KL(p_gen || p_data) = log(1 / p_data[0])
    save_checkpoint(stripe_vae(ds.info, switch=False), tmp_path / "run.safetensors", step=1, data_spec=ds.info.spec)
    r = coverage_for_run(tmp_path / "run.safetensors", n=200, seed=0, device="cpu").to_json()
    assert r["metric"] == "classes" and r["classes_total"] == 2 and r["n"] == 200
    assert r["classifier_accuracy"] >= 0.9
    assert r["classes_covered"] == 1 and r["confident_share"] == 1.0
    assert r["generated_hist"] == [1.0, 0.0]
    assert r["data_hist"] == pytest.approx(p_data.tolist())
    assert r["class_kl"] == pytest.approx(math.log(1 / p_data[0]), abs=1e-6)
    json.dumps(r, allow_nan=False)

    # horizontal for z > 0, vertical for z < 0: both classes, in the proportion of the prior draws' signs
    save_checkpoint(stripe_vae(ds.info, switch=True), tmp_path / "both.safetensors", step=2, data_spec=ds.info.spec)
    both = coverage_for_run(tmp_path / "both.safetensors", n=200, seed=0, device="cpu").to_json()
    assert both["classifier_accuracy"] == r["classifier_accuracy"]  # the cached classifier
    assert both["classes_covered"] == 2
    z = torch.randn(200, 1, generator=torch.Generator().manual_seed(0))  # the seeded prior draws sampled
    share = float((z > 0).float().mean())
    assert 0.3 < share < 0.7
    assert both["generated_hist"] == pytest.approx([share, 1 - share], abs=0.02)
    want_kl = share * math.log(share / p_data[0]) + (1 - share) * math.log((1 - share) / p_data[1])
    assert both["class_kl"] == pytest.approx(want_kl, abs=0.01)
    json.dumps(both, allow_nan=False)
