"""Mode coverage of GANs on the 2-D mixtures, beside PacGAN's Table 1 (Lin et al. 2018).

For each data set (`grid`: 25 modes, `ring`: 8 modes), each model (`gan`, `wgan-gp`, and `gan` with
a packed critic, pack=4) and each seed, the engine trains a fixed step budget in this process (the
same engine code the worker runs), then draws 2,500 samples and scores them with
`engines.metrics.coverage.mixture_coverage` (a sample is high quality within 3 standard deviations
of its nearest mode; a mode is captured when it is the nearest mode of a high-quality sample).
Prints modes captured, high-quality share and reverse KL as mean +- std over seeds.

    python benchmarks/mode_coverage.py [--steps N] [--seeds 0 1 2] [--data grid ring] [--decay-at 0.4]

PacGAN's Table 1 (their networks and budget): grid GAN 17.3 modes / 94.8%, PacGAN4 24.8 / 93.6%;
ring GAN 6.3 / 98.2%, PacGAN2 7.9 / 95.6%. The goal for this project: the packed or WGAN-GP model
captures >= 24.5 of 25 grid modes with >= 90% high-quality samples, and all 8 ring modes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

PACGAN_TABLE1 = {
    ("grid", "gan"): "17.3 / 94.8%",
    ("grid", "gan pack=4"): "24.8 / 93.6% (PacGAN4)",
    ("ring", "gan"): "6.3 / 98.2%",
    ("ring", "gan pack=4"): "7.9 / 95.6% (PacGAN2)",
}

#: label -> (engine, live hyperparameters, default steps, batch). Steps give each model about the same
#: wall time (wgan-gp takes 5 critic steps with a gradient penalty per generator step); the packed
#: critic sees batches of 400 so that it, like the others, judges 100 inputs (of 4 samples) per step.
MODELS = {
    "gan": ("gan", {}, 20000, 100),
    "wgan-gp": ("wgan-gp", {}, 5000, 100),
    "gan pack=4": ("gan", {"pack": 4}, 20000, 400),
}


def run_one(data: str, label: str, seed: int, steps: int, batch: int, latent_dim: int, decay_at: float) -> dict:
    """Train one model on one data set and score 2,500 samples; returns the coverage dict and timing.

    Both learning rates drop to a tenth after ``decay_at`` of the steps (0: never): the high rate
    finds the modes, the low one sharpens them.
    """
    import numpy as np
    import torch

    from engines.data import load_dataset
    from engines.metrics.coverage import mixture_coverage
    from engines.shared.registry import create_engine
    from engines.lib.training import BatchStream, configure_threads, pick_device

    device = pick_device()
    configure_threads(device)
    dataset = load_dataset(data)
    name, overrides, _, _ = MODELS[label]
    torch.manual_seed(seed)
    engine = create_engine(name, dataset.info, latent_dim=latent_dim, seed=seed).to(device)
    for k, v in overrides.items():
        engine.set_hyper(k, v)
    stream = BatchStream(dataset, batch, seed, device)
    engine.train()
    t0 = time.perf_counter()
    decay_step = int(decay_at * steps) if decay_at > 0 else -1
    for step in range(steps):
        if step == decay_step:
            for lr in ("g_lr", "d_lr"):
                engine.set_hyper(lr, engine.h(lr) / 10.0)
        engine.training_step(next(stream), step)
    seconds = time.perf_counter() - t0
    gen = torch.Generator(device=device).manual_seed(10_000 + seed)
    engine.eval()
    with torch.no_grad():
        samples = engine.sample(2500, generator=gen).float().cpu().numpy()
    result = mixture_coverage(samples, np.asarray(dataset.info.modes), dataset.info.mode_std).to_json()
    result["seconds"] = seconds
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", default=["grid", "ring"])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--steps", type=int, help="steps for every model (default: each model's own, see MODELS)")
    ap.add_argument("--batch-size", type=int, help="batch for every model (default: 100, 400 for the packed critic)")
    ap.add_argument("--decay-at", type=float, default=0.4,
                    help="fraction of the steps after which both learning rates drop to a tenth (0: never)")
    ap.add_argument("--latent-dim", type=int, default=2, help="PacGAN's 2-D experiments use 2")
    args = ap.parse_args()

    def mean_std(xs: list[float]) -> str:
        return f"{statistics.mean(xs):.2f} +- {statistics.stdev(xs) if len(xs) > 1 else 0.0:.2f}"

    print("| data | model | steps x batch | modes captured | high-quality share | reverse KL (nats) | s per run "
          "| PacGAN Table 1 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for data in args.data:
        for label in args.models:
            runs = []
            for seed in args.seeds:
                _, _, steps, batch = MODELS[label]
                r = run_one(data, label, seed, args.steps or steps, args.batch_size or batch, args.latent_dim,
                            args.decay_at)
                print(f"  {data} {label} seed {seed}: {r['modes_captured']}/{r['modes_total']} modes, "
                      f"{100 * r['high_quality_share']:.1f}% HQ, {r['seconds']:.0f} s", file=sys.stderr)
                runs.append(r)
            kls = [r["reverse_kl"] for r in runs if r["reverse_kl"] is not None]
            print(
                f"| {data} | {label} | {args.steps or steps:,} x {args.batch_size or batch} "
                f"| {mean_std([r['modes_captured'] for r in runs])} "
                f"| {mean_std([100 * r['high_quality_share'] for r in runs])}% "
                f"| {mean_std(kls) if kls else 'undefined'} | {statistics.mean(r['seconds'] for r in runs):.0f} "
                f"| {PACGAN_TABLE1.get((data, label), '-')} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
