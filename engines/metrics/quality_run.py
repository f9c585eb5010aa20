"""Sample quality of a saved run, headless: ``latent-studio evaluate --run DIR``.

:func:`feature_space` picks the features every score is measured in: the hidden layer of the small
classifier the studio trains on a labelled image data set (:mod:`engines.metrics.classifier`), or
principal components of pixels for data without labels. :func:`quality_scores` measures one set of
images against real ones in that space with :mod:`engines.metrics.sample_quality`, and
:func:`quality_for_run` samples a run and measures its samples and, as the floor every score is
read against, held-out real images measured the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engines.metrics import sample_quality as sq
from engines.shared.errors import ConfigError, DataError

__all__ = ["FeatureSpace", "PROTOCOL_N", "feature_space", "quality_for_run", "quality_scores"]

#: Generated and reference images per evaluation (FID's usual count is 10,000 or 50,000; ours fits two CPU cores).
PROTOCOL_N = 5000
#: Principal components of pixels for data without labels.
PCA_COMPONENTS = 64
#: Top class probability at or above which a sample counts as confident (the studio's coverage threshold).
CONFIDENT = 0.9

Progress = Callable[[str, float], None]


@dataclass
class FeatureSpace:
    """The features sample quality is measured in.

    Attributes
    ----------
    name : {"classifier", "pca", "points"}
    describe : str
        One line for tables and the window, e.g. "classifier features (128-d hidden layer, held-out
        accuracy 98.1%)".
    embed : callable
        (N, C, H, W) images in [0, 1] -> (N, F) float64 features.
    probs : callable or None
        (N, C, H, W) -> (N, K) class probabilities; None without labels.
    class_names : tuple of str
    """

    name: str
    describe: str
    embed: Callable[[np.ndarray], np.ndarray]
    probs: Callable[[np.ndarray], np.ndarray] | None
    class_names: tuple[str, ...] = ()


def feature_space(dataset: Any, device: str = "cpu", seed: int = 0, progress: Progress | None = None) -> FeatureSpace:
    """The classifier's features for labelled images, PCA of pixels fitted on training images for
    unlabelled ones, and the coordinates themselves for 2-D points.

    Parameters
    ----------
    dataset : Dataset
        Images (N, C, H, W) in [0, 1], or points (N, 2).
    device : str
        Torch device of the classifier.
    seed : int
        Seed of the classifier's training (cached per data set) or of the PCA.
    progress : callable or None
        ``progress(message, fraction)`` while a classifier trains.

    Returns
    -------
    FeatureSpace

    Raises
    ------
    DataError
        The data set holds neither images nor points.
    """
    info = dataset.info
    if info.kind == "points":
        return FeatureSpace("points", "the points' own coordinates", lambda x: np.asarray(x, np.float64).reshape(len(x), -1),
                            None)
    if info.kind != "image":
        raise DataError(f"{info.spec}: sample-quality scores need images or points, not {info.kind}")
    if info.class_names and len(info.class_names) >= 2:
        from engines.metrics.classifier import embed, load_or_train_classifier, predict_proba

        def trained(step: int, steps: int) -> None:
            if progress:
                progress(f"training the {info.spec} classifier (once, then cached)", step / steps)

        model, accuracy = load_or_train_classifier(dataset, seed=seed, device=device, progress=trained)
        width = model.fc1.out_features
        return FeatureSpace("classifier", f"classifier features ({width}-d hidden layer of the studio's classifier, "
                            f"held-out accuracy {100 * accuracy:.1f}%)", lambda x: embed(model, x),
                            lambda x: predict_proba(model, x), tuple(info.class_names))
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(seed)
    train = np.asarray(dataset.train_indices)
    idx = np.sort(rng.choice(train, size=min(len(train), PROTOCOL_N), replace=False))
    x = dataset.get(idx).reshape(len(idx), -1).astype(np.float64)
    pca = PCA(n_components=min(PCA_COMPONENTS, x.shape[1], len(x) - 1), random_state=seed).fit(x)
    return FeatureSpace("pca", f"PCA of pixels ({pca.n_components_} components; no labels, so no classifier)",
                        lambda images: pca.transform(np.asarray(images, np.float64).reshape(len(images), -1)), None)


def quality_scores(
    real_features: np.ndarray, images: np.ndarray, space: FeatureSpace, k_pr: int = 3, k_dc: int = 5,
) -> dict[str, Any]:
    """Every sample-quality score of ``images`` against real images' features.

    Parameters
    ----------
    real_features : (N, F) array
        The reference: real training images in ``space``.
    images : (M, C, H, W) array in [0, 1]
        Generated (or held-out real) images.
    space : FeatureSpace
    k_pr, k_dc : int
        Neighbours of precision / recall (3) and of density / coverage (5).

    Returns
    -------
    dict, JSON-able
        ``fd`` (squared feature units), ``precision``, ``recall``, ``density``, ``coverage``, ``n``;
        with labels also ``classifier_score`` (in [1, K]), ``classes_covered`` (PacGAN's count: classes
        that are the top class of at least one image), ``classes_covered_confident`` (top probability
        >= :data:`CONFIDENT`), ``classes_total`` and ``confident_share``.

    Raises
    ------
    ConfigError
        Too few images for the neighbour counts.
    """
    feats = space.embed(images)
    precision, recall = sq.precision_recall(real_features, feats, k_pr)
    density, coverage = sq.density_coverage(real_features, feats, k_dc)
    out: dict[str, Any] = {"n": int(len(images)), "fd": sq.frechet_distance(real_features, feats),
                           "precision": precision, "recall": recall, "density": density, "coverage": coverage}
    if space.probs is not None:
        p = space.probs(images)
        top, confident = p.argmax(axis=1), p.max(axis=1) >= CONFIDENT
        out.update(classifier_score=sq.classifier_score(p), classes_total=int(p.shape[1]),
                   classes_covered=int(len(np.unique(top))),
                   classes_covered_confident=int(len(np.unique(top[confident]))),
                   confident_share=float(confident.mean()))
    return out


def _sample(engine: Any, n: int, seed: int, progress: Progress | None, batch: int = 500) -> np.ndarray:
    import torch

    gen = torch.Generator(device=engine.device).manual_seed(seed)
    was_training = engine.training
    engine.eval()
    out = []
    try:
        with torch.no_grad():
            for i in range(0, n, batch):
                m = min(batch, n - i)
                out.append(engine.sample(m, generator=gen).detach().float().clamp(0, 1).cpu().numpy())
                if progress:
                    progress(f"sampling {i + m} of {n}", 0.2 + 0.4 * (i + m) / n)
    finally:
        engine.train(was_training)
    return np.concatenate(out)


def quality_for_run(
    run: str | Path, n: int = PROTOCOL_N, seed: int = 0, progress: Progress | None = None, device: str | None = None,
) -> dict[str, Any]:
    """Sample a saved run and score its samples, beside the real-vs-real floor.

    The reference is ``n`` training images (drawn by ``seed``); the model's ``n`` samples and the
    held-out split's images (up to ``n``) are each scored against it in the same features. The
    held-out row is the floor: what a perfect model would score with that many images (FD's bias
    grows as the count falls, so compare the model's FD with the floor's count in mind).

    Parameters
    ----------
    run : path
        Run folder or ``.safetensors`` checkpoint.
    n : int
        Samples and reference images (>= 10).
    seed : int
        Seed of the samples and of the reference draw.
    progress : callable or None
        ``progress(message, fraction)``.
    device : str or None
        None picks cuda, then mps, then cpu.

    Returns
    -------
    dict, JSON-able
        ``run``, ``engine``, ``step``, ``data_spec``, ``features`` (its description), ``feature_space``
        ("classifier" or "pca"), ``n``, ``seed``, ``model`` and ``floor`` (each :func:`quality_scores`'s
        dict, the floor's with its own ``n``), ``model_at_floor_n`` (the first samples, as many as the floor
        has, where the held-out split is smaller than ``n``: FD, recall, density and coverage depend on
        the count, so this is the column to read the floor against), ``seconds`` (wall time) and
        ``sample_seconds``.

    Raises
    ------
    CheckpointError, DataError
        The checkpoint or its data cannot be loaded, or the data are neither images nor points.
    ConfigError
        n < 10.
    """
    from engines.lib.training import pick_device
    from engines.metrics.coverage import load_run

    if n < 10:
        raise ConfigError(f"sample quality needs n >= 10 images, got {n}")
    t0 = time.perf_counter()
    report = progress or (lambda message, fraction: None)
    dev = str(pick_device(device))
    report("loading the checkpoint", 0.0)
    engine, manifest, dataset = load_run(run, dev)
    spec = manifest.get("data_spec") or engine.data.spec
    space = feature_space(dataset, dev, seed, lambda m, f: report(m, 0.2 * f))
    rng = np.random.default_rng(seed)
    train, test = np.asarray(dataset.train_indices), np.asarray(dataset.test_indices)
    ref = np.sort(rng.choice(train, size=min(n, len(train)), replace=False))
    real_features = space.embed(dataset.get(ref))
    t1 = time.perf_counter()
    samples = _sample(engine, n, seed, report)
    sample_seconds = time.perf_counter() - t1
    report("scoring the samples", 0.6)
    model = quality_scores(real_features, samples, space)
    report("scoring held-out real images (the floor)", 0.8)
    held = np.sort(rng.choice(test, size=min(n, len(test)), replace=False))
    floor = quality_scores(real_features, dataset.get(held), space)
    out = {
        "run": str(run), "engine": engine.name, "step": manifest.get("step"), "data_spec": spec,
        "features": space.describe, "feature_space": space.name, "n": int(n), "n_reference": int(len(ref)),
        "seed": int(seed), "model": model, "floor": floor, "sample_seconds": sample_seconds,
    }
    if len(held) < n:  # every score but precision depends on the count: the model again at the floor's
        report(f"scoring {len(held)} samples (the floor's count)", 0.9)
        out["model_at_floor_n"] = quality_scores(real_features, samples[: len(held)], space)
    report("done", 1.0)
    out["seconds"] = time.perf_counter() - t0
    return out


#: Rows of :func:`format_quality`: key, label.
ROWS = (
    ("fd", "FD (classifier features)"), ("classifier_score", "classifier score"), ("precision", "precision (k=3)"),
    ("recall", "recall (k=3)"), ("density", "density (k=5)"), ("coverage", "coverage (k=5)"),
)


def format_quality(result: dict[str, Any]) -> str:
    """A plain-text table of a :func:`quality_for_run` result: the model's scores beside the floor's."""
    cols = [(f"model ({result['model']['n']})", result["model"])]
    if "model_at_floor_n" in result:
        cols.append((f"model ({result['model_at_floor_n']['n']})", result["model_at_floor_n"]))
    cols.append((f"held-out real ({result['floor']['n']}, floor)", result["floor"]))
    rows = [("", *(name for name, _ in cols))]
    first = cols[0][1]
    for key, label in ROWS:
        if key in first:
            if key == "fd" and result.get("feature_space") != "classifier":
                label = "FD (PCA of pixels)" if result.get("feature_space") == "pca" else "FD (coordinates)"
            rows.append((label, *(f"{c[key]:.4f}" for _, c in cols)))
    if "classes_total" in first:
        k = first["classes_total"]
        rows.append(("classes covered (PacGAN: any sample)", *(f"{c['classes_covered']} / {k}" for _, c in cols)))
        rows.append((f"classes covered (confident, p >= {CONFIDENT})",
                     *(f"{c['classes_covered_confident']} / {k}" for _, c in cols)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    head = (f"{result['engine']} step {result['step']} on {result['data_spec']}: {result['features']}; "
            f"reference {result['n_reference']} training examples, {result['seconds']:.1f} s")
    lines = [head]
    for r in rows:
        lines.append("  ".join([f"{r[0]:<{widths[0]}}", *(f"{v:>{w}}" for v, w in zip(r[1:], widths[1:]))]))
    return "\n".join(lines)
