"""Time to compute the Map tab's map of 1,000 held-out images, and directions recovered on data with known factors.

Map (issue 15): a VAE trained on the real MNIST test set (9,000 train / 1,000 held out, the data set's fixed
split) by the real ``latent-studio train`` for ``--budget`` seconds (or ``--run DIR``), then the worker's own
job body (:func:`engines.worker.directions.run_map`, the code the window runs) maps ``--n`` held-out images
``--repeats`` times by PCA and by t-SNE (perplexity 30); the median wall time of each, encode included, and the
nearest-neighbour search of one generated image (pixel and latent space over the 9,000 training images; the
training set's encodings are cached after the first search, so the first and a repeated search are timed).

Directions: the bundled beta-VAE on ``shapes`` (``assets/demos/beta-vae-shapes``, or ``--shapes-run``): the
cosine between the z dimension with the most mutual information with x and (a) the attribute direction of x
(mean difference of the top and bottom thirds), (b) the best of the top three principal directions of the
posterior means of 1,000 held-out images; also for y.

    python benchmarks/latent_map.py --mnist DIR [--budget 120] [--run DIR] [--n 1000] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


class _Job:
    """What the worker's job bodies report to, for a benchmark: no progress, never cancelled."""

    def __init__(self) -> None:
        self.cancel = threading.Event()

    def progress(self, *_args: object) -> None:
        pass


def _hosted(run: Path):  # noqa: ANN202
    from engines.metrics.coverage import load_run
    from engines.worker.host import Hosted

    engine, manifest, dataset = load_run(run, "cpu")
    engine.eval()

    class _Snap:  # the piece of a Snapshot the job bodies read
        model, step = engine, int(manifest.get("step", 0))

    class _Copies:
        def get(self, _snap: object):  # noqa: ANN202
            return engine

    return Hosted(_Snap(), dataset, None), _Copies(), engine, dataset


def map_timings(run: Path, n: int, repeats: int) -> dict:
    from engines.shared import protocol as P
    from engines.worker.directions import run_map, run_nearest

    hosted, copies, engine, _ = _hosted(run)
    out: dict = {}
    for method in ("pca", "tsne"):
        times = []
        for r in range(repeats):
            t = time.perf_counter()
            mapped = run_map(_Job(), P.MapLatents(method=method, n=n, seed=r), hosted, copies)
            times.append(time.perf_counter() - t)
        out[method] = {"median_s": statistics.median(times), "runs_s": times, "points": int(len(mapped.xy))}
    z = mapped.z[0]
    times = []
    for _ in range(max(2, repeats)):
        t = time.perf_counter()
        near = run_nearest(_Job(), P.FindNearest(z=z, k=8), hosted, copies)
        times.append(time.perf_counter() - t)
    out["nearest"] = {"first_s": times[0], "repeated_median_s": statistics.median(times[1:]), "searched": near.n}
    return out


def shapes_cosines(run: Path) -> dict:
    from engines.metrics.disentanglement import mutual_info_matrix
    from engines.shared import protocol as P
    from engines.worker.directions import find, gather

    _, _, engine, dataset = _hosted(run)
    lat = gather(_Job(), engine, dataset, 1000)
    factors = dataset.factor_values(np.asarray(dataset.test_indices)[lat.indices])
    names = list(dataset.info.factor_names)
    mi = mutual_info_matrix(lat.z, factors)
    pca, _ = find(_Job(), P.FindDirections(method="pca", k=3, n_examples=1000), engine, dataset)
    out = {}
    for factor in ("x", "y"):
        axis = np.eye(engine.latent.dim)[int(np.argmax(mi[:, names.index(factor)]))]
        attr, _ = find(_Job(), P.FindDirections(method="attribute", factor=factor, n_examples=1000), engine, dataset)
        out[factor] = {"latent": int(np.argmax(axis)), "attribute": float(abs(attr.vectors[0] @ axis)),
                       "best_pc": float(max(abs(v @ axis) for v in pca.vectors))}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnist", type=Path, help="folder with t10k-images-idx3-ubyte.gz and its labels")
    ap.add_argument("--run", type=Path, help="a trained run to map instead of training one")
    ap.add_argument("--budget", type=float, default=120.0, help="seconds of VAE training (default %(default)s)")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shapes-run", type=Path, default=ROOT / "assets" / "demos" / "beta-vae-shapes")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-map"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    run = args.run
    if run is None:
        if args.mnist is None:
            ap.error("give --mnist DIR (to train a VAE) or --run DIR")
        run = args.out / "vae-mnist"
        cmd = [sys.executable, "-m", "latent_studio", "train", "--data", f"idx:{args.mnist / 't10k-images-idx3-ubyte.gz'}",
               "--model", "vae", "--steps", "1000000", "--max-seconds", str(args.budget), "--batch-size", "64",
               "--log-every", "200", "--threads", str(args.threads), "--out", str(run)]
        print("$", " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True)
    result = {"map": map_timings(run, args.n, args.repeats), "shapes": shapes_cosines(args.shapes_run),
              "threads": args.threads, "run": str(run)}
    m = result["map"]
    print(f"map of {m['pca']['points']} held-out images ({args.threads} threads, median of {args.repeats}):")
    print(f"  PCA   {m['pca']['median_s']:.2f} s   (runs {', '.join(f'{t:.2f}' for t in m['pca']['runs_s'])})")
    print(f"  t-SNE {m['tsne']['median_s']:.2f} s   (runs {', '.join(f'{t:.2f}' for t in m['tsne']['runs_s'])})")
    print(f"  ratio t-SNE / PCA {m['tsne']['median_s'] / m['pca']['median_s']:.1f}")
    print(f"nearest training examples of one image among {m['nearest']['searched']}: first {m['nearest']['first_s']:.2f} s "
          f"(encodes the training set), then {m['nearest']['repeated_median_s']:.2f} s")
    for factor, c in result["shapes"].items():
        print(f"shapes, {factor} (z{c['latent']}): cosine with the attribute direction {c['attribute']:.3f}, "
              f"with the best of 3 PCs {c['best_pc']:.3f}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
