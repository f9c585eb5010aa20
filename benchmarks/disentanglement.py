"""Disentanglement of VAE variants on `shapes:32`, beside the published dSprites figures.

Protocol (issue 4, after Locatello et al. 2019): 10 latent dimensions, batch 64, Adam 1e-4,
Bernoulli decoder, on the built-in dSprites-style `shapes` at 32x32; `vae`, `beta-vae` (beta 4),
`beta-tcvae` (beta 6) and `factor-vae` (gamma 10), a fixed step budget, 2 seeds. Every
`--eval-every` steps a quick measurement (1,000 points, `engines.live_metrics.measure_disentanglement`)
gives the curves; at the end MIG, DCI and SAP on `--final-points` points and the FactorVAE score
with `--votes` training votes (the protocol's 10,000 take hours on a CPU; pass `--votes 10000` on a GPU).

    python benchmarks/disentanglement.py [--steps 30000] [--seeds 0 1] [--models vae beta-vae beta-tcvae factor-vae]

Published after 300k steps on 64 px dSprites (InfoGAN-CR's table): beta-TCVAE MIG 0.45; FactorVAE
(gamma 10) FactorVAE score 0.83, DCI 0.70, MIG 0.40; beta-VAE MIG 0.21; VAE MIG 0.10. The goal on our
budget: beta-TCVAE or FactorVAE MIG >= 0.25 and above the plain VAE's in both seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

PUBLISHED = {
    "vae": "MIG 0.10",
    "beta-vae": "MIG 0.21",
    "beta-tcvae": "MIG 0.45",
    "factor-vae": "MIG 0.40, FactorVAE 0.83, DCI 0.70",
}
SETTINGS = {"vae": {}, "beta-vae": {"beta": 4.0}, "beta-tcvae": {"beta": 6.0}, "factor-vae": {"gamma": 10.0}}


def run_one(model: str, seed: int, args: argparse.Namespace) -> dict:
    """Train one model and return its curve and final scores."""
    import torch

    from engines.data import load_dataset
    from engines.live_metrics import measure_disentanglement
    from engines.registry import create_engine
    from engines.training import BatchStream, configure_threads, pick_device

    device = pick_device()
    configure_threads(device)
    dataset = load_dataset(args.data)
    torch.manual_seed(seed)
    engine = create_engine(model, dataset.info, latent_dim=10, seed=seed, lr=1e-4, likelihood="bernoulli").to(device)
    for k, v in SETTINGS[model].items():
        engine.set_hyper(k, v)
    stream = BatchStream(dataset, 64, seed, device)
    curve = []
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        engine.train()
        engine.training_step(next(stream), step)
        if step % args.eval_every == 0 or step == args.steps:
            engine.eval()
            ev = measure_disentanglement(engine, dataset, step, seed=seed)
            curve.append({"step": step, **{k: ev.values.get(k) for k in ("mig", "factor_vae_score", "dci_disentanglement")}})
            print(f"  {model} seed {seed} step {step}: MIG {ev.values.get('mig')}, "
                  f"DCI {ev.values.get('dci_disentanglement')}", file=sys.stderr)
    train_s = time.perf_counter() - t0
    engine.eval()
    sampled = {"batch_size": 64, "num_train": args.votes, "num_eval": max(1, args.votes // 2),
               "num_variance_estimate": 10000}
    final = measure_disentanglement(engine, dataset, args.steps, seed=seed, n_points=args.final_points, sampled=sampled)
    return {"model": model, "seed": seed, "train_seconds": train_s, "curve": curve, "final": final.values}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="shapes:32")
    ap.add_argument("--models", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--steps", type=int, default=30000)
    ap.add_argument("--eval-every", type=int, default=3000)
    ap.add_argument("--final-points", type=int, default=10000)
    ap.add_argument("--votes", type=int, default=1000, help="FactorVAE/beta-VAE score training votes (protocol: 10000)")
    ap.add_argument("--json", help="write every run's curve and scores here")
    args = ap.parse_args()
    runs = [run_one(m, s, args) for m in args.models for s in args.seeds]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f, indent=2)

    def cell(model: str, key: str) -> str:
        xs = [r["final"].get(key) for r in runs if r["model"] == model and r["final"].get(key) is not None]
        if not xs:
            return "-"
        return " / ".join(f"{x:.2f}" for x in xs) + (f" (mean {statistics.mean(xs):.2f})" if len(xs) > 1 else "")

    print("| model | MIG per seed | FactorVAE score | DCI disentanglement | train s per run | published (64 px, 300k steps) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for m in args.models:
        secs = statistics.mean(r["train_seconds"] for r in runs if r["model"] == m)
        print(f"| {m} | {cell(m, 'mig')} | {cell(m, 'factor_vae_score')} | {cell(m, 'dci_disentanglement')} "
              f"| {secs:.0f} | {PUBLISHED[m]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
