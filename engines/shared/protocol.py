"""Typed messages between the window and the worker, and their pickle-free wire codec.

Commands (window -> worker) are imperative; events (worker -> window) are nouns or past tense.
Every message is a frozen dataclass whose fields are JSON values (str, int, float, bool, None,
lists and dicts of those) or numpy arrays.

The wire codec lives in :mod:`engines.shared.codec` (re-exported here: ``protocol.encode``,
``protocol.decode``, ``protocol.MAGIC`` ...). Wire format of one message (one
``Connection.send_bytes`` frame)::

    b"LSM1" | uint32 little-endian header length | header (UTF-8 JSON) | raw array bytes ...

The header is ``{"type": "Decode", "fields": {...}, "arrays": [{"field", "dtype", "shape"}]}``;
array bytes follow in that order, C-contiguous, little-endian. Only numeric and bool dtypes are
accepted, so no object arrays and no pickle can cross the boundary in either direction. The same
codec works over a local pipe and over TCP (``multiprocessing.connection`` with an authkey).

This module imports numpy and the standard library only: the window uses it without torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engines.shared.capabilities import Capabilities
from engines.shared.codec import (  # noqa: F401 - re-exported: the codec lived here first
    _ALLOWED_DTYPES, _REGISTRY, MAGIC, MAX_FRAME_BYTES, Command, Event, Message, decode, encode, message_types,
    wire_value,
)
from engines.shared.datainfo import DataInfo
from engines.shared.protocol_families import (  # noqa: F401 - re-exported
    MAX_DIRECTION_POOL, MAX_DIRECTIONS, MAX_MAP_POINTS, MAX_PIXEL_IMAGES, DirectionsFound, DrawPixels,
    FindDirections, FindNearest, LatentMapped, MapLatents, NearestFound, PixelFrame, PixelSurprise,
    PixelSurprised, Score, Scored,
)
from engines.shared.protocol_energy import (  # noqa: F401 - re-exported
    MAX_CHAIN_FRAMES, MAX_CHAINS, MAX_SWEEPS_PER_FRAME, ChainFrame, Codebook, EstimateLogZ, Filters, GetCodebook,
    GetFilters, HiddenInspected, InspectHidden, LogZEstimated, RunChains,
)
from engines.shared.protocol_exports import Cancel, Export, Exported  # noqa: F401 - re-exported
from engines.shared.protocol_trust import (  # noqa: F401 - re-exported
    ScrubTimeline, SetTimeline, SetWatchdog, TimelineChanged, TimelineFrame, WatchdogTripped,
)
from engines.shared.results import ClassCoverage, DisentanglementScores, MixtureCoverage
from engines.shared.spec import HyperParam, LatentSpec

for _cls in (Capabilities, ClassCoverage, DataInfo, DisentanglementScores, HyperParam, LatentSpec, MixtureCoverage):
    wire_value(_cls)


#: Largest number of images one Decode, Encode, Sample, GetExamples or Traverse may ask for.
MAX_REQUEST = 4096
#: Most columns (steps) of one traversal.
MAX_STEPS = 64
#: Most frames of one interpolation path.
MAX_FRAMES = 1024
#: A live measurement of one kind is due no sooner than this many times its own last wall time (so the
#: metrics thread takes at most about 1/10 of the machine; the window's clock shows the spacing).
METRIC_COST_FACTOR = 10.0


def _arr(default: Any = None) -> Any:
    return field(default=default, compare=False)


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Configure(Command):
    """Load a data set and build a fresh model; the worker answers :class:`Ready` or :class:`Error`.

    Attributes
    ----------
    data : str
        Data spec (``"shapes"``, ``"digits"``, ``"idx:PATH"``, ...).
    model : str
        Registry name (``"vae"``, ``"beta-vae"``, ...).
    image_size : int or None
        Side in pixels images are resized to; None for the data set's own size.
    latent_dim : int
        Width of z.
    seed : int
        Seed for weights, batches and the fixed z of the sample grid.
    batch_size : int
    options : dict
        Further config overrides of the model (``{"arch": "mlp", "beta": 4.0, "lr": 1e-3}``).
    """

    data: str = "shapes"
    model: str = "beta-vae"
    image_size: int | None = None
    latent_dim: int = 10
    seed: int = 0
    batch_size: int = 64
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Train(Command):
    """Start training the configured model; ``steps`` None trains until :class:`Stop`."""

    steps: int | None = None


@dataclass(frozen=True)
class Pause(Command):
    """Pause training after the current step."""


@dataclass(frozen=True)
class Resume(Command):
    """Resume paused training."""


@dataclass(frozen=True)
class Stop(Command):
    """Stop training; the model stays loaded and can still decode, encode and sample."""


@dataclass(frozen=True)
class SetHyperparameter(Command):
    """Change a live hyperparameter (``beta``, ``lr``, ...); answered by :class:`HyperparameterChanged`."""

    name: str = ""
    value: float = 0.0


@dataclass(frozen=True)
class Decode(Command):
    """Decode latents for a view. Only the newest pending Decode of each ``view`` is served.

    Attributes
    ----------
    request_id : int
        Echoed in :class:`Decoded`.
    view : str
        Which view asked ("explore", ...); older pending requests of the same view are dropped.
    z : ndarray
        (N, D) float32 latents.
    """

    request_id: int = 0
    view: str = "explore"
    z: np.ndarray | None = _arr()


@dataclass(frozen=True)
class Encode(Command):
    """Encode images (given, or data-set examples by index) to posterior means; answered by :class:`Encoded`.

    Attributes
    ----------
    images : ndarray or None
        (N, C, H, W) float32 in [0, 1], of the model's data shape.
    indices : list of int or None
        Indices into the data set's split ``split`` instead of images.
    split : {"train", "test"}
    project_steps : int
        Adam steps of the projection (:func:`engines.lib.projection.project`) used instead of an
        encoder for a model without one (GANs); that Encode runs on the worker's job thread, with
        Progress (task "project") and :class:`Cancel`.
    """

    request_id: int = 0
    view: str = "explore"
    images: np.ndarray | None = _arr()
    indices: list | None = None
    split: str = "test"
    project_steps: int = 200


@dataclass(frozen=True)
class Sample(Command):
    """Draw ``n`` samples with a seed; answered by :class:`Samples` with the same request id."""

    request_id: int = 0
    n: int = 64
    seed: int = 0


@dataclass(frozen=True)
class GetExamples(Command):
    """Ask for data-set examples by position in a split; answered by :class:`Examples`."""

    request_id: int = 0
    indices: list = field(default_factory=list)
    split: str = "test"


@dataclass(frozen=True)
class SaveCheckpoint(Command):
    """Save weights and manifest to ``path`` (a ``.safetensors`` file); answered by :class:`CheckpointSaved`."""

    path: str = ""


@dataclass(frozen=True)
class LoadCheckpoint(Command):
    """Load a checkpoint (file or run folder), its data set and model; answered by :class:`Ready`.

    Training continues exactly where the checkpoint stopped when it holds resume state (the data order
    and random generators; :mod:`engines.lib.resume`). With ``resume`` the run goes on in its own folder:
    autosaves overwrite its checkpoint and ``metrics.csv``, and after Ready the worker sends the curves
    it logged (one :class:`StepMetrics`) and its hyperparameter changes (:class:`HyperparameterChanged`).
    """

    path: str = ""
    resume: bool = False


@dataclass(frozen=True)
class Shutdown(Command):
    """Stop training, close the connection and exit the worker process."""


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Started(Event):
    """Sent once when the worker connects: its process id, device and the models it can build."""

    pid: int = 0
    device: str = "cpu"
    threads: int = 1
    torch_version: str = ""
    models: list = field(default_factory=list)


@dataclass(frozen=True)
class Ready(Event):
    """A model is configured (or loaded) and can train, decode and encode: what the window builds itself from.

    Attributes
    ----------
    model : str
        Registry name.
    family : str
        For display only: the window enables features from ``capabilities``, never from this.
    data : DataInfo
        The data set's description.
    latent : LatentSpec
        The model's z for its config.
    hyper : list of HyperParam
        Each live hyperparameter, with its value and range.
    capabilities : Capabilities
        What the model declares it can do (:mod:`engines.shared.capabilities`).
    config : dict
        The model's full config.
    checkpoint : str or None
        The file it was loaded from, if any.
    """

    device: str = "cpu"
    model: str = ""
    family: str = ""
    data: DataInfo | None = None
    data_summary: str = ""
    latent: LatentSpec = field(default_factory=lambda: LatentSpec(()))
    hyper: list = field(default_factory=list)
    capabilities: Capabilities = field(default_factory=Capabilities)
    config: dict = field(default_factory=dict)
    step: int = 0
    checkpoint: str | None = None


@dataclass(frozen=True)
class TrainingState(Event):
    """Training state changed: ``state`` is "training", "paused" or "idle"."""

    state: str = "idle"
    step: int = 0


@dataclass(frozen=True)
class StepMetrics(Event):
    """Loss terms of a run of consecutive steps (batched so the pipe carries few messages).

    Attributes
    ----------
    steps : ndarray
        (K,) int64 step numbers.
    names : list of str
        Names of the T loss terms.
    values : ndarray
        (K, T) float32 loss values; NaN where a step did not log a term.
    steps_per_sec, images_per_sec : float
        Training speed over the last second.
    latent_kl : ndarray or None
        (D,) float32 KL per latent dimension in nats (averaged over the batch), where the family has it.
    unit_effect : ndarray or None
        (D,) float32: how much each binary unit changes the decoded image, pixels summed (the mean over a few
        reference states of sum |p(v | h, h_j = 1) - p(v | h, h_j = 0)|); for models whose latent is binary
        units, in the messages where it was measured (every few seconds), else None.
    """

    steps: np.ndarray | None = _arr()
    names: list = field(default_factory=list)
    values: np.ndarray | None = _arr()
    steps_per_sec: float = 0.0
    images_per_sec: float = 0.0
    latent_kl: np.ndarray | None = _arr()
    unit_effect: np.ndarray | None = _arr()


@dataclass(frozen=True)
class Samples(Event):
    """Samples: from the fixed z of the sample grid (``request_id`` -1) or for a :class:`Sample`.

    ``images`` is (N, C, H, W) float32 in [0, 1], or (N, 2) points.
    """

    request_id: int = -1
    step: int = 0
    images: np.ndarray | None = _arr()


@dataclass(frozen=True)
class Decoded(Event):
    """Answer to :class:`Decode`: ``images`` (N, C, H, W) float32 in [0, 1] or (N, 2) points.

    ``timings`` are the worker's ``time.monotonic()`` seconds (one clock for every process on the
    machine) at which the Decode was "received" (read off the pipe), "started" (taken by the host
    thread), "locked" (the weight snapshot's lock held) and "decoded" (images on the CPU): where a slow
    answer lost its time (``benchmarks/slider_latency.py`` prints them by stage).
    """

    request_id: int = 0
    view: str = "explore"
    step: int = 0
    images: np.ndarray | None = _arr()
    timings: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Encoded(Event):
    """Answer to :class:`Encode`: ``z`` (N, D) float32 posterior means and the ``images`` encoded."""

    request_id: int = 0
    view: str = "explore"
    z: np.ndarray | None = _arr()
    images: np.ndarray | None = _arr()


@dataclass(frozen=True)
class Examples(Event):
    """Answer to :class:`GetExamples`: ``images`` (N, C, H, W) float32 and ``labels`` (N,) int64 or None."""

    request_id: int = 0
    indices: list = field(default_factory=list)
    images: np.ndarray | None = _arr()
    labels: np.ndarray | None = _arr()


@dataclass(frozen=True)
class HyperparameterChanged(Event):
    """A live hyperparameter took a new value at ``step``."""

    name: str = ""
    value: float = 0.0
    step: int = 0


@dataclass(frozen=True)
class CheckpointSaved(Event):
    """A checkpoint was written to ``path`` at ``step`` (``autosave`` True for the worker's own saves)."""

    path: str = ""
    step: int = 0
    autosave: bool = False


@dataclass(frozen=True)
class Progress(Event):
    """Progress of a long task: ``done`` of ``total`` units (total 0 when unknown).

    ``request_id`` names the command of a job (Export, a projecting Encode; 0 otherwise). A job
    that was cancelled ends with a Progress whose ``message`` is ``"cancelled"``.
    """

    task: str = ""
    done: int = 0
    total: int = 0
    message: str = ""
    request_id: int = 0


@dataclass(frozen=True)
class Error(Event):
    """A command failed: a message for the user, the traceback for a bug report, the command's type."""

    message: str = ""
    traceback: str = ""
    command: str = ""


@dataclass(frozen=True)
class Warned(Event):
    """A Python warning raised in the worker (a scikit-learn ConvergenceWarning, a torch UserWarning), for the
    window's Messages panel rather than the terminal: its ``category`` name, ``message`` and ``where`` (file:line)."""

    category: str = ""
    message: str = ""
    where: str = ""


@dataclass(frozen=True)
class Stopped(Event):
    """Training ended at ``step``: ``reason`` is "finished", "stopped" or "error"."""

    step: int = 0
    reason: str = "stopped"


@dataclass(frozen=True)
class Traverse(Command):
    """Ask for a latent traversal grid: each of the chosen dimensions swept from ``low`` to ``high``.

    Attributes
    ----------
    request_id : int
    z : ndarray or None
        (1, D) float32 base latent; None uses the prior mean (zeros, first class of each code).
    index : int or None
        Instead of ``z``, encode this held-out example and traverse around its posterior mean.
    dims : list of int or None
        Dimensions to traverse, one row each, in this order; None: every continuous dimension.
    steps : int
        Columns: values evenly spaced over [low, high].
    low, high : float
    """

    request_id: int = 0
    z: np.ndarray | None = _arr()
    index: int | None = None
    dims: list | None = None
    steps: int = 9
    low: float = -3.0
    high: float = 3.0


@dataclass(frozen=True)
class Traversed(Event):
    """Answer to :class:`Traverse`: ``images`` (R, S, C, H, W) float32 in [0, 1] (or (R, S, 2) points),
    rows in ``dims`` order, columns at ``values`` (S,); ``z`` the (1, D) base latent used."""

    request_id: int = 0
    step: int = 0
    dims: list = field(default_factory=list)
    values: np.ndarray | None = _arr()
    z: np.ndarray | None = _arr()
    images: np.ndarray | None = _arr()


@dataclass(frozen=True)
class Interpolate(Command):
    """Decode a path through latent keyframes (:func:`engines.lib.latent.interpolate_spec`); answered by :class:`Interpolated`.

    Attributes
    ----------
    keyframes : ndarray
        (K, D) float32 latents, K >= 2, in path order.
    frames : int
        Frames on the whole path, keyframes included (>= K).
    method : {"lerp", "slerp", "spline"}
    constant_speed : bool
        Re-parameterise the path by arc length.
    """

    request_id: int = 0
    keyframes: np.ndarray | None = _arr()
    frames: int = 16
    method: str = "slerp"
    constant_speed: bool = False


@dataclass(frozen=True)
class Interpolated(Event):
    """Answer to :class:`Interpolate`: ``z`` (F, D) float32 and ``images`` (F, C, H, W) in [0, 1] (or (F, 2))."""

    request_id: int = 0
    step: int = 0
    z: np.ndarray | None = _arr()
    images: np.ndarray | None = _arr()


@dataclass(frozen=True)
class SetMetricSchedule(Command):
    """How often (seconds of training, 0 = never) the worker measures coverage and disentanglement."""

    coverage_every: float = 10.0
    disentanglement_every: float = 30.0


@dataclass(frozen=True)
class CoverageMeasured(Event):
    """Mode coverage of the model's samples at ``step`` (:mod:`engines.metrics.coverage`).

    Attributes
    ----------
    metric : {"mixture", "classes", "clusters"}
        2-D mixture modes (PacGAN protocol), classes through the studio's classifier, or k-means clusters.
    result : MixtureCoverage or ClassCoverage or None
        The measurement (:mod:`engines.shared.results`).
    ms : float
        Wall time of sampling and metric, milliseconds.
    critic_units : str
        "probability" (a GAN's D(x)), "critic" (a raw critic value) or "log-density" (log p(x) in nats, a
        model with a likelihood) of ``critic``; "" without one.
    samples : ndarray or None
        (N, 2) float32 points that were measured (2-D data only), for the live view.
    critic : ndarray or None
        (G, G) float32 discriminator or critic output over the plane (2-D GANs only), row-major
        with y rising by row, over ``extent``.
    extent : list
        [xmin, xmax, ymin, ymax] of ``critic`` in data units.
    grid_lines : ndarray or None
        (L, P, 2) float32: a regular grid of z pushed to x by a flow's inverse (L lines of P points), for
        2-D data; None otherwise.
    quality : dict of str to float
        Sample quality of the same samples against real training examples
        (:meth:`engines.metrics.coverage.CoverageTracker.quality`): ``fd``, ``precision``, ``recall``,
        ``density``, ``coverage``, ``classifier_score`` (labelled images), ``n``, ``n_reference``; {} if none.
    """

    step: int = 0
    metric: str = ""
    result: MixtureCoverage | ClassCoverage | None = None
    ms: float = 0.0
    critic_units: str = ""
    samples: np.ndarray | None = _arr()
    critic: np.ndarray | None = _arr()
    extent: list = field(default_factory=list)
    grid_lines: np.ndarray | None = _arr()
    quality: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DisentanglementMeasured(Event):
    """Disentanglement of the mean representation at ``step`` (:mod:`engines.metrics.disentanglement`).

    Attributes
    ----------
    scores : DisentanglementScores
        MIG, SAP, DCI, FactorVAE and beta-VAE scores (None where the data does not support one).
    mi_matrix : ndarray or None
        (D, K) float32 mutual information in nats between latent d and factor k.
    factor_names : list of str
    seconds : float
        Wall time the measurement took.
    """

    step: int = 0
    scores: DisentanglementScores = field(default_factory=DisentanglementScores)
    mi_matrix: np.ndarray | None = _arr()
    factor_names: list = field(default_factory=list)
    seconds: float = 0.0
