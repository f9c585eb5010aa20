"""Sample quality of the VAEs and GANs on the real MNIST test set, beside the real-vs-real floor.

Protocol (issue 14): the 10,000 real MNIST test images and their labels (IDX files, any path) split
9,000 train / 1,000 held out (the data set's fixed split). Each model is the real ``latent-studio train``
command in its own process (batch 64, the model's defaults, ``--max-seconds BUDGET`` of training), then
the real ``latent-studio evaluate`` scores ``--n`` samples against ``--n`` training images in the
features of the studio's classifier (128-unit hidden layer, trained once on the same data and cached):
FD (classifier features), the classifier score, precision / recall (k = 3), density / coverage (k = 5)
and classes covered. The floor is the 1,000 held-out real images scored the same way, beside the model
scored on its first 1,000 samples (every score but precision depends on the count). The time of one
evaluation (sampling and scoring ``--n`` images, classifier cached) is measured by the evaluate command.

    python benchmarks/sample_quality.py --mnist DIR [--budget 600] [--n 5000] [--models vae beta-vae gan wgan-gp cgan]
        [--threads 2] [--out runs/bench-quality] [--table-only]

DIR holds ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` (the MNIST test set).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

MODELS = ("vae", "beta-vae", "gan", "wgan-gp", "cgan")
KEYS = (("fd", "FD"), ("classifier_score", "CS"), ("precision", "P"), ("recall", "R"), ("density", "D"),
        ("coverage", "C"))


def _run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True)


def _train(model: str, images: Path, out: Path, budget: float, threads: int, seed: int) -> dict:
    _run([sys.executable, "-m", "latent_studio", "train", "--data", f"idx:{images}", "--model", model,
          "--steps", "1000000", "--max-seconds", str(budget), "--batch-size", "64", "--seed", str(seed),
          "--log-every", "100", "--threads", str(threads), "--out", str(out)])
    return json.loads((out / "run.json").read_text())


def _evaluate(run: Path, n: int, seed: int) -> dict:
    path = run / "quality.json"
    _run([sys.executable, "-m", "latent_studio", "evaluate", "--run", str(run), "--n", str(n), "--seed", str(seed),
          "--json", str(path)])
    return json.loads(path.read_text())


def _row(name: str, steps: str, scores: dict, seconds: str) -> str:
    cells = [f"{scores[k]:.3f}" if k in scores else "" for k, _ in KEYS]
    covered = f"{scores.get('classes_covered', '')} / {scores.get('classes_covered_confident', '')}"
    return f"| {name} | {steps} | " + " | ".join(cells) + f" | {covered} | {seconds} |"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mnist", type=Path, required=True, help="folder with the MNIST test set's IDX files")
    p.add_argument("--budget", type=float, default=600.0, help="training seconds per model (default %(default)s)")
    p.add_argument("--n", type=int, default=5000, help="samples and reference images (default %(default)s)")
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/bench-quality"))
    p.add_argument("--table-only", action="store_true", help="print the table of runs already in --out")
    args = p.parse_args(argv)
    images = args.mnist / "t10k-images-idx3-ubyte.gz"
    if not images.exists() or not (args.mnist / "t10k-labels-idx1-ubyte.gz").exists():
        p.error(f"{args.mnist}: needs t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")
    rows, floor = [], None
    for model in args.models:
        run = args.out / model
        if not args.table_only:
            _train(model, images, run, args.budget, args.threads, args.seed)
            _evaluate(run, args.n, args.seed)
        info = json.loads((run / "run.json").read_text())
        q = json.loads((run / "quality.json").read_text())
        floor = floor or q
        seconds = f"{q['seconds']:.1f}"
        rows.append(_row(model, f"{info.get('steps', info.get('step', '?'))}", q["model"], seconds))
        if "model_at_floor_n" in q:
            rows.append(_row(f"{model} ({q['model_at_floor_n']['n']} samples)", "", q["model_at_floor_n"], ""))
    head = "| model | steps | " + " | ".join(label for _, label in KEYS) + " | classes (PacGAN / confident) | eval s |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        print(r)
    if floor is not None:
        print(_row(f"held-out real ({floor['floor']['n']}, floor)", "", floor["floor"], ""))
        print(f"\nfeatures: {floor['features']}; reference {floor['n_reference']} training images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
