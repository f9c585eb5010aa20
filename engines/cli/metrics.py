"""The ``coverage`` and ``metrics`` sub-commands: mode coverage and disentanglement of a trained run, headless."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engines.metrics.coverage import PROTOCOL_N, coverage_for_run
from engines.metrics.evaluate import FAST_POINTS, METRICS, PROTOCOL, evaluate_run, format_table
from engines.shared.errors import LatentStudioError
from engines.shared.results import ClassCoverage, MixtureCoverage


def add_coverage_command(sub: argparse._SubParsersAction) -> None:
    """Register ``coverage`` on the ``latent-studio`` sub-parsers (``--run``, ``--n``, ``--seed``, ``--json``)."""
    p = sub.add_parser(
        "coverage",
        help="measure mode coverage of a trained run",
        description="Sample a run and report mode coverage: modes captured, high-quality share and reverse KL "
        "for 2-D mixtures (VEEGAN / PacGAN protocol); classes covered and class KL through a classifier the "
        "studio trains on labelled images; k-means clusters for unlabelled images.",
    )
    p.add_argument("--run", required=True, type=Path, help="run folder (or .safetensors checkpoint)")
    p.add_argument("--n", type=int, default=PROTOCOL_N, help="samples (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default %(default)s)")
    p.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    p.add_argument("--device", choices=["cpu", "cuda", "mps"], help="force a device (default: cuda, then mps, then cpu)")
    p.set_defaults(func=cmd_coverage)


def format_coverage(result: MixtureCoverage | ClassCoverage) -> str:
    """A coverage result as a few human lines."""
    if isinstance(result, MixtureCoverage):
        kl = result.reverse_kl
        lines = [
            f"modes captured: {result.modes_captured} / {result.modes_total}",
            f"high-quality samples: {100 * result.high_quality_share:.1f}%",
            "reverse KL: " + ("undefined (no high-quality sample)" if kl is None else f"{kl:.4f} nats"),
        ]
    else:
        what = "classes" if result.metric == "classes" else "k-means clusters"
        lines = [
            f"{what} covered (PacGAN: any sample): {result.classes_covered_any} / {result.classes_total}",
            f"{what} covered (confident samples only): {result.classes_covered} / {result.classes_total}",
            f"class KL(generated || data): {result.class_kl:.4f} nats",
            f"confident samples: {100 * result.confident_share:.1f}%",
        ]
        if result.classifier_accuracy is not None:
            lines.append(f"classifier held-out accuracy: {100 * result.classifier_accuracy:.1f}%")
    return "\n".join(lines + [f"({result.n} samples)"])


def cmd_coverage(args: argparse.Namespace) -> int:
    """Measure a run's coverage; see the ``coverage`` sub-command's help."""
    from engines.lib.training import configure_threads, pick_device

    device = pick_device(args.device)
    configure_threads(device)

    def report(message: str, fraction: float) -> None:
        print(f"\r{message} ({100 * fraction:.0f}%)", end="", file=sys.stderr, flush=True)

    try:
        result = coverage_for_run(args.run, n=args.n, seed=args.seed, progress=report, device=str(device))
    finally:
        print(file=sys.stderr)
    print(format_coverage(result.result))
    if args.json is not None:
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result.to_json(), indent=2, allow_nan=False) + "\n", encoding="utf-8")
        except OSError as exc:
            raise LatentStudioError(f"{args.json}: cannot write the coverage JSON: {exc}") from exc
    return 0


def add_metrics_command(sub: argparse._SubParsersAction) -> None:
    """Register the ``metrics`` sub-command on ``sub`` (the ``latent-studio`` parser's subparsers)."""
    p = sub.add_parser(
        "metrics",
        help="measure disentanglement (MIG, SAP, DCI, FactorVAE and beta-VAE scores) of a trained run",
        description="Encode examples of a run's data set and score the codes against its ground-truth factors "
        "with disentanglement_lib's protocols (Locatello et al. 2019). Prints a table; --json writes every number.",
    )
    p.add_argument("--run", required=True, type=Path, help="run folder (or .safetensors checkpoint)")
    p.add_argument("--json", type=Path, help="JSON file to write the results to")
    p.add_argument("--n", type=int, help=f"points for MIG, SAP and DCI (default {PROTOCOL['num_train']}, "
                   f"{FAST_POINTS} with --fast)")
    p.add_argument("--seed", type=int, default=0, help="seed of every draw (default %(default)s)")
    p.add_argument("--fast", action="store_true",
                   help="smaller sample counts and a random-forest DCI for a quick look (not the published protocol)")
    p.add_argument("--metrics", help=f"comma-separated subset of {','.join(METRICS)} (default: all the data supports)")
    p.add_argument("--device", choices=["cpu", "cuda", "mps"], help="force a device (default: cuda, then mps, then cpu)")
    p.set_defaults(func=cmd_metrics)


def cmd_metrics(args: argparse.Namespace) -> int:
    """Run :func:`evaluate_run` for the ``metrics`` sub-command; print a table, optionally write JSON."""
    from engines.lib.training import configure_threads, pick_device

    device = pick_device(args.device)
    configure_threads(device)
    n = args.n if args.n is not None else (FAST_POINTS if args.fast else PROTOCOL["num_train"])
    wanted = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    from tqdm import tqdm

    # The fraction is time-proportional (see evaluate_run), so the bar's linear estimate is the time left.
    with tqdm(total=1000, file=sys.stderr, mininterval=0.5, smoothing=0,
              bar_format="{desc:<34.34} {percentage:3.0f}%|{bar:20}| {elapsed} elapsed, {remaining} left") as bar:

        def progress(stage: str, fraction: float) -> None:
            bar.set_description_str(stage, refresh=False)
            bar.update(max(0, int(1000 * fraction) - bar.n))

        result = evaluate_run(args.run, n, args.seed, wanted, progress, fast=args.fast, device=str(device))
    print(format_table(result))
    if args.json is not None:
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2))
        except OSError as exc:
            raise LatentStudioError(f"{args.json}: cannot write the results ({exc.strerror or exc})") from exc
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def add_evaluate_command(sub: argparse._SubParsersAction) -> None:
    """Register ``evaluate`` on the ``latent-studio`` sub-parsers (``--run``, ``--n``, ``--seed``, ``--json``)."""
    from engines.metrics.quality_run import PROTOCOL_N

    p = sub.add_parser(
        "evaluate",
        help="measure sample quality of a trained run (FD, precision/recall, density/coverage)",
        description="Sample a run and score the samples against real training images in the features of the "
        "classifier the studio trains on the data (PCA of pixels for data without labels): Frechet distance "
        "('FD (classifier features)', not Inception's FID), the classifier score, improved precision and "
        "recall (k=3), density and coverage (k=5) and classes covered; held-out real images scored the same "
        "way give the floor. The numbers also go to RUN/quality.json when --run is a folder (the Runs dock "
        "shows them).",
    )
    p.add_argument("--run", required=True, type=Path, help="run folder (or .safetensors checkpoint)")
    p.add_argument("--n", type=int, default=PROTOCOL_N, help="samples and reference images (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the samples and the reference draw (default %(default)s)")
    p.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    p.add_argument("--device", choices=["cpu", "cuda", "mps"], help="force a device (default: cuda, then mps, then cpu)")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Run :func:`engines.metrics.quality_run.quality_for_run`; print a table, optionally write JSON."""
    from tqdm import tqdm

    from engines.lib.training import configure_threads, pick_device
    from engines.metrics.quality_run import format_quality, quality_for_run

    if args.n < 10:
        raise LatentStudioError(f"--n must be at least 10, got {args.n}")
    if not args.run.exists():
        raise LatentStudioError(f"{args.run}: no such run folder or checkpoint")
    device = pick_device(args.device)
    configure_threads(device)
    with tqdm(total=1000, file=sys.stderr, mininterval=0.5,
              bar_format="{desc:<40.40} {percentage:3.0f}%|{bar:20}| {elapsed}") as bar:

        def progress(stage: str, fraction: float) -> None:
            bar.set_description_str(stage, refresh=False)
            bar.update(max(0, int(1000 * fraction) - bar.n))

        result = quality_for_run(args.run, args.n, args.seed, progress, device=str(device))
    print(format_quality(result))
    text = json.dumps(result, indent=2, allow_nan=False) + "\n"
    targets = [args.json] if args.json is not None else []
    if args.run.is_dir() and (args.json is None or args.json.resolve() != (args.run / "quality.json").resolve()):
        targets.append(args.run / "quality.json")  # the Runs dock shows the run's latest scores
    for path in targets:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise LatentStudioError(f"{path}: cannot write the results ({exc.strerror or exc})") from exc
        print(f"wrote {path}", file=sys.stderr)
    return 0
