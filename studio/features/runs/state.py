"""What the Runs dock compares, Qt-free: shared loss terms, the metric table and its CSV."""

from __future__ import annotations

import csv
import io
import math
import time

from engines.shared.runs import RunRecord

#: Metric columns of the comparison table, in order, with their labels; loss terms come after.
METRIC_COLUMNS = (
    ("held_out_nll_nats", "held-out NLL (nats)"), ("held_out_iwae_nats", "held-out NLL, IWAE (nats)"),
    ("held_out_bits_per_dim", "bits/dim"), ("fd", "FD (classifier features)"), ("classifier_score", "classifier score"),
    ("precision", "precision"), ("recall", "recall"), ("density", "density"), ("coverage", "coverage"),
    ("classes_covered", "classes covered (PacGAN)"),
)
#: The column saying how each run's held-out NLL was measured ("exact", "elbo").
KIND_KEY = "held_out_nll_kind"
#: Metrics where lower is better (the table marks the best of each column among comparable runs).
LOWER_IS_BETTER = {"held_out_nll_nats", "held_out_iwae_nats", "held_out_bits_per_dim", "fd", "loss", "recon"}


def run_summary(rec: RunRecord) -> str:
    """One cell of the run list: its latest headline metrics, e.g. "NLL 92.5 nats (elbo), FD 57.5"."""
    parts = []
    if "held_out_nll_nats" in rec.final:
        kind = rec.kinds.get("held_out_nll_nats", "")
        parts.append(f"NLL {rec.final['held_out_nll_nats']:.1f} nats" + (f" ({kind})" if kind else ""))
    if "fd" in rec.final:
        parts.append(f"FD {rec.final['fd']:.1f}")
    if "precision" in rec.final and "recall" in rec.final:
        parts.append(f"P {rec.final['precision']:.2f} R {rec.final['recall']:.2f}")
    if not parts and "loss" in rec.final:
        parts.append(f"loss {rec.final['loss']:.4g}")
    return ", ".join(parts)


def when(rec: RunRecord) -> str:
    """The run's last save as local "2026-12-02 18:15"."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(rec.created)) if rec.created else ""


class Comparison:
    """The runs picked for comparison: which are comparable, their shared terms and metric table.

    Parameters
    ----------
    records : list of RunRecord
        In the order picked; the first run's data (spec and image size) is the reference: runs on
        other data are listed but marked not comparable and left out of the curves and the best marks.
    """

    def __init__(self, records: list[RunRecord]) -> None:
        self.records = list(records)
        ref = self.records[0].data_key if self.records else None
        self.comparable = [rec.data_key == ref for rec in self.records]

    @property
    def shown(self) -> list[RunRecord]:
        """The comparable runs (drawn and marked)."""
        return [r for r, ok in zip(self.records, self.comparable) if ok]

    def shared_terms(self) -> list[str]:
        """Loss terms every comparable run logged (per-dimension terms such as ``kl/z3`` left out), the
        first run's order: the ones the table shows as final values."""
        shown = self.shown
        if not shown:
            return []
        first = [t for t in shown[0].curves if "/" not in t]
        return [t for t in first if all(t in r.curves for r in shown[1:])]

    def terms(self) -> list[tuple[str, int]]:
        """Every loss term any comparable run logged, with how many runs logged it: the most shared
        first (a VAE's ``loss`` and a GAN's ``d_loss`` are different curves, each drawn for the runs
        that have it)."""
        counts: dict[str, int] = {}
        for rec in self.shown:
            for t in rec.curves:
                if "/" not in t:
                    counts[t] = counts.get(t, 0) + 1
        order = list(counts)
        return sorted(counts.items(), key=lambda tc: (-tc[1], order.index(tc[0])))

    def columns(self) -> list[tuple[str, str]]:
        """(key, label) of the table's metric columns: the known metrics any run has, then shared terms."""
        have = {k for r in self.records for k in r.final}
        cols = [(k, label) for k, label in METRIC_COLUMNS if k in have]
        if "held_out_nll_nats" in have:  # what the NLL is: exact, an ELBO, ...
            cols.insert(cols.index(("held_out_nll_nats", "held-out NLL (nats)")) + 1, (KIND_KEY, "NLL kind"))
        cols += [(t, f"final {t}") for t in self.shared_terms() if t not in dict(cols)]
        return cols

    def rows(self) -> list[list[str]]:
        """The table as text: a header row, then one row per run (run, model, data, steps, comparable, metrics)."""
        cols = self.columns()
        out = [["run", "model", "data", "steps", "compared", *(label for _, label in cols)]]
        for rec, ok in zip(self.records, self.comparable):
            cells = [rec.name, rec.engine, rec.data_spec + (f" @ {rec.image_size}px" if rec.image_size else ""),
                     str(rec.step), "yes" if ok else "no: other data"]
            for key, _ in cols:
                if key == KIND_KEY:
                    cells.append(rec.kinds.get("held_out_nll_nats", ""))
                    continue
                v = rec.final.get(key)
                cells.append("" if v is None or not math.isfinite(v) else f"{v:.6g}")
            out.append(cells)
        return out

    def best(self) -> dict[str, int]:
        """Metric key -> index (in :attr:`records`) of the best comparable run where two or more have it
        (known metrics only, density aside: above 1 is crowding, not quality)."""
        out: dict[str, int] = {}
        known = {k for k, _ in METRIC_COLUMNS} - {"density"}
        for key, _ in self.columns():
            if key not in known:
                continue
            vals = [(i, r.final[key]) for i, (r, ok) in enumerate(zip(self.records, self.comparable))
                    if ok and key in r.final and math.isfinite(r.final[key])]
            if len(vals) >= 2:
                pick = min if key in LOWER_IS_BETTER else max
                out[key] = pick(vals, key=lambda iv: iv[1])[0]
        return out

    def to_csv(self) -> str:
        """:meth:`rows` as CSV text."""
        buf = io.StringIO()
        csv.writer(buf).writerows(self.rows())
        return buf.getvalue()
