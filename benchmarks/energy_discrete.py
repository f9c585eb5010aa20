"""Energy models and discrete latents on the binarised real MNIST test set (issue 16).

Protocol: the 10,000 real MNIST test images (IDX files, any path) binarised once with seed 0
(``binarized:idx:PATH``, as in benchmarks/likelihood.py), split 9,000 train / 1,000 held out. Each model is
the real ``latent-studio train`` command in its own process, stopped by ``--budget`` seconds of training:

- ``rbm`` with 500 hidden units, CD-1 and PCD-1 (100 persistent chains), batch 100, SGD 0.05 with momentum
  0.5 and weight decay 2e-4; held-out log-likelihood -F(v) - log Z with log Z by AIS from the data's base
  rates (100 runs, ``--ais-betas`` temperatures; Salakhutdinov & Murray 2008), in nats per image;
- ``gumbel-vae`` (20 categorical latents of 10 classes) by the Gumbel-softmax relaxation and by NVIL, the same
  number of steps each: held-out ELBO (one sample) and the four estimators' gradient variances last measured;
- ``vq-vae`` (a 7x7 grid of codes, 64 codes of 16 dimensions): the reconstruction error and the perplexity.

    python benchmarks/energy_discrete.py --mnist DIR [--budget 480] [--rbm-steps N] [--ais-betas 5000] [--out runs/bench-energy]

DIR holds ``t10k-images-idx3-ubyte.gz``. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path


def _train(name: str, model: str, data: str, out: Path, budget: float, threads: int, steps: int, batch: int,
           extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "latent_studio", "train", "--data", data, "--model", model, "--steps", str(steps),
           "--max-seconds", str(budget), "--batch-size", str(batch), "--seed", "0", "--log-every", "50",
           "--threads", str(threads), "--out", str(out / name), *extra]
    print("$", " ".join(cmd), file=sys.stderr)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    seconds = time.perf_counter() - t0
    run = json.loads((out / name / "run.json").read_text())
    rows = list(csv.DictReader(open(out / name / "metrics.csv")))
    return {"run": run, "last": rows[-1] if rows else {}, "rows": rows, "seconds": seconds}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist", required=True, type=Path, help="folder with t10k-images-idx3-ubyte.gz")
    ap.add_argument("--budget", type=float, default=480.0, help="seconds of training per model")
    ap.add_argument("--rbm-steps", type=int, default=10**7,
                    help="steps of each RBM (batch 100): a step budget keeps CD-1 and PCD equal on a busy machine; "
                         "--rbm-seconds caps the seconds")
    ap.add_argument("--rbm-seconds", type=float, default=0.0, help="seconds cap of each RBM (default: --budget)")
    ap.add_argument("--ais-betas", type=int, default=5000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-energy"))
    args = ap.parse_args()
    images = args.mnist / "t10k-images-idx3-ubyte.gz"
    data = f"binarized:idx:{images}"
    args.out.mkdir(parents=True, exist_ok=True)
    rbm_seconds = args.rbm_seconds or args.budget
    rbm = ["--latent-dim", "500", "--set", f"ais_betas={args.ais_betas}", "--set", "ais_runs=100"]
    results = {
        "rbm CD-1": _train("rbm-cd1", "rbm", data, args.out, rbm_seconds, args.threads, args.rbm_steps, 100, rbm),
        "rbm PCD-1": _train("rbm-pcd1", "rbm", data, args.out, rbm_seconds, args.threads, args.rbm_steps, 100,
                            rbm + ["--set", "persistent=true"]),
    }
    gumbel = _train("gumbel", "gumbel-vae", data, args.out, args.budget / 2, args.threads, 10**7, 100,
                    ["--latent-dim", "20", "--set", "n_categories=10"])
    results["gumbel-vae (Gumbel-softmax)"] = gumbel
    steps = int(gumbel["run"]["step"])  # NVIL at the same number of steps
    results["gumbel-vae (NVIL)"] = _train("nvil", "gumbel-vae", data, args.out, 10**6, args.threads, steps, 100,
                                          ["--latent-dim", "20", "--set", "n_categories=10",
                                           "--set", "estimator=nvil"])
    results["vq-vae"] = _train("vq", "vq-vae", data, args.out, args.budget / 2, args.threads, 10**7, 100,
                               ["--latent-dim", "16", "--set", "n_categories=64"])

    print("| model | steps | wall s (training + held-out) | held-out (nats per image) | last logged terms |")
    print("| --- | --- | --- | --- | --- |")
    for name, r in results.items():
        held = r["run"].get("held_out") or {}
        figure = f"{-held['nats']:.2f} +- {held['stderr']:.2f} ({held['kind']})" if held else "-"
        if "log_z" in r["run"]:
            figure += f"; log Z {r['run']['log_z']['nats']:.2f} +- {r['run']['log_z']['stderr']:.2f}"
        keys = [k for k in ("recon", "pseudo_nll", "kl", "perplexity", "dead_codes", "grad_var/gumbel",
                            "grad_var/reinforce", "grad_var/nvil") if r["last"].get(k)]
        terms = ", ".join(f"{k} {float(r['last'][k]):.4g}" for k in keys)
        print(f"| {name} | {r['run']['step']:,} | {r['seconds']:.0f} | {figure} | {terms} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
