"""Mode coverage of a generative model: which modes (or classes, or clusters) its samples reach.

Three metrics, one per kind of data, all returning JSON-able dicts (Python ints, floats, lists;
None where a number is undefined, never NaN):

- :func:`mixture_coverage` for a 2-D Gaussian mixture with known modes (``ring``, ``grid``): the
  protocol of Srivastava, Valkov, Russell, Gutmann and Sutton, 2017 (VEEGAN) as used by Lin,
  Khetan, Fanti and Oh, 2018 (PacGAN), Table 1.
- :func:`class_coverage` for labelled images: a classifier trained on the data labels each
  generated image (the "stacked MNIST" protocol of Metz, Poole, Pfau and Sohl-Dickstein, 2017;
  VEEGAN; PacGAN, Table 2), compared with the data's own class histogram.
- :func:`cluster_coverage` for unlabelled images: k-means clusters of the real data (Lloyd, 1982,
  via scikit-learn) in a PCA space of the pixels stand in for the classes.

:func:`coverage_for_run` measures a saved run, :class:`CoverageTracker` measures a live engine
on a schedule (the worker), and :func:`add_coverage_command` registers ``latent-studio coverage``.
The metric maths is numpy and scikit-learn; torch is imported only by the functions that sample
an engine or train the classifier (:mod:`engines.metrics.classifier`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from engines.data.base import Dataset
from engines.shared.errors import ConfigError, DataError
from engines.shared.results import ClassCoverage, Coverage, MixtureCoverage, RunCoverage

#: Samples drawn per measurement in the VEEGAN / PacGAN protocol.
PROTOCOL_N = 2500
#: Samples per live measurement on images (the tracker's default).
LIVE_IMAGE_N = 1000
#: Floor of a data class probability in the class KL (only a class with no data examples uses it).
DATA_FLOOR = 1e-6

Progress = Callable[[str, float], None]


# -- shared maths ------------------------------------------------------------------------------
def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) = sum_i p_i log(p_i / q_i) in nats, with 0 log 0 = 0.

    Parameters
    ----------
    p, q : (K,) float arrays
        Probability vectors (each is normalised here); q must be positive wherever p is.

    Returns
    -------
    float
        >= 0 nats; finite whenever q > 0 on the support of p, whatever zeros p has.

    Raises
    ------
    ConfigError
        Shapes differ, negative or all-zero entries, or q = 0 where p > 0.
    """
    p = np.asarray(p, np.float64)
    q = np.asarray(q, np.float64)
    if p.shape != q.shape or p.ndim != 1:
        raise ConfigError(f"KL needs two probability vectors of one length, got shapes {p.shape} and {q.shape}")
    if (p < 0).any() or (q < 0).any() or p.sum() <= 0 or q.sum() <= 0:
        raise ConfigError("KL needs non-negative vectors with positive sums")
    p, q = p / p.sum(), q / q.sum()
    support = p > 0
    if (q[support] == 0).any():
        raise ConfigError("KL(p || q) is infinite: q is zero where p is not")
    return float(max(0.0, np.sum(p[support] * np.log(p[support] / q[support]))))


def _check_rows(x: Any, what: str, ndim: int = 2) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim != ndim or len(x) == 0:
        raise ConfigError(f"{what}: expected a non-empty array of {ndim} dimensions, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ConfigError(f"{what}: contains NaN or infinite values")
    return x


# -- 2-D mixtures ------------------------------------------------------------------------------
def mixture_coverage(samples: np.ndarray, means: np.ndarray, std: float, n_std: float = 3.0) -> MixtureCoverage:
    """Modes captured and high-quality share of samples from a Gaussian mixture with known modes.

    The protocol of VEEGAN (Srivastava et al., 2017, Section 5.1) and PacGAN (Lin et al., 2018,
    Section 5.1 and Table 1), on :data:`PROTOCOL_N` samples:

    1. every sample goes to its nearest mode (Euclidean; every component has the same isotropic
       ``std``, so this is also the nearest mode in standard deviations, as in PacGAN's code,
       which divides each coordinate by the component's standard deviation);
    2. a sample is *high quality* when it lies within ``n_std`` standard deviations of that mode:
       ``||x - mu|| < n_std * std`` (strictly, as PacGAN's ``min_dis < dis_thre``);
    3. a mode is *captured* when it is the nearest mode of at least one high-quality sample;
    4. ``reverse_kl`` is KL(p_gen || p_data) in nats, where p_gen is the histogram of the
       high-quality samples over the M modes (``per_mode_counts`` normalised) and p_data the
       uniform distribution over all M modes (the data's true mode weights). It equals
       ``log M - H(p_gen)``: 0 when every mode gets the same share, ``log M`` when one mode gets
       all. This direction (model first, hence "reverse") stays finite when the model misses
       modes (p_gen has zeros; 0 log 0 = 0), whereas KL(p_data || p_gen) would be infinite.
       Low-quality samples do not enter the histogram; with no high-quality sample at all the
       histogram is undefined and ``reverse_kl`` is None.

    Parameters
    ----------
    samples : (N, 2) float array
        Generated points, in data units.
    means : (M, 2) float array
        The mixture's mode centres (``DataInfo.modes``).
    std : float
        Standard deviation of every component (``DataInfo.mode_std``), > 0.
    n_std : float
        The high-quality radius in standard deviations (3 in both papers).

    Returns
    -------
    MixtureCoverage

    Raises
    ------
    ConfigError
        Empty or non-finite arrays, mismatched widths, or std / n_std not positive.
    """
    x = _check_rows(samples, "samples")
    mu = _check_rows(means, "mode means")
    if x.shape[1] != mu.shape[1]:
        raise ConfigError(f"samples have {x.shape[1]} coordinates, the modes {mu.shape[1]}")
    if not (std > 0 and n_std > 0 and math.isfinite(std) and math.isfinite(n_std)):
        raise ConfigError(f"std and n_std must be positive, got std={std}, n_std={n_std}")
    d2 = ((x[:, None, :] - mu[None, :, :]) ** 2).sum(axis=2)  # (N, M)
    nearest = d2.argmin(axis=1)
    dist = np.sqrt(d2[np.arange(len(x)), nearest])
    good = dist < n_std * std
    counts = np.bincount(nearest[good], minlength=len(mu))
    m = len(mu)
    reverse_kl = kl_divergence(counts, np.full(m, 1.0 / m)) if good.any() else None
    return MixtureCoverage(n=int(len(x)), modes_total=int(m), modes_captured=int((counts > 0).sum()),
                           high_quality_share=float(good.mean()), reverse_kl=reverse_kl,
                           per_mode_counts=tuple(int(c) for c in counts))


# -- class histograms (labelled images and clusters) ---------------------------------------------
def _histogram_coverage(metric: str, assign: np.ndarray, confident: np.ndarray, data_hist: np.ndarray) -> ClassCoverage:
    """The class / cluster summary shared by :func:`class_coverage` and :func:`cluster_coverage`."""
    k = len(data_hist)
    q = np.asarray(data_hist, np.float64)
    if q.ndim != 1 or k < 1 or (q < 0).any() or q.sum() <= 0 or not np.isfinite(q).all():
        raise ConfigError(f"the data's class histogram must be K >= 1 non-negative numbers with a positive sum, got {q}")
    q = q / q.sum()
    q = np.maximum(q, DATA_FLOOR)
    q = q / q.sum()
    counts = np.bincount(assign, minlength=k)
    p = counts / counts.sum()
    return ClassCoverage(
        metric=metric, n=int(len(assign)), classes_total=int(k),
        classes_covered=int((np.bincount(assign[confident], minlength=k) > 0).sum()),
        classes_covered_any=int((counts > 0).sum()),
        class_kl=kl_divergence(p, q), confident_share=float(confident.mean()),
        generated_hist=tuple(float(v) for v in p), data_hist=tuple(float(v) for v in q),
    )


def class_coverage(
    sample_images: np.ndarray,
    classifier: Callable[[np.ndarray], np.ndarray],
    data_class_hist: np.ndarray,
    confident: float = 0.9,
) -> dict[str, Any]:
    """Classes covered by generated images, and KL of their class histogram to the data's.

    The stacked-MNIST protocol (Metz et al., 2017; Srivastava et al., 2017; Lin et al., 2018)
    with a classifier trained on the user's data (:mod:`engines.metrics.classifier`):

    - each sample's class is the classifier's argmax; ``generated_hist`` is the histogram of
      those classes over *all* samples, normalised (as in stacked MNIST);
    - ``class_kl`` is KL(p_gen || p_data) in nats, p_data the data's class histogram
      (``data_class_hist`` normalised). This direction, as PacGAN's "reverse KL", stays finite
      when the model misses classes. p_data is floored at :data:`DATA_FLOOR` and renormalised so
      that the KL stays finite even for a class the data has no example of (a no-op otherwise,
      up to 1e-6 relative). No smoothing is applied to p_gen. 0 when the histograms agree;
      ``log(1 / p_data[c])`` when every sample is class c;
    - a sample is *confident* when its top probability is >= ``confident``; a class is *covered*
      when it is the argmax of at least one confident sample (``confident=0`` gives the original
      protocol: a class is covered when any sample falls in it).

    Parameters
    ----------
    sample_images : (N, C, H, W) float array in [0, 1]
    classifier : callable
        Maps (B, C, H, W) images to (B, K) class probabilities (rows summing to 1), e.g.
        ``lambda x: predict_proba(model, x)``.
    data_class_hist : (K,) array
        Counts or frequencies of each class in the data.
    confident : float
        Probability threshold in [0, 1].

    Returns
    -------
    dict
        ``classes_total`` (K), ``classes_covered`` (int), ``class_kl`` (float >= 0 nats),
        ``confident_share`` (float in [0, 1]), ``generated_hist`` and ``data_hist`` (lists of K
        floats summing to 1), ``n``, ``metric`` ("classes").

    Raises
    ------
    ConfigError
        No samples, probabilities of the wrong shape or not finite, a bad histogram or threshold.
    """
    if not 0.0 <= confident <= 1.0:
        raise ConfigError(f"confident must be in [0, 1], got {confident}")
    if len(sample_images) == 0:
        raise ConfigError("class coverage needs at least one sample")
    probs = np.asarray(classifier(sample_images), np.float64)
    k = len(np.asarray(data_class_hist).reshape(-1))
    if probs.shape != (len(sample_images), k) or not np.isfinite(probs).all():
        raise ConfigError(f"the classifier returned shape {probs.shape}; expected ({len(sample_images)}, {k}) finite probabilities")
    return _histogram_coverage("classes", probs.argmax(axis=1), probs.max(axis=1) >= confident,
                               np.asarray(data_class_hist).reshape(-1))


# -- clusters for unlabelled data ----------------------------------------------------------------
@dataclass
class ClusterModel:
    """k-means clusters of real data in a PCA space of its pixels (or coordinates).

    Features: the examples flattened to D = C*H*W values in [0, 1], projected on the first
    ``min(n_components, D, n - 1)`` principal components of the fitting set (centred, not
    whitened, so distances stay in pixel units). k-means (scikit-learn, k-means++ start, 3
    restarts) on those features gives the centres; each fitting example's Euclidean distance to
    its centre gives, per cluster, the ``quantile`` of its members' distances: a sample is
    *confident* when it lies within that radius of its nearest centre, i.e. about as close as the
    real data's own members.

    Attributes
    ----------
    pca : sklearn.decomposition.PCA
    kmeans : sklearn.cluster.KMeans
    radius : (k,) float64
        Per-cluster confidence radius, in feature (pixel) units.
    data_hist : (k,) float64
        Share of the fitting examples in each cluster.
    """

    pca: Any
    kmeans: Any
    radius: np.ndarray
    data_hist: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, k: int = 10, n_components: int = 32, quantile: float = 0.95, seed: int = 0) -> ClusterModel:
        """Fit on real examples x (N, ...) with N > k.

        Raises
        ------
        ConfigError
            Fewer examples than clusters + 1, k < 2, or a quantile outside (0, 1].
        """
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA

        x = np.asarray(x, np.float64).reshape(len(x), -1)
        if k < 2 or len(x) <= k:
            raise ConfigError(f"k-means coverage needs k >= 2 and more than k examples, got k={k}, N={len(x)}")
        if not 0.0 < quantile <= 1.0:
            raise ConfigError(f"quantile must be in (0, 1], got {quantile}")
        pca = PCA(n_components=min(n_components, x.shape[1], len(x) - 1), random_state=seed).fit(x)
        f = pca.transform(x)
        kmeans = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(f)
        d = np.linalg.norm(f - kmeans.cluster_centers_[kmeans.labels_], axis=1)
        radius = np.zeros(k)
        for c in range(k):
            members = d[kmeans.labels_ == c]
            radius[c] = np.quantile(members, quantile) if len(members) else 0.0
        data_hist = np.bincount(kmeans.labels_, minlength=k) / len(x)
        return cls(pca, kmeans, radius, data_hist)

    def assign(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest centre (N,) int64 and confident mask (N,) bool of examples x (N, ...)."""
        f = self.pca.transform(np.asarray(x, np.float64).reshape(len(x), -1))
        centres = self.kmeans.cluster_centers_
        d2 = (f * f).sum(1)[:, None] - 2 * f @ centres.T + (centres * centres).sum(1)[None, :]
        nearest = d2.argmin(axis=1)
        dist = np.sqrt(np.maximum(d2[np.arange(len(f)), nearest], 0.0))
        return nearest.astype(np.int64), dist <= self.radius[nearest]


def cluster_coverage(samples: np.ndarray, clusters: ClusterModel) -> dict[str, Any]:
    """Clusters covered by generated samples, and KL of their cluster histogram to the data's.

    As :func:`class_coverage`, with the clusters of :class:`ClusterModel` as classes: each sample
    goes to its nearest centre; ``class_kl`` is KL(p_gen || p_data) in nats over all samples;
    a cluster is covered when at least one *confident* sample (within the cluster's radius) falls
    in it.

    Parameters
    ----------
    samples : (N, C, H, W) float array in [0, 1], or (N, D)
    clusters : ClusterModel
        Fitted on the real training data.

    Returns
    -------
    dict
        The keys of :func:`class_coverage`, with ``metric`` "clusters".

    Raises
    ------
    ConfigError
        No samples, or samples whose size differs from the fitted data's.
    """
    if len(samples) == 0:
        raise ConfigError("cluster coverage needs at least one sample")
    width = int(np.prod(np.shape(samples)[1:]))
    if width != clusters.pca.n_features_in_:
        raise ConfigError(f"samples have {width} values each, the clusters were fitted on {clusters.pca.n_features_in_}")
    assign, confident = clusters.assign(samples)
    return _histogram_coverage("clusters", assign, confident, clusters.data_hist)


# -- live and saved runs ---------------------------------------------------------------------------
class CoverageTracker:
    """Mode coverage of an engine on one data set, prepared once and measured on a schedule.

    The metric follows the data: a 2-D mixture with known modes (``DataInfo.modes``) uses
    :func:`mixture_coverage`; labelled images (``class_names`` and labels) use
    :func:`class_coverage` with the cached classifier of
    :func:`engines.metrics.classifier.load_or_train_classifier` (trained here if absent, about
    ten seconds for ``digits`` on one CPU thread); anything else uses :func:`cluster_coverage`
    with k-means fitted on (up to ``max_fit`` examples of) the training split.

    Parameters
    ----------
    dataset : Dataset
    device : torch.device or str
        Where the classifier lives and runs.
    seed : int
        Seeds the classifier's training and the k-means fit.
    classifier_steps : int or None
        Training steps of the classifier (None: its default).
    n_clusters : int
        k of the k-means (unlabelled data).
    confident : float
        Probability threshold of :func:`class_coverage`.
    max_fit : int
        At most this many training examples (a seeded subset) fit the k-means.
    progress : callable or None
        ``progress(message, fraction)`` while the classifier trains.

    Attributes
    ----------
    metric : {"mixture", "classes", "clusters"}
    classifier_accuracy : float or None
        Held-out accuracy in [0, 1] of the classifier ("classes" only).

    Raises
    ------
    DataError
        A data set the chosen metric cannot use (e.g. too few examples).
    """

    def __init__(
        self,
        dataset: Dataset,
        device: Any = "cpu",
        seed: int = 0,
        classifier_steps: int | None = None,
        n_clusters: int = 10,
        confident: float = 0.9,
        max_fit: int = 5000,
        progress: Progress | None = None,
    ) -> None:
        info = dataset.info
        self.info = info
        self._dataset = dataset
        self._seed = seed
        self._reference: np.ndarray | None = None  # real training examples' features, for quality()
        self.confident = confident
        self.classifier_accuracy: float | None = None
        self._model: Any = None
        self._clusters: ClusterModel | None = None
        labels = dataset.labels(dataset.train_indices[:1]) if len(dataset.train_indices) else None
        if info.kind == "points" and info.modes and info.mode_std:
            self.metric = "mixture"
            self._means = np.asarray(info.modes, np.float64)
        elif info.kind == "image" and info.class_names and len(info.class_names) >= 2 and labels is not None:
            from engines.metrics.classifier import load_or_train_classifier

            self.metric = "classes"
            report = None if progress is None else (lambda s, t: progress("training the coverage classifier", s / t))
            self._model, self.classifier_accuracy = load_or_train_classifier(
                dataset, classifier_steps, seed, device, report
            )
            y = dataset.labels(dataset.train_indices)
            self._data_hist = np.bincount(y, minlength=len(info.class_names)).astype(np.float64)
        else:
            self.metric = "clusters"
            idx = dataset.train_indices
            if len(idx) > max_fit:
                idx = np.sort(np.random.default_rng(seed).choice(idx, max_fit, replace=False))
            try:
                self._clusters = ClusterModel.fit(dataset.get(idx), k=n_clusters, seed=seed)
            except ConfigError as exc:
                raise DataError(f"{info.spec}: {exc}") from exc

    @property
    def default_n(self) -> int:
        """:data:`PROTOCOL_N` for 2-D points, :data:`LIVE_IMAGE_N` for images."""
        return PROTOCOL_N if self.metric == "mixture" else LIVE_IMAGE_N

    def evaluate(self, samples: np.ndarray) -> Coverage:
        """The metric on samples (N, 2) or (N, C, H, W) in [0, 1]: :func:`mixture_coverage`,
        :func:`class_coverage` (with ``classifier_accuracy``) or :func:`cluster_coverage`."""
        if self.metric == "mixture":
            return mixture_coverage(samples, self._means, float(self.info.mode_std or 0.0))
        if self.metric == "classes":
            from engines.metrics.classifier import predict_proba

            out = class_coverage(samples, lambda x: predict_proba(self._model, x), self._data_hist, self.confident)
            return replace(out, classifier_accuracy=self.classifier_accuracy)
        assert self._clusters is not None
        return cluster_coverage(samples, self._clusters)

    #: Real training examples whose features are the reference of :meth:`quality`.
    QUALITY_REFERENCE_N = 1000

    def features(self, x: np.ndarray) -> np.ndarray:
        """The features sample quality is measured in: the classifier's hidden layer ("classes"), the
        k-means' PCA of pixels ("clusters") or the coordinates ("mixture"); (N, F) float64."""
        if self.metric == "classes":
            from engines.metrics.classifier import embed

            return embed(self._model, x)
        flat = np.asarray(x, np.float64).reshape(len(x), -1)
        return flat if self.metric == "mixture" else self._clusters.pca.transform(flat)

    def quality(self, samples: np.ndarray) -> dict[str, float]:
        """Sample quality of ``samples`` against :data:`QUALITY_REFERENCE_N` real training examples in
        :meth:`features` (:mod:`engines.metrics.sample_quality`): ``fd``, ``precision``, ``recall`` (k = 3),
        ``density``, ``coverage`` (k = 5) and, with a classifier, ``classifier_score``; {} for fewer than
        six samples. The reference is drawn (by the tracker's seed) and embedded at the first call."""
        from engines.metrics import sample_quality as sq

        if len(samples) < 6:
            return {}
        if self._reference is None:
            idx = np.asarray(self._dataset.train_indices)
            n = min(self.QUALITY_REFERENCE_N, len(idx))
            pick = np.sort(np.random.default_rng([self._seed, 7]).choice(idx, size=n, replace=False))
            self._reference = self.features(self._dataset.get(pick))
        feats = self.features(samples)
        precision, recall = sq.precision_recall(self._reference, feats, 3)
        density, coverage = sq.density_coverage(self._reference, feats, 5)
        out = {"fd": sq.frechet_distance(self._reference, feats), "precision": precision, "recall": recall,
               "density": density, "coverage": coverage, "n": float(len(samples)),
               "n_reference": float(len(self._reference))}
        if self.metric == "classes":
            from engines.metrics.classifier import predict_proba

            out["classifier_score"] = sq.classifier_score(predict_proba(self._model, samples))
        return out

    def measure(self, engine: Any, n: int | None = None, generator: Any = None) -> tuple[Coverage, float]:
        """Sample ``n`` examples from ``engine`` (in eval mode, without gradients) and evaluate them.

        Parameters
        ----------
        engine : Engine
            Any device; its train / eval mode is restored afterwards.
        n : int or None
            Samples; None for :attr:`default_n`.
        generator : torch.Generator or None
            On the engine's device; None uses torch's global generator.

        Returns
        -------
        result : MixtureCoverage or ClassCoverage
            :meth:`evaluate`'s.
        ms : float
            Wall time of sampling and metric, milliseconds.

        Raises
        ------
        ConfigError
            n < 1.
        """
        import torch

        n = self.default_n if n is None else int(n)
        if n < 1:
            raise ConfigError(f"coverage needs n >= 1 samples, got {n}")
        t0 = time.perf_counter()
        was_training = engine.training
        engine.eval()
        try:
            with torch.no_grad():
                x = engine.sample(n, generator=generator).detach().float().cpu().numpy()
        finally:
            engine.train(was_training)
        out = self.evaluate(x)
        return out, (time.perf_counter() - t0) * 1000.0


def load_run(run: str | Path, device: str) -> tuple[Any, dict, Dataset]:
    """A saved run's engine (without optimiser state), manifest and data set, reloaded from its manifest's spec.

    Raises
    ------
    CheckpointError
        The checkpoint cannot be loaded.
    DataError
        The data set cannot be loaded, or no longer has the shape the model was trained on.
    """
    from engines.data import load_dataset
    from engines.lib.checkpoint import load_checkpoint

    engine, manifest = load_checkpoint(run, device=device, with_optimizer=False)
    spec = manifest.get("data_spec") or engine.data.spec
    dataset = load_dataset(spec, manifest.get("image_size"))
    if tuple(dataset.info.shape) != tuple(engine.data.shape):
        raise DataError(
            f"{spec}: examples now have shape {dataset.info.shape}, the model in {run} was trained on {engine.data.shape}"
        )
    return engine, manifest, dataset


def coverage_for_run(
    run: str | Path, n: int = PROTOCOL_N, seed: int = 0, progress: Progress | None = None, device: Any = None
) -> RunCoverage:
    """Mode coverage of a saved run: load it and its data set, sample ``n`` with ``seed``, measure.

    Parameters
    ----------
    run : path
        A run folder or ``.safetensors`` checkpoint (:func:`engines.lib.checkpoint.load_checkpoint`).
    n, seed : int
        Samples (2,500 in the VEEGAN / PacGAN protocol); seed of the sampling generator (and of
        the classifier / k-means, see :class:`CoverageTracker`).
    progress : callable or None
        ``progress(message, fraction)``.
    device : str or None
        None picks cuda, then mps, then cpu.

    Returns
    -------
    RunCoverage

    Raises
    ------
    CheckpointError
        The checkpoint cannot be loaded.
    DataError
        Its data set cannot be loaded, or no longer has the shape the model was trained on.
    ConfigError
        n < 1.
    """
    import torch

    from engines.lib.training import pick_device

    if n < 1:
        raise ConfigError(f"coverage needs n >= 1 samples, got {n}")
    dev = pick_device(device)
    if progress:
        progress("loading the checkpoint", 0.0)
    engine, manifest, dataset = load_run(run, str(dev))
    spec = manifest.get("data_spec") or engine.data.spec
    tracker = CoverageTracker(dataset, device=dev, seed=seed, progress=progress)
    if progress:
        progress("sampling", 0.5)
    gen = torch.Generator(device=dev).manual_seed(seed)
    out, ms = tracker.measure(engine, n, gen)
    if progress:
        progress("done", 1.0)
    return RunCoverage(out, ms, str(run), manifest.get("engine"), manifest.get("step"), spec, int(seed))
