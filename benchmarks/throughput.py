"""Training throughput of the worker against a bare PyTorch loop of the same model, batch and data.

Both run in this one invocation, alternating, on the same device and thread count, so the ratio is
what the worker's machinery (trainer thread, batched metrics, host snapshots, sample grid, the
pipe) costs. The bare loop is the minimal loop anyone would write: build the same engine with the
same seed, draw batches from the same `BatchStream`, call `training_step`. The worker run is timed
from sending `Train` to receiving `Stopped`, so its start-up and final sample grid count against it.

    python benchmarks/throughput.py [--data shapes] [--steps 300] [--repeats 3]

Prints images/s of each run, their medians and the ratio (goal >= 0.95).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def bare_loop(data: str, model: str, batch: int, steps: int, latent_dim: int, threads: int) -> float:
    """Images per second of a plain loop over `engine.training_step` (after 10 warm-up steps)."""
    import torch

    from engines.data import load_dataset
    from engines.registry import create_engine
    from engines.training import BatchStream, configure_threads, pick_device

    device = pick_device()
    configure_threads(device, threads)
    dataset = load_dataset(data)
    torch.manual_seed(0)
    engine = create_engine(model, dataset.info, latent_dim=latent_dim, seed=0).to(device)
    engine.train()
    stream = BatchStream(dataset, batch, 0, device)
    for step in range(1, 11):
        engine.training_step(next(stream), step)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for step in range(11, 11 + steps):
        engine.training_step(next(stream), step)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


def worker_run(link, data: str, model: str, batch: int, steps: int, latent_dim: int) -> float:  # noqa: ANN001
    """Images per second of the real worker training `steps` steps (after 10 warm-up steps)."""
    from engines import protocol as p

    link.send(p.Configure(data=data, model=model, latent_dim=latent_dim, seed=0, batch_size=batch))
    link.wait_for(p.Ready, timeout=300)
    link.send(p.Train(steps=10))
    link.wait_for(p.Stopped, timeout=300)
    t0 = time.perf_counter()
    link.send(p.Train(steps=steps))
    link.wait_for(p.Stopped, timeout=3600)
    return steps * batch / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="shapes")
    ap.add_argument("--model", default="beta-vae")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--latent-dim", type=int, default=10)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-live-metrics", action="store_true",
                    help="turn off the worker's live coverage and disentanglement measurements")
    args = ap.parse_args()

    from engines.link import WorkerLink
    from engines.training import configure_threads, pick_device

    from engines import protocol as p

    link = WorkerLink()
    link.start()
    started = link.wait_for(p.Started, timeout=120)
    threads = started.threads
    if args.no_live_metrics:
        link.send(p.SetMetricSchedule(coverage_every=0, disentanglement_every=0))
    device = pick_device()
    print(f"device {started.device}, {threads} torch threads in both; {args.data}, {args.model}, batch {args.batch_size}",
          file=sys.stderr)
    bare, worker = [], []
    try:
        for r in range(args.repeats):
            # Alternate which goes first, so drift on a shared machine hits both alike.
            order = ("bare", "worker") if r % 2 == 0 else ("worker", "bare")
            for which in order:
                if which == "bare":
                    bare.append(bare_loop(args.data, args.model, args.batch_size, args.steps, args.latent_dim, threads))
                else:
                    worker.append(worker_run(link, args.data, args.model, args.batch_size, args.steps, args.latent_dim))
                print(f"  repeat {r + 1} {which}: {(bare if which == 'bare' else worker)[-1]:.0f} images/s", file=sys.stderr)
    finally:
        link.close()
    configure_threads(device)
    mb, mw = statistics.median(bare), statistics.median(worker)
    ratios = sorted(w / b for w, b in zip(worker, bare))
    print("| data | model | batch | bare images/s, median [min-max] | worker images/s, median [min-max] "
          "| ratio of medians | per-repeat ratios |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(f"| {args.data} | {args.model} | {args.batch_size} | {mb:.0f} [{min(bare):.0f}-{max(bare):.0f}] "
          f"| {mw:.0f} [{min(worker):.0f}-{max(worker):.0f}] | {mw / mb:.3f} | {', '.join(f'{r:.2f}' for r in ratios)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
