"""Disentanglement of VAE variants on `shapes:32`, beside the published dSprites figures.

Protocol (issue 4, after Locatello et al. 2019): 10 latent dimensions, batch 64, Adam 1e-4,
Bernoulli decoder, on the built-in dSprites-style `shapes` at 32x32; `vae`, `beta-vae` (beta 4),
`beta-tcvae` (beta 6) and `factor-vae` (gamma 10), 2 seeds. Each model gets a step budget of about
the same wall time on one CPU core (FactorVAE's 6 x 1000-unit discriminator makes its step about
3.5 times dearer, so it gets fewer steps; see MODELS), or `--steps` for all. Every `--eval-every`
steps (default: an eighth of the run) a quick measurement (1,000 points,
`engines.worker.live_metrics.measure_disentanglement`, as the window's live curves) gives the curves; at
the end MIG, DCI and SAP on `--final-points` points and the FactorVAE score with `--votes` training
votes (the protocol's 10,000 take many minutes a run on a CPU; pass `--votes 10000` on a GPU).
`--jobs 2` trains two runs at once in separate processes, one torch thread each, in the order of
`--models`. `--json` is
rewritten after every finished run, so an interrupted benchmark keeps what it measured.

    python benchmarks/disentanglement.py [--steps N] [--seeds 0 1] [--jobs 2] [--json runs.json]
        [--models vae beta-vae beta-tcvae factor-vae]
    python benchmarks/disentanglement.py --table-from runs.json [more.json ...]

Published after 300k steps on 64 px dSprites (InfoGAN-CR's table): beta-TCVAE MIG 0.45; FactorVAE
(gamma 10) FactorVAE score 0.83, DCI 0.70, MIG 0.40; beta-VAE MIG 0.21; VAE MIG 0.10. The goal on our
budget: beta-TCVAE or FactorVAE MIG >= 0.25 and above the plain VAE's in both seeds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

PUBLISHED = {
    "vae": "MIG 0.10",
    "beta-vae": "MIG 0.21",
    "beta-tcvae": "MIG 0.45",
    "factor-vae": "MIG 0.40, FactorVAE 0.83, DCI 0.70",
}
#: model -> (live hyperparameters, default steps). The steps give each model about 22 minutes on
#: one core of the development machine (50-55 ms a step for the VAEs, about 175 ms for FactorVAE).
MODELS = {
    "vae": ({}, 24000),
    "beta-vae": ({"beta": 4.0}, 24000),
    "beta-tcvae": ({"beta": 6.0}, 24000),
    "factor-vae": ({"gamma": 10.0}, 7500),
}


def run_one(model: str, seed: int, steps: int, eval_every: int, data: str, final_points: int, votes: int) -> dict:
    """Train one model and return its curve and final scores (a plain dict, JSON-ready)."""
    import torch

    from engines.data import load_dataset
    from engines.worker.live_metrics import measure_disentanglement
    from engines.shared.registry import create_engine
    from engines.lib.training import BatchStream, configure_threads, pick_device

    device = pick_device()
    configure_threads(device)
    dataset = load_dataset(data)
    torch.manual_seed(seed)
    engine = create_engine(model, dataset.info, latent_dim=10, seed=seed, lr=1e-4, likelihood="bernoulli").to(device)
    for k, v in MODELS[model][0].items():
        engine.set_hyper(k, v)
    stream = BatchStream(dataset, 64, seed, device)
    curve = []
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        engine.train()
        engine.training_step(next(stream), step)
        if step % eval_every == 0 or step == steps:
            engine.eval()
            ev = measure_disentanglement(engine, dataset, step, seed=seed)
            curve.append({"step": step, **{k: getattr(ev.scores, k) for k in ("mig", "factor_vae_score", "dci_disentanglement")}})
            print(f"  {model} seed {seed} step {step}: MIG {ev.scores.mig:.3f}, "
                  f"DCI {ev.scores.dci_disentanglement:.3f} ({time.perf_counter() - t0:.0f} s)",
                  file=sys.stderr, flush=True)
    train_s = time.perf_counter() - t0
    engine.eval()
    sampled = {"batch_size": 64, "num_train": votes, "num_eval": max(1, votes // 2), "num_variance_estimate": 10000}
    final = measure_disentanglement(engine, dataset, steps, seed=seed, n_points=final_points, sampled=sampled)
    return {"model": model, "seed": seed, "steps": steps, "train_seconds": train_s, "curve": curve,
            "final": final.scores.to_json()}


def table(runs: list[dict], models: list[str]) -> str:
    """The Markdown table of final scores, one row per model."""

    def cell(model: str, key: str) -> str:
        xs = [r["final"].get(key) for r in runs if r["model"] == model and r["final"].get(key) is not None]
        if not xs:
            return "-"
        return " / ".join(f"{x:.2f}" for x in xs) + (f" (mean {statistics.mean(xs):.2f})" if len(xs) > 1 else "")

    lines = ["| model | steps | MIG per seed | FactorVAE score | DCI disentanglement | train s per run "
             "| published (64 px, 300k steps) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for m in models:
        mine = [r for r in runs if r["model"] == m]
        if not mine:
            continue
        secs = statistics.mean(r["train_seconds"] for r in mine)
        lines.append(f"| {m} | {mine[0]['steps']:,} | {cell(m, 'mig')} | {cell(m, 'factor_vae_score')} "
                     f"| {cell(m, 'dci_disentanglement')} | {secs:.0f} | {PUBLISHED[m]} |")
    return "\n".join(lines)


def curves(runs: list[dict]) -> str:
    """The Markdown table of MIG over steps (quick measurements) and the other final scores, one row per run."""
    lines = ["| model | seed | MIG over steps (step: MIG) | final MIG | SAP | DCI completeness | DCI informativeness |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in runs:
        points = ", ".join(f"{p['step'] / 1000:g}k: {p['mig']:.2f}" for p in r["curve"] if p.get("mig") is not None)
        f = r["final"]
        cells = [f"{f[k]:.2f}" if f.get(k) is not None else "-" for k in ("mig", "sap", "dci_completeness",
                                                                          "dci_informativeness")]
        lines.append(f"| {r['model']} | {r['seed']} | {points} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="shapes:32")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--steps", type=int, help="steps for every model (default: each model's own, see MODELS)")
    ap.add_argument("--eval-every", type=int, help="steps between curve points (default: an eighth of the run)")
    ap.add_argument("--final-points", type=int, default=10000)
    ap.add_argument("--votes", type=int, default=2000, help="FactorVAE/beta-VAE score training votes (protocol: 10000)")
    ap.add_argument("--jobs", type=int, default=1, help="runs trained at once, each in its own process")
    ap.add_argument("--json", help="write every finished run's curve and scores here")
    ap.add_argument("--table-from", nargs="+", metavar="JSON", help="train nothing: print the tables of runs saved "
                    "with --json (several files are merged)")
    args = ap.parse_args()
    if args.table_from:
        saved: list[dict] = []
        for name in args.table_from:
            with open(name) as f:
                saved += json.load(f)
        models = [m for m in MODELS if any(r["model"] == m for r in saved)]
        saved.sort(key=lambda r: (models.index(r["model"]), r["seed"]))
        print(table(saved, models))
        print()
        print(curves(saved))
        return 0
    plan = []
    for m in args.models:
        steps = args.steps or MODELS[m][1]
        plan += [(m, s, steps, args.eval_every or max(1, -(-steps // 8))) for s in args.seeds]
    runs: list[dict] = []

    def done(run: dict) -> None:
        runs.append(run)
        print(f"{run['model']} seed {run['seed']}: MIG {run['final'].get('mig'):.3f} "
              f"({run['train_seconds']:.0f} s)", file=sys.stderr, flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(runs, f, indent=2)

    common = (args.data, args.final_points, args.votes)
    if args.jobs <= 1:
        for m, s, steps, every in plan:
            done(run_one(m, s, steps, every, *common))
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
            futures = [pool.submit(run_one, m, s, steps, every, *common) for m, s, steps, every in plan]
            for fut in as_completed(futures):
                done(fut.result())
    runs.sort(key=lambda r: (args.models.index(r["model"]), r["seed"]))
    print(table(runs, args.models))
    print()
    print(curves(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
