"""Training throughput of the worker against a bare PyTorch loop of the same model, batch and data.

Both run in this one invocation, alternating, on the same device and thread count, so the ratio is
what the worker's machinery (trainer thread, batched metrics, host snapshots, sample grid, the
pipe) costs. The bare loop is the minimal loop anyone would write: build the same engine with the
same seed, draw batches from the same `BatchStream`, call `training_step`. The worker run is timed
from sending `Train` to receiving `Stopped`, so its start-up and final sample grid count against it.

    python benchmarks/throughput.py [--data shapes] [--steps 300] [--repeats 3]
    python benchmarks/throughput.py --data shapes:32 --model beta-tcvae --steps 1500 --disentanglement-every 10
    python benchmarks/throughput.py --data digits --steps 400 --repeats 5 --no-live-metrics [--no-trust]

The second form prices the live disentanglement measurements (coverage off): compare it with
``--disentanglement-every 0``. The third prices the watchdog (its checks every step and every flush, a
good state copied every 2 s) and the timeline (a snapshot every 250 steps): run it with and without
``--no-trust``.

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
    from engines.shared.registry import create_engine
    from engines.lib.training import BatchStream, configure_threads, pick_device

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


def worker_run(link, data: str, model: str, batch: int, steps: int, latent_dim: int,  # noqa: ANN001
               measuring: bool = False) -> tuple[float, int]:
    """Images per second of the real worker training `steps` steps (after 10 warm-up steps), and the
    number of disentanglement measurements that arrived meanwhile.

    With ``measuring`` (a disentanglement schedule on data with factors) the worker measures once
    more after each session stops; that measurement is awaited outside the timed span, so it
    neither counts against the worker nor overlaps the next bare loop.
    """
    from engines.shared import protocol as p

    def settle(stopped: p.Stopped) -> None:
        if measuring:
            while True:
                event = link.wait_for(p.DisentanglementMeasured, timeout=300)
                if event.step >= stopped.step:
                    return

    link.send(p.Configure(data=data, model=model, latent_dim=latent_dim, seed=0, batch_size=batch))
    link.wait_for(p.Ready, timeout=300)
    link.send(p.Train(steps=10))
    settle(link.wait_for(p.Stopped, timeout=300))
    seen: list = []
    t0 = time.perf_counter()
    link.send(p.Train(steps=steps))
    stopped = link.wait_for(p.Stopped, timeout=3600, collect=seen)
    rate = steps * batch / (time.perf_counter() - t0)
    settle(stopped)
    return rate, sum(isinstance(e, p.DisentanglementMeasured) for e in seen)


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
    ap.add_argument("--no-trust", action="store_true",
                    help="turn off the worker's watchdog and its timeline snapshots (to price them: run with and "
                    "without)")
    ap.add_argument("--disentanglement-every", type=float, metavar="S",
                    help="seconds of training between the worker's disentanglement measurements (on data with "
                         "factors; default: the worker's own schedule)")
    args = ap.parse_args()

    from engines.shared.link import WorkerLink
    from engines.lib.training import configure_threads, pick_device

    from engines.shared import protocol as p

    link = WorkerLink()
    link.start()
    started = link.wait_for(p.Started, timeout=120)
    threads = started.threads
    if args.no_trust:
        link.send(p.SetWatchdog(enabled=False))
        link.send(p.SetTimeline(every=10**9, max_mb=512))
    if args.no_live_metrics:
        link.send(p.SetMetricSchedule(coverage_every=0, disentanglement_every=0))
    elif args.disentanglement_every is not None:
        link.send(p.SetMetricSchedule(coverage_every=0, disentanglement_every=args.disentanglement_every))
    device = pick_device()
    print(f"device {started.device}, {threads} torch threads in both; {args.data}, {args.model}, batch {args.batch_size}",
          file=sys.stderr)
    from engines.data import load_dataset

    measuring = (not args.no_live_metrics and bool(args.disentanglement_every)
                 and bool(load_dataset(args.data).info.factor_names))
    bare, worker, measured = [], [], []
    try:
        for r in range(args.repeats):
            # Alternate which goes first, so drift on a shared machine hits both alike.
            order = ("bare", "worker") if r % 2 == 0 else ("worker", "bare")
            for which in order:
                if which == "bare":
                    bare.append(bare_loop(args.data, args.model, args.batch_size, args.steps, args.latent_dim, threads))
                else:
                    rate, n = worker_run(link, args.data, args.model, args.batch_size, args.steps, args.latent_dim,
                                         measuring=measuring)
                    worker.append(rate)
                    measured.append(n)
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
    if measuring:
        print(f"disentanglement measurements during the timed worker runs: {measured}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
