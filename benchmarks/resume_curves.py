"""Exact resume, shown: one run of N steps against the same run stopped part-way and resumed (issue 12).

Trains a VAE on the built-in digits with a cosine learning-rate schedule twice through the real command line:
once for ``--steps`` in one go, once stopped by ``--max-seconds`` and continued with ``train --resume``; prints
the largest difference between the two loss curves (0.0 when the resume is exact) and draws both, with their
difference, into a PNG.

    QT_QPA_PLATFORM=offscreen python benchmarks/resume_curves.py --steps 400 --stop-after 3 --out docs/resume.png
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

import numpy as np

import latent_studio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--stop-after", type=float, default=3.0, help="seconds before the second run is stopped")
    ap.add_argument("--out", type=Path, default=Path("resume.png"))
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="resume-curves-"))
    common = ["train", "--data", "digits", "--model", "vae", "--image-size", "16", "--steps", str(args.steps),
              "--threads", "1", "--seed", "7", "--lr-schedule", "cosine"]
    latent_studio.main([*common, "--out", str(folder / "whole")])
    latent_studio.main([*common, "--max-seconds", str(args.stop_after), "--out", str(folder / "half")])
    latent_studio.main(["train", "--resume", str(folder / "half")])
    a, b = (list(csv.DictReader(open(folder / name / "metrics.csv"))) for name in ("whole", "half"))
    cut = json.loads((folder / "half" / "run.json").read_text())["train"]["resumed_from"]
    steps = np.array([int(r["step"]) for r in a])
    la, lb = (np.array([float(r["loss"]) for r in rows]) for rows in (a, b))
    print(f"stopped at step {cut}, resumed to {int(steps[-1])}: max |difference| of the loss over {len(steps)} steps "
          f"= {float(np.abs(lb - la).max())}")
    draw(steps, la, lb, cut, args.out)
    print(f"wrote {args.out}")


def draw(steps: np.ndarray, la: np.ndarray, lb: np.ndarray, cut: int, out: Path) -> None:
    import pyqtgraph as pg
    import pyqtgraph.exporters  # noqa: F401 - registers the exporters
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    pg.setConfigOptions(background="#1e1f22", foreground="#d0d0d0", antialias=True)
    w = pg.GraphicsLayoutWidget()
    w.resize(1000, 560)
    top = w.addPlot(row=0, col=0, title=f"VAE on digits, cosine learning rate: {int(steps[-1])} steps in one run, "
                    f"and stopped at step {cut} then resumed")
    top.addLegend(offset=(-10, 10))
    top.plot(steps, la, pen=pg.mkPen("#4fc3f7", width=5), name=f"one run of {int(steps[-1])} steps")
    top.plot(steps, lb, pen=pg.mkPen("#ffb74d", width=2), name=f"{cut} steps, saved, then train --resume")
    top.addItem(pg.InfiniteLine(cut, angle=90, pen=pg.mkPen("#9e9e9e", style=Qt.PenStyle.DashLine),
                                label="resumed here", labelOpts={"position": 0.9}))
    top.setLabel("left", "loss (nats)")
    top.setLogMode(y=True)
    bottom = w.addPlot(row=1, col=0)
    bottom.plot(steps, lb - la, pen=pg.mkPen("#81c784", width=2))
    bottom.setLabel("left", "difference")
    bottom.setLabel("bottom", "step")
    bottom.setYRange(-1e-6, 1e-6)
    w.ci.layout.setRowStretchFactor(0, 3)
    w.show()
    app.processEvents()
    exporter = pg.exporters.ImageExporter(w.ci)
    exporter.parameters()["width"] = 1000
    exporter.export(str(out))


if __name__ == "__main__":
    main()
