"""Typed results of the metrics, torch-free: what the metric functions return and the live events carry.

Each result is a frozen dataclass whose fields are the numbers (names, units and ranges in its
docstring, never in prose elsewhere); ``to_json`` gives the dict the command line writes, and
``from_json`` reads it back (the wire codec uses both, so a result travels to the window typed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar


def _from_json(cls: type, d: dict) -> Any:
    names = {f.name for f in fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class MixtureCoverage:
    """Mode coverage of samples from a 2-D Gaussian mixture with known modes (VEEGAN / PacGAN protocol).

    Attributes
    ----------
    n : int
        Samples measured.
    modes_total : int
        M, the mixture's modes.
    modes_captured : int
        Modes, in [0, M], that are the nearest mode of at least one high-quality sample.
    high_quality_share : float
        Share in [0, 1] of samples within 3 standard deviations of their nearest mode.
    reverse_kl : float or None
        KL(p_gen || p_data) in nats (>= 0) of the high-quality samples' histogram over the modes
        against the uniform one; None when no sample is of high quality.
    per_mode_counts : tuple of int
        High-quality samples per mode (M).
    """

    n: int
    modes_total: int
    modes_captured: int
    high_quality_share: float
    reverse_kl: float | None
    per_mode_counts: tuple[int, ...] = ()
    metric: ClassVar[str] = "mixture"

    def to_json(self) -> dict:
        """The fields, with ``metric``, as a JSON-able dict."""
        return {"metric": self.metric, **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}}

    @classmethod
    def from_json(cls, d: dict) -> MixtureCoverage:
        """Inverse of :meth:`to_json`."""
        return _from_json(cls, d)

    @property
    def captured_share(self) -> float:
        """modes_captured / modes_total (NaN for no mode)."""
        return self.modes_captured / self.modes_total if self.modes_total else float("nan")


@dataclass(frozen=True)
class ClassCoverage:
    """Classes (or k-means clusters) covered by samples, through a classifier the studio trains.

    Attributes
    ----------
    metric : {"classes", "clusters"}
        Labelled images (a classifier's classes) or unlabelled ones (k-means clusters in PCA space).
    n : int
        Samples measured.
    classes_total : int
        K classes or clusters.
    classes_covered : int
        Classes, in [0, K], predicted for at least one confident sample (top probability >= the threshold).
    class_kl : float
        KL(generated || data) in nats (>= 0) between the samples' and the data's class histograms.
    confident_share : float
        Share in [0, 1] of samples whose top class probability reaches the threshold.
    generated_hist, data_hist : tuple of float
        The two histograms (K each, summing to 1).
    classifier_accuracy : float or None
        Held-out accuracy in [0, 1] of the classifier ("classes" only).
    """

    metric: str
    n: int
    classes_total: int
    classes_covered: int
    class_kl: float
    confident_share: float
    generated_hist: tuple[float, ...] = ()
    data_hist: tuple[float, ...] = ()
    classifier_accuracy: float | None = None

    def to_json(self) -> dict:
        """The fields as a JSON-able dict."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, d: dict) -> ClassCoverage:
        """Inverse of :meth:`to_json`."""
        return _from_json(cls, d)

    @property
    def captured_share(self) -> float:
        """classes_covered / classes_total (NaN for no class)."""
        return self.classes_covered / self.classes_total if self.classes_total else float("nan")


Coverage = MixtureCoverage | ClassCoverage


def coverage_from_json(d: dict) -> Coverage:
    """A coverage result from its :meth:`to_json` dict, by its ``metric``."""
    return MixtureCoverage.from_json(d) if d.get("metric") == "mixture" else ClassCoverage.from_json(d)


@dataclass(frozen=True)
class RunCoverage:
    """The coverage of a saved run (``latent-studio coverage``): the result, and what was measured.

    Attributes
    ----------
    result : MixtureCoverage or ClassCoverage
    ms : float
        Wall time of sampling and metric, milliseconds.
    run : str
        The run folder or checkpoint.
    engine : str or None
        Its registry name.
    step : int or None
        Its training step.
    data_spec : str
    seed : int
        Seed of the sampling generator.
    """

    result: MixtureCoverage | ClassCoverage
    ms: float
    run: str
    engine: str | None
    step: int | None
    data_spec: str
    seed: int

    def to_json(self) -> dict:
        """The result's dict beside ``ms``, ``run``, ``engine``, ``step``, ``data_spec`` and ``seed``."""
        out = {k: getattr(self, k) for k in ("ms", "run", "engine", "step", "data_spec", "seed")}
        return {**self.result.to_json(), **out}


@dataclass(frozen=True)
class DisentanglementScores:
    """Disentanglement scores of a mean representation against known factors (disentanglement_lib's protocols).

    Each is a float in [0, 1], or None where the data or the latent width does not support it
    (MIG and SAP need at least two latents; the FactorVAE and beta-VAE scores need a data set that
    can be sampled by factor value).

    Attributes
    ----------
    mig : float or None
        Mutual information gap (Chen et al. 2018).
    sap : float or None
        Separated attribute predictability (Kumar et al. 2018).
    dci_disentanglement, dci_completeness, dci_informativeness : float or None
        DCI (Eastwood & Williams 2018); informativeness is the held-out accuracy of the factor predictors.
    factor_vae_score : float or None
        Majority-vote accuracy (Kim & Mnih 2018).
    beta_vae_score : float or None
        Linear-classifier accuracy (Higgins et al. 2017).
    """

    mig: float | None = None
    sap: float | None = None
    dci_disentanglement: float | None = None
    dci_completeness: float | None = None
    dci_informativeness: float | None = None
    factor_vae_score: float | None = None
    beta_vae_score: float | None = None

    def present(self) -> dict[str, float]:
        """The scores measured (not None), by name, in the order above."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def to_json(self) -> dict:
        """Every score by name (None where not measured)."""
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> DisentanglementScores:
        """Inverse of :meth:`to_json`."""
        return _from_json(cls, d)
