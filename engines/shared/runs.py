"""Runs on disk, torch-free: what the Runs dock lists and compares.

A run is a folder holding ``model.safetensors`` and its manifest, and, where they were written,
``metrics.csv`` (``step`` then one column per loss term: what ``latent-studio train`` writes and the
window writes beside its autosaves), ``run.json`` (``train``'s config, timing and held-out
likelihood), ``quality.json`` (``latent-studio evaluate``) and ``samples.png``.

Runs live in ``$LATENT_STUDIO_HOME/runs/`` (the window autosaves each model it trains into a folder
there) or anywhere else, registered in ``$LATENT_STUDIO_HOME/runs.json`` (``train --out DIR`` adds
DIR). Every file is read as untrusted: JSON and CSV only, a file that does not parse is skipped and
named in :attr:`RunRecord.problems`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RunRecord", "claim_run_name", "comparable_groups", "find_runs", "home_dir", "new_run_name", "read_run", "register_run",
           "read_metrics_csv", "runs_dir", "write_metrics_csv"]

#: Largest metrics.csv read, bytes (a run logged every step for a million steps is about 100 MB).
MAX_CSV_BYTES = 64 * 2**20
#: Largest JSON file read, bytes.
MAX_JSON_BYTES = 4 * 2**20


def home_dir() -> Path:
    """``$LATENT_STUDIO_HOME``, default ``~/.latent-studio``."""
    return Path(os.environ.get("LATENT_STUDIO_HOME") or os.path.join(os.path.expanduser("~"), ".latent-studio"))


def runs_dir() -> Path:
    """``$LATENT_STUDIO_HOME/runs``: where the window's runs go."""
    return home_dir() / "runs"


def new_run_name(engine: str, data_spec: str, when: float | None = None) -> str:
    """A folder name for a new run: ``20261202-181500-beta-vae-shapes-32`` (local time, then model and data)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if when is None else when))
    data = Path(data_spec.split(":", 1)[-1]).name if ":" in data_spec and "/" in data_spec else data_spec
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", f"{engine}-{data}").strip("-")[:60]
    return f"{stamp}-{slug}"


def claim_run_name(name: str, home: str | Path | None = None) -> str:
    """``name``, or ``name-2``, ``name-3``, ... : the first whose folder under ``runs/`` this call creates, so two
    windows that build the same model in the same second never share (and overwrite) a run folder."""
    root = runs_dir() if home is None else Path(home) / "runs"
    root.mkdir(parents=True, exist_ok=True)
    for k in range(1, 10_000):
        candidate = name if k == 1 else f"{name}-{k}"
        try:
            (root / candidate).mkdir()
            return candidate
        except FileExistsError:
            continue
    raise OSError(f"{root}: no free run folder for {name!r}")


@dataclass
class RunRecord:
    """One run as read from its folder.

    Attributes
    ----------
    path : Path
        The folder.
    name : str
        The folder's name.
    engine, data_spec : str
        Model name and data spec ("" where no manifest says).
    image_size : int or None
    step : int
        Optimisation steps of the saved model.
    created : float
        The checkpoint's modification time (s since the epoch).
    curves : dict of str to (list of int, list of float)
        Each loss term's steps and values, from metrics.csv.
    final : dict of str to float
        Latest scalar metrics: held-out likelihood from run.json (``held_out_*``), sample quality from
        quality.json (``fd``, ``precision``, ``recall``, ``density``, ``coverage``,
        ``classifier_score``), and the last value of every loss term.
    kinds : dict of str to str
        How a metric was measured where it matters, e.g. ``{"held_out_nats": "exact"}`` or
        ``{"fd": "classifier features"}``.
    samples : Path or None
        samples.png, where there is one.
    problems : list of str
        Files that could not be read, and why.
    """

    path: Path
    name: str
    engine: str = ""
    data_spec: str = ""
    image_size: int | None = None
    step: int = 0
    created: float = 0.0
    curves: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    samples: Path | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def data_key(self) -> tuple[str, int | None]:
        """What must match for two runs' metrics to be compared: the data spec and image size."""
        return (self.data_spec, self.image_size)


def _read_json(path: Path, problems: list[str]) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise ValueError(f"larger than {MAX_JSON_BYTES // 2**20} MB")
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data
    except (OSError, ValueError) as exc:
        problems.append(f"{path.name}: {exc}")
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(float(value)) else None


def _read_curves(path: Path, problems: list[str]) -> dict[str, tuple[list[int], list[float]]]:
    curves: dict[str, tuple[list[int], list[float]]] = {}
    if not path.is_file():
        return curves
    try:
        if path.stat().st_size > MAX_CSV_BYTES:
            raise ValueError(f"larger than {MAX_CSV_BYTES // 2**20} MB")
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                step = int(float(row.pop("step")))
                for key, text in row.items():
                    if key is None or text in ("", None):
                        continue
                    value = float(text)
                    if math.isfinite(value):
                        steps, values = curves.setdefault(key, ([], []))
                        steps.append(step)
                        values.append(value)
    except (OSError, ValueError, KeyError, TypeError, csv.Error) as exc:
        problems.append(f"{path.name}: {exc}")
    return curves


def read_run(path: str | Path) -> RunRecord | None:
    """The run in folder ``path`` (or the folder of a ``.safetensors`` file), None if it holds no model.

    Never raises for a bad file: it is left out and named in ``problems``.
    """
    p = Path(path)
    folder = p.parent if p.suffix == ".safetensors" else p
    model = folder / "model.safetensors"
    if not model.is_file():
        return None
    rec = RunRecord(path=folder, name=folder.name)
    try:
        rec.created = model.stat().st_mtime
    except OSError:
        pass
    manifest = _read_json(model.with_suffix(".json"), rec.problems) or {}
    run = _read_json(folder / "run.json", rec.problems) or {}
    for source in (run, manifest):  # the manifest is newer where both exist (a window autosave)
        if isinstance(source.get("engine"), str):
            rec.engine = source["engine"]
        spec = source.get("data_spec") or (source.get("data") if isinstance(source.get("data"), str) else None)
        if isinstance(spec, str):
            rec.data_spec = spec
        if isinstance(source.get("image_size"), int):
            rec.image_size = source["image_size"]
        if isinstance(source.get("step"), int):
            rec.step = source["step"]
    rec.curves = _read_curves(folder / "metrics.csv", rec.problems)
    for key, (_steps, values) in rec.curves.items():
        rec.final[key] = values[-1]
    held = run.get("held_out")
    if isinstance(held, dict):  # engines.shared.results.HeldOutLikelihood's JSON
        for key, name in (("nll_nats", "held_out_nll_nats"), ("bits_per_dim", "held_out_bits_per_dim"),
                          ("iwae_nats", "held_out_iwae_nats")):
            if (v := _number(held.get(key))) is not None:
                rec.final[name] = -v if key == "iwae_nats" else v  # an NLL bound, as the others
        if isinstance(held.get("kind"), str):
            k = held.get("iwae_k")
            rec.kinds["held_out_nll_nats"] = held["kind"]
            if isinstance(k, int) and k > 0:
                rec.kinds["held_out_iwae_nats"] = f"IWAE, k={k}"
    quality = _read_json(folder / "quality.json", rec.problems)
    if quality and isinstance(quality.get("model"), dict):
        for key, value in quality["model"].items():
            if (v := _number(value)) is not None and key != "n":
                rec.final[key] = v
        if isinstance(quality.get("features"), str):
            rec.kinds["fd"] = quality["features"]
    if (folder / "samples.png").is_file():
        rec.samples = folder / "samples.png"
    return rec


def _registered(home: Path) -> list[Path]:
    data = _read_json(home / "runs.json", [])
    paths = data.get("runs", []) if data else []
    return [Path(p) for p in paths if isinstance(p, str)]


def register_run(path: str | Path, home: str | Path | None = None) -> None:
    """Add a run folder outside the runs folder to ``runs.json`` so the Runs dock lists it (no-op if there).

    A home that cannot be written is skipped silently: registering is a convenience.
    """
    home = Path(home) if home is not None else home_dir()
    folder = str(Path(path).resolve())
    paths = [str(p) for p in _registered(home)]
    if folder in paths:
        return
    try:
        home.mkdir(parents=True, exist_ok=True)
        tmp = home / "runs.json.tmp"
        tmp.write_text(json.dumps({"runs": [*paths, folder]}, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, home / "runs.json")
    except OSError:
        pass


def find_runs(home: str | Path | None = None) -> list[RunRecord]:
    """Every run in ``home/runs/`` and registered in ``home/runs.json``, newest first."""
    home = Path(home) if home is not None else home_dir()
    folders: list[Path] = []
    root = home / "runs"
    if root.is_dir():
        folders += sorted(p for p in root.iterdir() if p.is_dir())
    folders += [p for p in _registered(home) if p.is_dir()]
    seen: set[Path] = set()
    out = []
    for folder in folders:
        key = folder.resolve()
        if key in seen:
            continue
        seen.add(key)
        rec = read_run(folder)
        if rec is not None:
            out.append(rec)
    return sorted(out, key=lambda r: r.created, reverse=True)


def comparable_groups(records: list[RunRecord]) -> dict[tuple[str, int | None], list[RunRecord]]:
    """The runs grouped by :attr:`RunRecord.data_key`: only runs in one group are compared."""
    groups: dict[tuple[str, int | None], list[RunRecord]] = {}
    for rec in records:
        groups.setdefault(rec.data_key, []).append(rec)
    return groups


def read_metrics_csv(path: str | Path) -> tuple[list[int], dict[str, list[float]]]:
    """Read ``metrics.csv`` row by row: the steps and each term's values (NaN where a row has none).

    Returns
    -------
    steps : list of int
    terms : dict of str to list of float
        Each as long as ``steps``, in the file's column order.

    Raises
    ------
    DataError
        The file is too large, is not a metrics CSV (no ``step`` column) or a cell is not a number; the
        message names the file and the line.
    """
    from engines.shared.errors import DataError

    path = Path(path)
    try:
        if path.stat().st_size > MAX_CSV_BYTES:
            raise DataError(f"{path}: larger than {MAX_CSV_BYTES // 2**20} MB, not read")
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header or header[0] != "step":
                raise DataError(f"{path}: not a metrics file (the first column is not 'step')")
            names = header[1:]
            steps: list[int] = []
            terms: dict[str, list[float]] = {k: [] for k in names}
            for line, row in enumerate(reader, start=2):
                try:
                    steps.append(int(float(row[0])))
                    for k, text in zip(names, row[1:] + [""] * (len(names) + 1 - len(row))):
                        terms[k].append(float(text) if text else math.nan)
                except (ValueError, IndexError, OverflowError):
                    raise DataError(f"{path}, line {line}: not a row of numbers") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc})") from exc
    except (csv.Error, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a CSV file ({exc})") from exc
    return steps, terms


def write_metrics_csv(path: str | Path, steps: list[int], terms: dict[str, list[float]]) -> None:
    """Write ``metrics.csv``: ``step`` then one column per term (NaN as empty), atomically.

    Parameters
    ----------
    steps : list of int
        One per row.
    terms : dict of str to list of float
        Each as long as ``steps``.

    Raises
    ------
    OSError
        The file cannot be written.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    names = list(terms)
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["step", *names])
        for i, step in enumerate(steps):
            row = [terms[k][i] for k in names]
            writer.writerow([step, *("" if not math.isfinite(v) else f"{v:.6g}" for v in row)])
    os.replace(tmp, path)
