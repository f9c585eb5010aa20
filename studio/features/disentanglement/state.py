"""The Disentanglement panel's Qt-free part: the table of scores per measurement, its columns and its CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from engines.shared import protocol

#: Every score the worker may send, in table and CSV order, with its label.
METRICS = {
    "mig": "MIG", "factor_vae_score": "FactorVAE", "dci_disentanglement": "DCI disentanglement",
    "sap": "SAP", "dci_completeness": "DCI completeness", "dci_informativeness": "DCI informativeness",
    "beta_vae_score": "beta-VAE",
}

#: The scores drawn as curves, with their colours.
CURVES = {"mig": "#4fc3f7", "factor_vae_score": "#ffb74d", "dci_disentanglement": "#81c784", "sap": "#ba68c8"}

NO_FACTORS = "No ground-truth factors in this data set"
NOT_YET = "No disentanglement measured yet"


class ScoreTable:
    """One row per :class:`~engines.shared.protocol.DisentanglementMeasured`: step, seconds and the scores sent.

    Attributes
    ----------
    rows : list of dict
        ``{"step": ..., "seconds": ..., "mig": ..., ...}`` in arrival order (scores in [0, 1]).
    mi : ndarray or None
        The latest latent x factor mutual information (nats), (latents, factors).
    """

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []
        self.mi: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def clear(self) -> None:
        """Forget every measurement (a new model was built)."""
        self.rows, self.mi = [], None

    def add(self, event: protocol.DisentanglementMeasured) -> dict[str, float]:
        """Record a measurement; its row."""
        row = {"step": float(event.step), "seconds": float(event.seconds)}
        row.update(event.scores.present())
        self.rows.append(row)
        if event.mi_matrix is not None and event.mi_matrix.ndim == 2:
            self.mi = np.asarray(event.mi_matrix, np.float32)
        return row

    def steps(self) -> np.ndarray:
        """The step of every measurement (float64)."""
        return np.asarray([r["step"] for r in self.rows], np.float64)

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, score ``key``) over the measurements, NaN where one did not send it."""
        return self.steps(), np.asarray([r.get(key, np.nan) for r in self.rows], np.float64)

    def latest(self) -> list[tuple[str, float]]:
        """(label, value) of every score of the latest measurement, in :data:`METRICS` order."""
        row = self.rows[-1] if self.rows else {}
        return [(METRICS[k], row[k]) for k in METRICS if k in row]

    def summary(self) -> str:
        """The status line of the latest measurement: its step, the curves' scores and its seconds."""
        if not self.rows:
            return NOT_YET
        row = self.rows[-1]
        return f"step {int(row['step']):,}: " + ", ".join(
            f"{METRICS[k]} {row[k]:.2f}" for k in METRICS if k in row and k in CURVES) + f" ({row['seconds']:.1f} s)"

    def columns(self) -> list[str]:
        """CSV columns: step, seconds, then every score any measurement sent, in :data:`METRICS` order."""
        seen = {k for r in self.rows for k in r}
        return ["step", "seconds"] + [k for k in METRICS if k in seen] + sorted(seen - set(METRICS) - {"step", "seconds"})

    def csv_rows(self) -> list[list[object]]:
        """The CSV's rows after the header: step as an integer, scores to 6 digits, "" where not measured."""
        cols = self.columns()
        return [[int(r["step"]) if c == "step" else ("" if c not in r else f"{r[c]:.6g}") for c in cols]
                for r in self.rows]

    def write_csv(self, path: str | Path) -> Path:
        """Write :meth:`columns` and :meth:`csv_rows` to ``path``.

        Raises
        ------
        OSError
            If the file cannot be written.
        """
        path = Path(path)
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(self.columns())
            writer.writerows(self.csv_rows())
        return path
