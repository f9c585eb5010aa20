"""The worker's metrics thread: mode coverage and disentanglement measured live while a model trains.

DESIGN.md, "Metrics are first-class": beside the losses, the worker streams
:class:`~engines.shared.protocol.CoverageMeasured` and :class:`~engines.shared.protocol.DisentanglementMeasured`
on a schedule of *training* seconds (pauses do not count), set live by
:class:`~engines.shared.protocol.SetMetricSchedule`.

The thread never touches the live model. It keeps its own copy of the host's weight
:class:`~engines.worker.host.Snapshot` (a third engine of the same class), refreshed under the
snapshot's lock in about a millisecond; sampling, encoding and all the metric maths then run on
that copy without any lock, so neither the trainer (whose snapshot refresh never waits) nor the
host's interactive requests wait for a measurement. A kind of measurement is spaced by at least
:data:`COST_FACTOR` times its own last wall time, so it takes a bounded share of the machine; the
thread runs at the trainer's own OS priority, since at a lower one (nice +10, as it once did) two
busy cores starved it: Coverage stayed at step 197 while training reached 6,152.

Metrics (see their modules for the papers and exact protocols):

- coverage, :class:`engines.metrics.coverage.CoverageTracker` (VEEGAN / PacGAN protocol on 2-D
  mixtures, classes through a classifier on labelled images, k-means clusters otherwise), built
  lazily the first time it is needed for a session (a classifier may train: Progress task
  "coverage");
- disentanglement, :mod:`engines.metrics.disentanglement` and :mod:`engines.metrics.sampled`
  (Locatello et al., 2019, disentanglement_lib) with fast, non-protocol settings (:data:`N_POINTS`,
  the random-forest DCI, :data:`SAMPLED`): a live trend, not a number for a paper
  (``latent-studio metrics`` computes those).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from engines.shared import protocol as P
from engines.shared.errors import ConfigError, LatentStudioError
from engines.shared.results import DisentanglementScores
from engines.worker.host import Snapshot, error_event, to_numpy

#: Default seconds of training between two measurements (0 = never).
COVERAGE_EVERY = 10.0
DISENTANGLEMENT_EVERY = 30.0
#: A kind of measurement is due no sooner than this many times its own last wall time.
COST_FACTOR = P.METRIC_COST_FACTOR
#: A measurement due while the user drags a slider waits until no Decode has arrived for this long, s.
QUIET_AFTER_DECODE = 1.0
#: Points of a 2-D measurement sent back for the live scatter plot.
SAMPLES_SHOWN = 1000
#: Side of the critic heat map (2-D GANs), cells.
CRITIC_GRID = 64
#: Training points for MIG, SAP and DCI (plus half as many test points for SAP and DCI).
N_POINTS = 1000
#: Counts of the sampled scores (FactorVAE, beta-VAE): about 25,000 encodes in all (the protocol's
#: take ~2,000,000), so a whole measurement takes ~5 s for a 32x32 conv VAE on one CPU thread.
SAMPLED = {"batch_size": 16, "num_train": 300, "num_eval": 150, "num_variance_estimate": 1000}
#: Examples per ``encode`` call.
ENCODE_BATCH = 256
KINDS = ("coverage", "disentanglement")

Send = Callable[[P.Event], None]


# -- measurements (plain functions: usable, and tested, without the thread) -----------------------
def critic_extent(modes: Any, std: float = 0.0, margin: float = 0.25) -> list[float]:
    """[xmin, xmax, ymin, ymax] of the critic heat map: the modes' bounding box with a margin.

    Parameters
    ----------
    modes : (M, 2) float array
        Mode centres in data units (``DataInfo.modes``).
    std : float
        Components' standard deviation; the box grows by 4 of them on each side ...
    margin : float
        ... plus this share of the larger side of the modes' box.

    Returns
    -------
    list of 4 float, a square region centred on the modes (so that circles look round).

    Raises
    ------
    ConfigError
        ``modes`` is not a non-empty (M, 2) array of finite numbers.
    """
    m = np.asarray(modes, np.float64)
    if m.ndim != 2 or m.shape[1] != 2 or len(m) == 0 or not np.isfinite(m).all():
        raise ConfigError(f"the critic map needs (M, 2) finite mode centres, got shape {m.shape}")
    lo, hi = m.min(axis=0), m.max(axis=0)
    centre = (lo + hi) / 2
    half = float((hi - lo).max()) / 2
    half += 4.0 * float(std) + margin * max(2 * half, 1e-3)
    return [float(centre[0] - half), float(centre[0] + half), float(centre[1] - half), float(centre[1] + half)]


def critic_map(model: Any, extent: list[float], size: int = CRITIC_GRID) -> tuple[np.ndarray, str]:
    """The critic (discriminator) over a square grid of the plane, for a GAN on 2-D points.

    Cell (i, j) holds the score of the point at the centre of the cell: x rises with j, y with i
    (row-major, row 0 at ``ymin``). With PacGAN packing (m > 1) each point is scored as a pack of
    m copies of itself.

    Parameters
    ----------
    model : GAN-family engine
        Must have ``critic_score(x) -> (N // m,)`` (:meth:`engines.models.gan.gan.GAN.critic_score`).
    extent : [xmin, xmax, ymin, ymax]
        Data units.
    size : int
        G, cells per side.

    Returns
    -------
    critic : (G, G) float32
        ``loss="gan"``: D(x) = sigmoid(logit) in [0, 1], the discriminator's probability that x is
        real; any other loss (wgan, wgan-gp, hinge): the raw critic value f(x), unbounded.
    units : {"probability", "critic"}
        Which of the two.
    """
    xmin, xmax, ymin, ymax = (float(v) for v in extent)
    xs = xmin + (np.arange(size) + 0.5) * (xmax - xmin) / size
    ys = ymin + (np.arange(size) + 0.5) * (ymax - ymin) / size
    gx, gy = np.meshgrid(xs, ys)  # (G, G): row i is y = ys[i]
    pts = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32))
    m = int(model.pack_size()) if model.capabilities.has("pack") else 1
    if m > 1:
        pts = pts.repeat_interleave(m, dim=0)
    with torch.inference_mode():
        scores = model.critic_score(pts.to(model.device)).float()
        probability = getattr(model.config, "loss", "") == "gan"
        if probability:
            scores = torch.sigmoid(scores)
    out = to_numpy(scores).reshape(size, size)
    return np.ascontiguousarray(out, dtype=np.float32), "probability" if probability else "critic"


def density_map(model: Any, extent: list[float], size: int = CRITIC_GRID) -> np.ndarray:
    """The model's log-density log p(x) over a square grid of the plane, for a model with a likelihood on 2-D points.

    The same grid as :func:`critic_map` (cell centres, row i at y rising). Returns (G, G) float32 in nats
    (the exact log-density, or the declared bound for a VAE); -inf or NaN cells are left for the view to clip.
    """
    xmin, xmax, ymin, ymax = (float(v) for v in extent)
    xs = xmin + (np.arange(size) + 0.5) * (xmax - xmin) / size
    ys = ymin + (np.arange(size) + 0.5) * (ymax - ymin) / size
    gx, gy = np.meshgrid(xs, ys)
    pts = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)).to(model.device)
    with torch.inference_mode():
        if "exact" in model.capabilities.likelihood:
            lp = model.log_prob(pts)
        else:  # a bound that draws: its own generator, so the map changes only with the weights
            lp = model.log_prob(pts, generator=torch.Generator(device=model.device).manual_seed(0))
    return np.ascontiguousarray(to_numpy(lp.float()).reshape(size, size), dtype=np.float32)


#: Lines per axis and points per line of the warped z-grid drawn over a flow's 2-D density.
WARP_LINES, WARP_POINTS = 11, 48


def warped_grid(model: Any, half: float = 2.5, lines: int = WARP_LINES, points: int = WARP_POINTS) -> np.ndarray:
    """A regular grid of z in [-half, half]^2 pushed through the inverse flow to x (GAN Lab's "manifold" view).

    For a model with an exact inverse on 2-D points. Returns (2 * lines, points, 2) float32 in data units:
    ``lines`` curves of constant z1 (z0 varying), then ``lines`` of constant z0.
    """
    ticks = np.linspace(-half, half, lines)
    along = np.linspace(-half, half, points)
    rows = [np.stack([along, np.full(points, t)], 1) for t in ticks]
    cols = [np.stack([np.full(points, t), along], 1) for t in ticks]
    z = torch.from_numpy(np.concatenate(rows + cols).astype(np.float32)).to(model.device)
    with torch.inference_mode():
        x = model.decode(z)
    return np.ascontiguousarray(to_numpy(x.float()).reshape(2 * lines, points, 2), dtype=np.float32)


def has_density_map(model: Any, dataset: Any) -> bool:
    """Whether a density heat map applies: a model that declares a likelihood, on 2-D points with known modes."""
    info = dataset.info
    return model.capabilities.has_likelihood and info.kind == "points" and bool(info.modes)


def has_critic_map(model: Any, dataset: Any) -> bool:
    """Whether a heat map applies: an unconditional engine declaring ``critic_map``, on 2-D points with known modes."""
    info, caps = dataset.info, model.capabilities
    return caps.has("critic_map") and not caps.conditional and info.kind == "points" and bool(info.modes)


def measure_coverage(tracker: Any, model: Any, dataset: Any, step: int, seed: int = 0,
                     n: int | None = None) -> P.CoverageMeasured:
    """Sample ``model`` and measure its coverage with ``tracker``.

    Parameters
    ----------
    tracker : CoverageTracker
    model : Engine
        Sampled in eval mode without gradients; it must not be training meanwhile (a private copy).
    dataset : Dataset
    step : int
        Training step of the model's weights.
    seed : int
        Seeds the samples' generator, so that measurements differ only by the weights.
    n : int or None
        Samples (None: ``tracker.default_n``).

    Returns
    -------
    CoverageMeasured
        ``result``: the tracker's; ``ms``: sampling and metric, milliseconds; with a critic map,
        ``critic_units`` ("probability" or "critic", see :func:`critic_map`); ``samples``: the first
        :data:`SAMPLES_SHOWN` points (N, 2) float32 for 2-D data; ``critic`` / ``extent``: see
        :func:`critic_map` (2-D unconditional GANs), or the log-density of :func:`density_map` (units
        "log-density", any model with a likelihood on 2-D points); ``grid_lines``: :func:`warped_grid`
        for a model with an exact inverse (flows) on 2-D points; ``quality``: :meth:`CoverageTracker.quality`
        of the same samples.
    """
    n = tracker.default_n if n is None else int(n)
    t0 = time.perf_counter()
    gen = torch.Generator(device=model.device).manual_seed(int(seed))
    with torch.inference_mode():
        x = to_numpy(model.sample(n, generator=gen))
    result = tracker.evaluate(x)
    quality = tracker.quality(x)
    ms = (time.perf_counter() - t0) * 1000.0
    samples = critic = grid = None
    units, extent = "", []
    if dataset.info.kind == "points" and x.ndim == 2 and x.shape[1] == 2:
        samples = np.ascontiguousarray(x[:SAMPLES_SHOWN], dtype=np.float32)
        if has_critic_map(model, dataset):
            extent = critic_extent(dataset.info.modes, dataset.info.mode_std or 0.0)
            critic, units = critic_map(model, extent)
        elif has_density_map(model, dataset):
            extent = critic_extent(dataset.info.modes, dataset.info.mode_std or 0.0)
            critic, units = density_map(model, extent), "log-density"
            if model.capabilities.encoder == "exact":
                grid = warped_grid(model)
    return P.CoverageMeasured(step=int(step), metric=tracker.metric, result=result, ms=ms, critic_units=units,
                              samples=samples, critic=critic, extent=extent, grid_lines=grid, quality=quality)


def representation(model: Any, batch_size: int = ENCODE_BATCH) -> Callable[[np.ndarray], np.ndarray]:
    """A numpy (B, C, H, W) -> (B, D) float64 function: the posterior mean ``model.encode``, in batches.

    Raises (when called)
    --------------------
    LatentStudioError
        The model has no encoder, or its codes are not finite.
    """

    def represent(x: np.ndarray) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for i in range(0, len(x), batch_size):
                xb = torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size], dtype=np.float32))
                z = model.encode(xb.to(model.device))
                out.append(z.double().cpu().numpy().reshape(len(xb), -1))
        z = np.concatenate(out) if out else np.zeros((0, model.latent.dim))
        if not np.isfinite(z).all():
            raise LatentStudioError(f"{model.name}: the encoder returned NaN or infinite codes")
        return z

    return represent


def supports_disentanglement(model: Any, dataset: Any) -> bool:
    """Whether disentanglement can be measured: known factors, and a declared encoder."""
    if dataset is None or not dataset.info.factor_names or dataset.info.kind != "image":
        return False
    if dataset.factor_values(np.zeros(1, np.int64)) is None:
        return False
    return model.capabilities.has_encoder


def _finite(v: Any) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def measure_disentanglement(model: Any, dataset: Any, step: int, seed: int = 0, n_points: int = N_POINTS,
                            sampled: dict | None = None) -> P.DisentanglementMeasured:
    """Disentanglement of ``model``'s posterior mean against the data's ground-truth factors.

    ``n_points`` training and ``n_points // 2`` test examples are drawn uniformly (with
    replacement) by ``seed``, as :func:`engines.metrics.evaluate.evaluate_run` does with fewer
    points: MIG (Chen et al., 2018) on the training points; SAP (Kumar et al., 2018) and DCI
    (Eastwood and Williams, 2018, random-forest estimator) on both; the FactorVAE (Kim and Mnih,
    2018) and beta-VAE (Higgins et al., 2017) scores with the counts of ``sampled``, only where
    the data set has ``index_of``. MIG and SAP need two or more latents.

    Parameters
    ----------
    model : Engine with an encoder
        Must not be training meanwhile (a private copy).
    dataset : Dataset with ``factor_values``
    step, seed : int
    n_points : int
        >= 20.
    sampled : dict or None
        ``batch_size``, ``num_train``, ``num_eval``, ``num_variance_estimate`` (None: :data:`SAMPLED`).

    Returns
    -------
    DisentanglementMeasured
        ``scores``: the :class:`~engines.shared.results.DisentanglementScores` computed (None
        where not, or not finite); ``mi_matrix``: (D, K) float32 nats; ``seconds``: wall time.

    Raises
    ------
    LatentStudioError
        No encoder, non-finite codes, or no ground-truth factors.
    ValueError
        From the metrics, e.g. no factor varies in the sample.
    """
    from engines.metrics import disentanglement as dis

    t0 = time.perf_counter()
    settings = dict(SAMPLED if sampled is None else sampled)
    info = dataset.info
    if not info.factor_names:
        raise LatentStudioError(f"{info.spec}: the data has no ground-truth factors")
    if n_points < 20:
        raise ConfigError(f"n_points must be at least 20, got {n_points}")
    represent = representation(model)
    rng = np.random.default_rng(seed)
    n_test = n_points // 2
    idx = rng.integers(0, len(dataset), size=n_points + n_test)
    z = np.concatenate([represent(dataset.get(idx[i : i + ENCODE_BATCH])) for i in range(0, len(idx), ENCODE_BATCH)])
    f = dataset.factor_values(idx)
    if f is None:
        raise LatentStudioError(f"{info.spec}: the data has no ground-truth factor values")
    zt, ft, ze, fe = z[:n_points], f[:n_points], z[n_points:], f[n_points:]
    values: dict[str, Any] = {}
    if z.shape[1] >= 2:
        d = dis.mig_details(zt, ft)
        values["mig"], mi = d.mig, d.mi
        values["sap"] = dis.sap(zt, ft, ze, fe)
    else:
        mi = dis.mutual_info_matrix(zt, ft)
    r = dis.dci(zt, ft, ze, fe, estimator="forest", random_state=seed)
    values.update(dci_disentanglement=r.disentanglement, dci_completeness=r.completeness,
                  dci_informativeness=r.informativeness_test)
    if callable(getattr(dataset, "index_of", None)):
        values["factor_vae_score"] = dis.factor_vae_score(represent, dataset, np.random.default_rng([seed, 1]), **settings)
        values["beta_vae_score"] = dis.beta_vae_score(
            represent, dataset, np.random.default_rng([seed, 2]), batch_size=settings["batch_size"],
            num_train=settings["num_train"], num_eval=settings["num_eval"],
        )
    return P.DisentanglementMeasured(
        step=int(step), scores=DisentanglementScores(**{k: _finite(v) for k, v in values.items()}),
        mi_matrix=np.ascontiguousarray(mi, dtype=np.float32), factor_names=list(info.factor_names),
        seconds=time.perf_counter() - t0,
    )


def check_schedule(coverage_every: Any, disentanglement_every: Any) -> tuple[float, float]:
    """The two intervals as floats, seconds of training (0 = never).

    Raises
    ------
    ConfigError
        An interval that is not a finite number >= 0.
    """
    out = []
    for name, v in (("coverage_every", coverage_every), ("disentanglement_every", disentanglement_every)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ConfigError(f"SetMetricSchedule.{name} must be a number of seconds >= 0 (0 = never), not {v!r}")
        out.append(float(v))
    return out[0], out[1]


# -- the thread -------------------------------------------------------------------------------
@dataclass
class _State:
    """What the thread keeps for one session (a new Configure / LoadCheckpoint starts afresh)."""

    session: Any
    copy: Snapshot | None = None
    tracker: Any = None
    off: set = field(default_factory=set)  # kinds that cannot apply to this session
    cost: dict = field(default_factory=lambda: dict.fromkeys(KINDS, 0.0))
    last_step: dict = field(default_factory=lambda: dict.fromkeys(KINDS, -1))
    failed: dict = field(default_factory=dict)  # kind -> message of the last failure reported

    def weights(self) -> tuple[Any, int]:
        """Refresh the private copy from the host's snapshot (under its lock, ~1 ms); (model, step)."""
        snap = self.session.snapshot
        with snap.lock:
            if snap.ready_event is not None:  # CUDA: the trainer's last copy must have landed
                torch.cuda.current_stream(snap.model.device).wait_event(snap.ready_event)
            if self.copy is None:
                self.copy = Snapshot(snap.model, snap.step)
            else:
                self.copy.refresh(snap.model, snap.step)
        return self.copy.model, self.copy.step


class LiveMetrics:
    """The metrics thread of the worker (module docstring).

    Parameters
    ----------
    send : callable
        Sends one event (thread-safe).
    coverage_every, disentanglement_every : float
        Seconds of training between measurements, 0 = never (:class:`~engines.shared.protocol.SetMetricSchedule`).

    Notes
    -----
    Events sent: CoverageMeasured, DisentanglementMeasured, Progress (task "coverage", done of
    100, while a coverage classifier trains) and Error (command "metrics"; a failure that repeats
    with the same message is reported once). Coverage is measured every ``coverage_every`` s of
    training and once more when training stops; disentanglement likewise, where the data has
    ground-truth factors and the model an encoder. A measurement that finishes after a new
    session was attached is dropped.
    """

    def __init__(self, send: Send, coverage_every: float = COVERAGE_EVERY,
                 disentanglement_every: float = DISENTANGLEMENT_EVERY) -> None:
        self._send = send
        self._cv = threading.Condition()
        self._every = dict(zip(KINDS, check_schedule(coverage_every, disentanglement_every)))
        self._state: _State | None = None
        self._since: float | None = None  # monotonic time training (re)started; None while not training
        self._clock = 0.0  # training seconds before _since
        self._last = dict.fromkeys(KINDS, 0.0)  # training clock at the last measurement of each kind
        self._final: set[str] = set()
        self._closed = False
        self._quiet_from = 0.0  # monotonic time before which no measurement starts (a slider is moving)
        self._thread = threading.Thread(target=self._run, name="metrics", daemon=True)
        self._thread.start()

    # -- called from other threads -------------------------------------------------------------
    def attach(self, session: Any) -> None:
        """Measure ``session`` from now on (None: nothing); the coverage tracker is rebuilt for it."""
        with self._cv:
            self._state = None if session is None else _State(session)
            self._final.clear()
            now = self._training_clock()
            self._last = dict.fromkeys(KINDS, now)
            self._cv.notify()

    def set_schedule(self, coverage_every: float, disentanglement_every: float) -> None:
        """New intervals, seconds of training (0 = never); ConfigError for a bad value.

        A kind whose last measurement is already more than its new interval ago (e.g. one that was
        off while training ran) is measured at once.
        """
        cov, dis = check_schedule(coverage_every, disentanglement_every)
        with self._cv:
            self._every = {"coverage": cov, "disentanglement": dis}
            self._cv.notify()

    @property
    def schedule(self) -> dict[str, float]:
        """The current intervals by kind, s."""
        return dict(self._every)

    def set_training(self, active: bool, final: bool = False) -> None:
        """The trainer's state: the schedule's clock runs only while ``active``.

        ``final`` (with ``active`` False): the session just stopped after taking steps and its
        snapshot holds the last weights: measure every scheduled kind once more.
        """
        with self._cv:
            now = time.monotonic()
            if active and self._since is None:
                self._since = now
            elif not active and self._since is not None:
                self._clock += now - self._since
                self._since = None
            if final and not active:
                self._final = {k for k in KINDS if self._every[k] > 0}
            self._cv.notify()

    def interactive(self) -> None:
        """An interactive request (a slider's Decode) arrived: start no measurement for
        :data:`QUIET_AFTER_DECODE` s, so a drag's decodes do not share the CPU with one. A
        measurement already running finishes."""
        with self._cv:
            self._quiet_from = time.monotonic() + QUIET_AFTER_DECODE

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread after the measurement in progress (waits up to ``timeout`` s)."""
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join(timeout)

    # -- the thread ----------------------------------------------------------------------------
    def _training_clock(self) -> float:
        return self._clock + (0.0 if self._since is None else time.monotonic() - self._since)

    def _due(self) -> tuple[str | None, float | None]:
        """(kind to measure now, None) or (None, seconds to wait; None = until notified). Under the lock."""
        st = self._state
        if st is None:
            return None, None
        clock, wait = self._training_clock(), None
        for kind in KINDS:
            every = self._every[kind]
            if every <= 0 or kind in st.off:
                self._final.discard(kind)
                continue
            if kind in self._final:
                return kind, None
            if self._since is None:
                continue
            left = self._last[kind] + max(every, COST_FACTOR * st.cost[kind]) - clock
            if left <= 0:
                return kind, None
            wait = left if wait is None else min(wait, left)
        return None, wait

    def _run(self) -> None:
        while True:
            with self._cv:
                while True:
                    if self._closed:
                        return
                    kind, wait = self._due()
                    hold = self._quiet_from - time.monotonic()
                    if kind is not None and hold > 0:
                        kind, wait = None, hold
                    if kind is not None:
                        break
                    self._cv.wait(wait)
                st = self._state
                assert st is not None
                final = kind in self._final
                self._final.discard(kind)
                self._last[kind] = self._training_clock()
            t0 = time.perf_counter()
            event: P.Event | None = None
            try:
                event = self._measure(st, kind, final)
                st.failed.pop(kind, None)
            except Exception as exc:  # noqa: BLE001 - a failed measurement must not stop the worker
                err = error_event(exc, "metrics")
                if st.failed.get(kind) != err.message:
                    st.failed[kind] = err.message
                    event = err
            st.cost[kind] = time.perf_counter() - t0
            with self._cv:
                current = self._state is st and not self._closed
            if current and event is not None:
                self._send(event)

    def _measure(self, st: _State, kind: str, final: bool) -> P.Event | None:
        session = st.session
        dataset = session.dataset
        if dataset is None:
            st.off.add(kind)
            return None
        model, step = st.weights()
        if final and st.last_step[kind] == step:
            return None  # already measured on these weights
        if kind == "coverage":
            if st.tracker is None:
                st.tracker = self._tracker(st, model)
            event: P.Event = measure_coverage(st.tracker, model, dataset, step, session.seed)
        else:
            if not supports_disentanglement(model, dataset):
                st.off.add(kind)
                return None
            event = measure_disentanglement(model, dataset, step, session.seed)
        st.last_step[kind] = step
        return event

    def _tracker(self, st: _State, model: Any) -> Any:
        """Build the session's CoverageTracker (may train a classifier: Progress events)."""
        from engines.metrics.coverage import CoverageTracker

        def progress(message: str, fraction: float) -> None:
            if self._state is st:
                self._send(P.Progress(task="coverage", done=int(round(100 * fraction)), total=100, message=message))

        try:
            tracker = CoverageTracker(st.session.dataset, model.device, st.session.seed, progress=progress)
        except Exception:
            st.off.add("coverage")  # reported once; not retried for this session
            raise
        if tracker.metric == "classes":
            progress("coverage classifier ready", 1.0)
        return tracker
