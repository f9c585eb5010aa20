"""Typed results of the metrics, torch-free: what the metric functions return and the live events carry.

Each result is a frozen dataclass whose fields are the numbers (names, units and ranges in its
docstring, never in prose elsewhere); ``to_json`` gives the dict the command line writes, and
``from_json`` reads it back (the wire codec uses both, so a result travels to the window typed).
"""

from __future__ import annotations

import math
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
        Classes, in [0, K], predicted for at least one confident sample (top probability >= the
        threshold): the studio's stricter count, labelled "confident" wherever it is shown.
    class_kl : float
        KL(generated || data) in nats (>= 0) between the samples' and the data's class histograms.
    confident_share : float
        Share in [0, 1] of samples whose top class probability reaches the threshold.
    generated_hist, data_hist : tuple of float
        The two histograms (K each, summing to 1).
    classifier_accuracy : float or None
        Held-out accuracy in [0, 1] of the classifier ("classes" only).
    classes_covered_any : int
        Classes, in [0, K], that are the top class (nearest cluster) of at least one sample, however
        unsure: the count of the published protocol (Lin et al., 2018, PacGAN; Srivastava et al., 2017).
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
    classes_covered_any: int = 0

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


#: What a log-likelihood is of, by data space (``HeldOutLikelihood.space``): bits/dim are given for the
#: discrete spaces only.
LIKELIHOOD_SPACES = {
    "8-bit": "the 8-bit image (a flow under uniform dequantisation, or a 256-way softmax)",
    "binary": "the binary image (a Bernoulli model on statically binarised data)",
    "bernoulli-pseudo": "grey levels under a Bernoulli model: a pseudo-likelihood, not a normalised density",
    "continuous": "a density of continuous data (2-D points, or a Gaussian decoder): no bits/dim",
}


@dataclass(frozen=True)
class HeldOutLikelihood:
    """The held-out log-likelihood (or its declared bound) of a model, per example.

    Attributes
    ----------
    kind : {"exact", "ais", "elbo"}
        What ``nats`` is: the exact log-likelihood, an estimate with log Z by annealed importance sampling
        (Salakhutdinov & Murray 2008), or the ELBO (a lower bound; Kingma & Welling 2014).
    nats : float
        Mean held-out log p(x) (or the bound) in nats per example (higher is better; <= 0 on discrete data).
    stderr : float
        Standard error of that mean over the examples measured, nats (0 when every example was measured
        and the estimate is exact).
    n, n_test : int
        Examples measured (a seeded sample of the held-out split when it is larger), and the split's size.
    dims : int
        D, the dimensions of one example (C*H*W, or 2).
    space : str
        A key of :data:`LIKELIHOOD_SPACES`.
    iwae_k : int
        k of the IWAE bound (Burda et al. 2016) in ``iwae_nats``; 0 for none.
    iwae_nats : float or None
    """

    kind: str
    nats: float
    stderr: float
    n: int
    n_test: int
    dims: int
    space: str
    iwae_k: int = 0
    iwae_nats: float | None = None
    metric: ClassVar[str] = "held_out_likelihood"

    @property
    def nll(self) -> float:
        """-nats: the held-out negative log-likelihood (or the negative bound), nats per example."""
        return -self.nats

    @property
    def bits_per_dim(self) -> float | None:
        """-nats / (D ln 2) on a discrete space ("8-bit", "binary"); None elsewhere."""
        if self.space not in ("8-bit", "binary") or not self.dims:
            return None
        return -self.nats / (self.dims * math.log(2))

    def to_json(self) -> dict:
        """The fields, ``metric``, ``nll_nats``, and ``bits_per_dim`` where it applies, as a JSON-able dict."""
        out = {"metric": self.metric, **asdict(self), "nll_nats": self.nll, "space_means": LIKELIHOOD_SPACES[self.space]}
        if self.bits_per_dim is not None:
            out["bits_per_dim"] = self.bits_per_dim
        return out

    @classmethod
    def from_json(cls, d: dict) -> HeldOutLikelihood:
        """Inverse of :meth:`to_json`."""
        return _from_json(cls, d)

    def summary(self) -> str:
        """One line, e.g. ``"held-out NLL 88.1 +- 0.9 nats (exact, binary image; 0.162 bits/dim), 1000 examples"``."""
        what = {"exact": "NLL", "ais": "NLL (AIS estimate)"}.get(self.kind, "-ELBO")
        text = f"held-out {what} {self.nll:.2f} +- {self.stderr:.2f} nats ({self.kind}, {self.space}"
        if self.bits_per_dim is not None:
            text += f"; {self.bits_per_dim:.3f} bits/dim"
        text += f"), {self.n} of {self.n_test} examples"
        if self.iwae_nats is not None:
            text += f"; IWAE(k={self.iwae_k}) {-self.iwae_nats:.2f} nats"
        return text
