"""Cold start: from the ``latent-studio`` command to a window that paints, answers clicks, and has its model.

Each run launches the real command (``latent-studio --data digits --model vae`` by default, offscreen
unless ``--show``) in a fresh process with ``LATENT_STUDIO_TIMINGS`` set (:mod:`studio.timings`):
seconds from the launch to the window's first paint, to the event loop answering (a queued call run
after ``show()``: clicks are answered from then on), to the worker's Started, and to the first model's
Ready. The studio quits at Ready. Prints the median and the range over ``--runs`` runs.

    python benchmarks/cold_start.py [--runs 5] [--data digits] [--model vae]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KEYS = ("first_paint", "answers_clicks", "worker_started", "model_ready")


def one_run(data: str, model: str, show: bool, timeout: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "timings.json"
        env = {**os.environ, "LATENT_STUDIO_TIMINGS": str(out), "LATENT_STUDIO_QUIT_WHEN_READY": "1",
               "LATENT_STUDIO_T0": repr(time.time())}
        if not show:
            env["QT_QPA_PLATFORM"] = "offscreen"
        subprocess.run([sys.executable, "-m", "latent_studio", "--data", data, "--model", model], env=env,
                       check=True, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return json.loads(out.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--data", default="digits")
    ap.add_argument("--model", default="vae")
    ap.add_argument("--show", action="store_true", help="a real window on the display (default: offscreen)")
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()
    runs = [one_run(args.data, args.model, args.show, args.timeout) for _ in range(args.runs)]
    print(f"| from the command to ... ({args.runs} runs, {args.model} on {args.data}) | median s | min s | max s |")
    print("| --- | --- | --- | --- |")
    for key in KEYS:
        values = [r[key] for r in runs if key in r]
        if values:
            print(f"| {key.replace('_', ' ')} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
