"""Headless disentanglement evaluation of a saved run: ``latent-studio metrics --run DIR``.

:func:`evaluate_run` loads a checkpoint, reloads its data set, encodes examples with the engine's
posterior mean and scores the codes against the data's ground-truth factors with
:mod:`engines.metrics.disentanglement` (disentanglement_lib's protocols, Locatello et al., 2019).
:func:`add_metrics_command` registers the ``metrics`` sub-command. Building the parser is cheap;
torch is imported only when the command runs.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engines.shared.errors import LatentStudioError

__all__ = ["METRICS", "evaluate_run", "format_table"]

#: Metric names, in the order they are computed and shown.
METRICS = ("mig", "sap", "dci", "factor_vae_score", "beta_vae_score")
_SAMPLED = ("factor_vae_score", "beta_vae_score")
#: Sample counts and DCI estimator: disentanglement_lib's protocol, and a quick look (``--fast``).
PROTOCOL = {"num_train": 10000, "num_eval": 5000, "num_variance_estimate": 10000, "dci_estimator": "gbt"}
FAST = {"num_train": 1000, "num_eval": 500, "num_variance_estimate": 2000, "dci_estimator": "forest"}
FAST_POINTS = 2000
#: Prior costs for the time-left estimate, replaced by measured rates as the stages run (two CPU cores).
_PRIOR_IMAGES_PER_S = 8000.0
_PRIOR_FIT_S = {"gbt": 2.3e-5, "forest": 3.5e-5}  # s per (point x class x latent) and per (point x latent)


class _Schedule:
    """Time-proportional progress over the stages of :func:`evaluate_run`, with its time left.

    Each stage has a size in units (examples encoded, or classifier work) and a rate in units per
    second: a prior until the stage type has been measured. The fraction reported is
    ``elapsed / (elapsed + remaining)``, never decreasing, so a progress bar's linear estimate of the
    time left is this schedule's.
    """

    def __init__(self, report: Callable[[str, float], None], t0: float) -> None:
        self.report = report
        self.t0 = t0
        self.units: dict[str, tuple[str, float]] = {}  # stage -> (kind, units)
        self.rates: dict[str, float] = {}  # kind -> units per second
        self.order: list[str] = []
        self.done: set[str] = set()
        self.last = 0.0
        self.stage_t0 = self.t0

    def plan(self, stage: str, kind: str, units: float, prior_rate: float) -> None:
        self.units[stage] = (kind, max(float(units), 1e-9))
        self.rates.setdefault(kind, prior_rate)
        self.order.append(stage)

    def begin(self, stage: str) -> None:
        self.stage_t0 = time.perf_counter()
        self.tell(stage, 0.0)

    def tell(self, stage: str, within: float, detail: str = "") -> None:
        """Report ``within`` in [0, 1] of ``stage`` done; learn its kind's rate once it has run 0.2 s."""
        now = time.perf_counter()
        kind, units = self.units[stage]
        spent = now - self.stage_t0
        if within > 0 and spent > 0.2:
            self.rates[kind] = units * within / spent
        if within >= 1.0:
            self.done.add(stage)
        left = spent * (1 - within) / within if within > 0 and spent > 0.2 else units * (1 - within) / self.rates[kind]
        for other in self.order:
            if other != stage and other not in self.done and self.order.index(other) > self.order.index(stage):
                k, u = self.units[other]
                left += u / self.rates[k]
        elapsed = now - self.t0
        self.last = max(self.last, min(0.999, elapsed / max(elapsed + left, 1e-9)))
        self.report(f"{stage}: {detail}" if detail else stage, self.last)


def _representation(engine: Any, batch_size: int) -> Callable[[np.ndarray], np.ndarray]:
    """A numpy (B, C, H, W) -> (B, D) function: the engine's posterior mean, in eval mode, in batches."""
    import torch

    def represent(x: np.ndarray) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                xb = torch.as_tensor(np.ascontiguousarray(x[i : i + batch_size]), dtype=torch.float32)
                z = engine.encode(xb.to(engine.device))
                out.append(z.double().cpu().numpy().reshape(len(xb), -1))
        return np.concatenate(out) if out else np.zeros((0, engine.latent.dim))

    return represent


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def evaluate_run(
    run: str | Path,
    n_points: int = 10000,
    seed: int = 0,
    metrics: Sequence[str] | None = None,
    progress: Callable[[str, float], None] | None = None,
    *,
    fast: bool = False,
    device: str | None = None,
    batch_size: int = 256,
    num_train: int | None = None,
    num_eval: int | None = None,
    num_variance_estimate: int | None = None,
    dci_estimator: str | None = None,
) -> dict[str, Any]:
    """Score a saved run's encoder against its data's ground-truth factors.

    MIG, SAP and DCI use ``n_points`` training examples and ``n_points // 2`` test examples drawn
    uniformly (with replacement, by ``seed``) from the whole data set, as disentanglement_lib draws
    10,000 and 5,000 (MIG uses the training points only). The FactorVAE and beta-VAE scores draw
    their own examples by factor values and are computed only where the data set has ``index_of``
    (the built-in ``shapes``). Codes are ``engine.encode(x)``, the posterior mean, under
    ``torch.no_grad`` in eval mode.

    Parameters
    ----------
    run : path
        Run folder or ``.safetensors`` checkpoint; its manifest's ``data_spec`` and ``image_size``
        reload the data.
    n_points : int
        Training points for MIG, SAP and DCI (>= 20).
    seed : int
        Seed of every draw.
    metrics : sequence of str or None
        Names from :data:`METRICS`; None computes every metric the data supports.
    progress : callable or None
        Called as ``progress(stage, fraction)`` with fraction in [0, 1] as the work goes on.
    fast : bool
        Use :data:`FAST` sample counts and the random-forest DCI instead of :data:`PROTOCOL`'s.
    device : str or None
        Torch device; None picks cuda, then mps, then cpu.
    batch_size : int
        Examples per ``encode`` call.
    num_train, num_eval, num_variance_estimate : int or None
        Override the sampled metrics' counts (see :func:`engines.metrics.sampled.factor_vae_score`).
    dci_estimator : {"gbt", "forest"} or None
        Override the DCI estimator.

    Returns
    -------
    dict, JSON-able
        ``mig``, ``sap``, ``factor_vae_score``, ``beta_vae_score`` (floats in [0, 1]), ``dci`` (dict
        of four floats and the (D, K) ``importance``), ``mi_matrix`` ((D, K) nats), ``mig_gaps``
        (K,), ``sap_matrix`` (D, K), ``factor_names``, ``factor_sizes``, ``latent_dim``,
        ``n_points``, ``n_test``, ``seed``, ``settings``, ``skipped`` (metric -> reason),
        ``metric_seconds`` and ``seconds`` (wall time, s). Metrics not computed are absent.

    Raises
    ------
    CheckpointError
        The checkpoint cannot be loaded.
    DataError
        The run's data set cannot be reloaded.
    LatentStudioError
        The model has no encoder, the data has no ground-truth factors, an unknown metric name,
        n_points below 20, or the encoder returns non-finite codes.
    """
    from engines.lib.checkpoint import load_checkpoint
    from engines.data import load_dataset
    from engines.metrics import disentanglement as dis
    from engines.lib.training import pick_device

    t0 = time.perf_counter()
    report = progress or (lambda stage, fraction: None)
    wanted = list(METRICS if metrics is None else metrics)
    unknown = [m for m in wanted if m not in METRICS]
    if unknown:
        raise LatentStudioError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    if n_points < 20:
        raise LatentStudioError(f"n_points must be at least 20, got {n_points}")
    settings = dict(FAST if fast else PROTOCOL)
    for key, value in (("num_train", num_train), ("num_eval", num_eval),
                       ("num_variance_estimate", num_variance_estimate), ("dci_estimator", dci_estimator)):
        if value is not None:
            settings[key] = value

    report("loading", 0.0)
    engine, manifest = load_checkpoint(run, device=str(pick_device(device)), with_optimizer=False)
    engine.eval()
    spec = manifest.get("data_spec")
    if not isinstance(spec, str):
        raise LatentStudioError(f"{run}: the checkpoint's manifest names no data spec, so its data cannot be reloaded")
    dataset = load_dataset(spec, manifest.get("image_size"))
    info = dataset.info
    if not info.factor_names or dataset.factor_values(np.zeros(1, np.int64)) is None:
        raise LatentStudioError(
            f"{run}: data {spec!r} has no ground-truth factors of variation, so disentanglement cannot be "
            "measured; train on data with known factors, such as 'shapes'"
        )
    represent = _representation(engine, batch_size)
    if not engine.capabilities.has_encoder:
        raise LatentStudioError(f"{run}: model {engine.name!r} declares no encoder, so its codes cannot be measured")

    rng = np.random.default_rng(seed)
    n_test = max(1, n_points // 2)
    idx = rng.integers(0, len(dataset), size=n_points + n_test)
    skipped: dict[str, str] = {}
    for name in wanted:
        if name in ("mig", "sap") and engine.latent.dim < 2:
            skipped[name] = "needs at least two latent dimensions"
        elif name in _SAMPLED and not callable(getattr(dataset, "index_of", None)):
            skipped[name] = f"data {spec!r} cannot look up examples by factor values"
    todo = [m for m in wanted if m not in skipped]
    schedule = _plan(report, todo, len(idx), n_points, engine.latent.dim, info.factor_sizes or (), settings, t0)
    schedule.begin("encoding")
    codes = []
    for i in range(0, len(idx), batch_size):
        codes.append(represent(dataset.get(idx[i : i + batch_size])))
        done = min(len(idx), i + batch_size)
        schedule.tell("encoding", done / len(idx), f"{done} of {len(idx)} examples")
    z = np.concatenate(codes)
    if not np.all(np.isfinite(z)):
        raise LatentStudioError(f"{run}: the encoder returned NaN or infinite codes")
    f = dataset.factor_values(idx)
    z_train, f_train, z_test, f_test = z[:n_points], f[:n_points], z[n_points:], f[n_points:]

    out: dict[str, Any] = {
        "run": str(run), "engine": engine.name, "step": manifest.get("step"), "data_spec": spec,
        "factor_names": list(info.factor_names), "factor_sizes": list(info.factor_sizes or ()),
        "latent_dim": int(z.shape[1]), "n_points": int(n_points), "n_test": int(n_test), "seed": int(seed),
        "settings": settings, "skipped": skipped, "metric_seconds": {},
    }
    for name in todo:
        schedule.begin(name)
        t1 = time.perf_counter()

        def within(fraction: float, name: str = name) -> None:
            schedule.tell(name, fraction, f"{100 * fraction:.0f}%")

        if name == "mig":
            d = dis.mig_details(z_train, f_train)
            out.update(mig=d.mig, mig_gaps=d.gaps, mi_matrix=d.mi, factor_entropy=d.entropy)
        elif name == "sap":
            out["sap_matrix"] = dis.sap_score_matrix(z_train, f_train, z_test, f_test)
            out["sap"] = dis.sap(z_train, f_train, z_test, f_test)
        elif name == "dci":
            sizes = np.maximum(np.asarray(info.factor_sizes or [2] * f.shape[1], float), 2.0)
            weights = np.cumsum(sizes if settings["dci_estimator"] == "gbt" else np.ones_like(sizes))

            def fitted(k: int, total: int) -> None:
                schedule.tell("dci", float(weights[k - 1] / weights[-1]), f"factor {k} of {total} fitted")

            out["dci"] = dataclasses.asdict(dis.dci(z_train, f_train, z_test, f_test, estimator=settings["dci_estimator"],
                                                    random_state=seed, progress=fitted))
        elif name == "factor_vae_score":
            out[name] = dis.factor_vae_score(
                represent, dataset, np.random.default_rng([seed, 1]), num_train=settings["num_train"],
                num_eval=settings["num_eval"], num_variance_estimate=settings["num_variance_estimate"],
                progress=within,
            )
        else:
            out[name] = dis.beta_vae_score(
                represent, dataset, np.random.default_rng([seed, 2]), num_train=settings["num_train"],
                num_eval=settings["num_eval"], progress=within,
            )
        schedule.tell(name, 1.0)
        out["metric_seconds"][name] = time.perf_counter() - t1
    out["seconds"] = time.perf_counter() - t0
    report("done", 1.0)
    return _jsonable(out)


def _plan(
    report: Callable[[str, float], None], todo: Sequence[str], n_encode: int, n_points: int, dim: int,
    factor_sizes: Sequence[int], settings: dict[str, Any], t0: float,
) -> _Schedule:
    """The :class:`_Schedule` of one evaluation begun at ``t0`` (perf_counter s): every stage's size, with prior rates."""
    schedule = _Schedule(report, t0)
    schedule.plan("encoding", "images", n_encode, _PRIOR_IMAGES_PER_S)
    k = max(1, len(factor_sizes))
    for name in todo:
        if name in ("mig", "sap"):
            schedule.plan(name, name, n_points * dim * k, 1e6 if name == "mig" else 2.5e5)
        elif name == "dci":
            est = settings["dci_estimator"]
            classes = sum(max(2, s) for s in factor_sizes) if est == "gbt" else k
            schedule.plan(name, f"dci-{est}", n_points * classes * dim, 1.0 / _PRIOR_FIT_S.get(est, 3.5e-5))
        elif name == "factor_vae_score":
            units = settings["num_variance_estimate"] + (settings["num_train"] + settings["num_eval"]) * 64
            schedule.plan(name, "images", units, _PRIOR_IMAGES_PER_S)
        else:
            schedule.plan(name, "images", 2 * (settings["num_train"] + settings["num_eval"]) * 64, _PRIOR_IMAGES_PER_S)
    return schedule


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of an :func:`evaluate_run` result: one metric a line, then MIG per factor."""
    rows: list[tuple[str, str]] = []

    def add(label: str, value: Any) -> None:
        rows.append((label, "n/a" if value is None else f"{value:.4f}"))

    for key, label in (("mig", "MIG"), ("sap", "SAP")):
        if key in result:
            add(label, result[key])
    if "dci" in result:
        for key, label in (("disentanglement", "DCI disentanglement"), ("completeness", "DCI completeness"),
                           ("informativeness_train", "DCI informativeness (train)"),
                           ("informativeness_test", "DCI informativeness (test)")):
            add(label, result["dci"][key])
    for key, label in (("factor_vae_score", "FactorVAE score"), ("beta_vae_score", "beta-VAE score")):
        if key in result:
            add(label, result[key])
    if "mig_gaps" in result:
        for name, gap, col in zip(result["factor_names"], result["mig_gaps"], np.array(result["mi_matrix"]).T):
            rows.append((f"  MIG gap {name}", "n/a" if gap is None else f"{gap:.4f} (best z{int(np.argmax(col))})"))
    for key, reason in result.get("skipped", {}).items():
        rows.append((key, f"skipped: {reason}"))
    width = max(len(r[0]) for r in rows) if rows else 0
    head = f"{result.get('engine')} step {result.get('step')} on {result.get('data_spec')}: " \
           f"{result.get('n_points')} points, {result.get('seconds', 0.0):.1f} s"
    return "\n".join([head, *(f"{label:<{width}}  {value}" for label, value in rows)])
