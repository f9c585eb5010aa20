"""Headless commands: ``latent-studio train`` and ``latent-studio sample``.

They run the same engine, data and checkpoint code as the worker. Building the parser is cheap;
torch is imported only when a command runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from engines.shared.errors import LatentStudioError


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the headless sub-commands on ``sub`` (the ``latent-studio`` parser's subparsers)."""
    p = sub.add_parser(
        "train",
        help="train a model headless and write a run folder",
        description="Train a model on a data spec and write DIR/model.safetensors, DIR/run.json, "
        "DIR/metrics.csv (one row per logged step) and DIR/samples.png.",
    )
    p.add_argument("--data", required=True, help="data spec: shapes, shapes:32, digits, ring, grid, idx:PATH, folder:PATH, npz:PATH; binarized:SPEC for static binary images")
    p.add_argument("--model", required=True, help="registry name, e.g. vae, beta-vae")
    p.add_argument("--out", required=True, type=Path, help="run folder to write")
    p.add_argument("--arch", choices=["conv", "mlp"], help="network architecture (conv for images by default)")
    p.add_argument("--latent-dim", type=int, help="width of z (default: the model's own, 10 for VAEs)")
    p.add_argument("--beta", type=float, help="KL weight beta (VAE family)")
    p.add_argument("--lr", type=float, help="learning rate (for GANs: both the generator's and the critic's)")
    p.add_argument("--steps", type=int, help="optimisation steps (default 1000 unless --epochs is given)")
    p.add_argument("--epochs", type=float, help="train for this many passes over the training split instead of --steps")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default %(default)s)")
    p.add_argument("--image-size", type=int, help="resize images to this side in pixels (8-64)")
    p.add_argument("--seed", type=int, default=0, help="seed for weights, batches and samples (default %(default)s)")
    p.add_argument("--device", choices=["cpu", "cuda", "mps"], help="force a device (default: cuda, then mps, then cpu)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: all cores but one)")
    p.add_argument("--log-every", type=int, default=1, help="write a metrics row every N steps (default %(default)s)")
    p.add_argument("--iwae-k", type=int, default=0, help="also report the held-out IWAE bound with k samples (0: skip)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                   help="any other model setting, e.g. --set n_masks=1 --set hidden=250 (repeatable)")
    p.add_argument("--max-seconds", type=float,
                   help="stop early after this many seconds of training (run.json records the steps done)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="draw samples from a trained run into a PNG grid")
    p.add_argument("--run", required=True, type=Path, help="run folder (or .safetensors checkpoint)")
    p.add_argument("--n", type=int, default=64, help="number of samples (default %(default)s)")
    p.add_argument("--out", required=True, type=Path, help="PNG file to write")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default %(default)s)")
    p.add_argument("--scale", type=int, default=0, help="integer upscaling (default: to about 512 px)")
    p.set_defaults(func=cmd_sample)

    from engines.cli.metrics import add_coverage_command, add_evaluate_command, add_metrics_command

    add_coverage_command(sub)
    add_metrics_command(sub)
    add_evaluate_command(sub)
    from engines.cli.export import add_export_commands
    add_export_commands(sub)
    from engines.cli.directions import add_directions_command
    add_directions_command(sub)


def _write_samples(engine: Any, path: Path, n: int, seed: int, scale: int = 0) -> Path:
    """Sample ``n`` examples with ``seed`` and write them as a PNG grid (or a point plot for 2-D data)."""
    import numpy as np
    import torch

    from engines.shared.imaging import plot_points, save_png, tile

    gen = torch.Generator(device=engine.device).manual_seed(seed)
    engine.eval()
    with torch.no_grad():
        x = engine.sample(n, generator=gen).float().cpu().numpy()
    if engine.data.kind == "points":
        modes = np.asarray(engine.data.modes) if engine.data.modes else None
        return save_png(plot_points(x, modes=modes, size=512), path)
    grid = tile(x)
    scale = scale or max(1, 512 // max(grid.shape[1:]))
    return save_png(grid, path, scale=scale)


def _held_out(engine: Any, dataset: Any, iwae_k: int) -> dict[str, Any]:
    """The held-out log-likelihood (or bound) as ``run.json`` records it, with a progress bar; {} for none."""
    from tqdm import tqdm

    from engines.metrics.likelihood import held_out_likelihood, held_out_indices

    n = len(held_out_indices(dataset))
    if not engine.capabilities.has_likelihood or n == 0:
        return {}
    with tqdm(total=n, unit="image", desc="held-out likelihood", file=sys.stderr, mininterval=0.5) as bar:
        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        result = held_out_likelihood(engine, dataset, batch_size=250, iwae_k=iwae_k, progress=progress)
    return {} if result is None else result.to_json()


def _config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The model settings given on the command line; ``--lr`` sets both learning rates of a GAN."""
    from dataclasses import fields

    from engines.shared.registry import engine_class

    config_fields = {f.name: f for f in fields(engine_class(args.model).config_class)}
    known = set(config_fields)
    out: dict[str, Any] = {"latent_dim": args.latent_dim, "seed": args.seed, "arch": args.arch, "beta": args.beta}
    if args.lr is not None and "lr" not in known and {"g_lr", "d_lr"} <= known:
        out["g_lr"] = out["d_lr"] = args.lr
    else:
        out["lr"] = args.lr
    out.update(_parse_settings(args.model, getattr(args, "settings", []) or [], config_fields))
    return out


def _parse_settings(model: str, settings: list[str], config_fields: dict[str, Any]) -> dict[str, Any]:
    """``--set KEY=VALUE`` pairs as typed config overrides (the type of the setting's default).

    Raises
    ------
    LatentStudioError
        A pair without "=", a key the model's config does not have (the known ones listed), or a value
        that does not parse as the setting's type.
    """
    from dataclasses import MISSING

    out: dict[str, Any] = {}
    for item in settings:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise LatentStudioError(f"--set wants KEY=VALUE, not {item!r}")
        if key not in config_fields:
            raise LatentStudioError(f"--set {key}: {model} has no such setting; it has "
                                    + ", ".join(sorted(config_fields)))
        default = config_fields[key].default
        kind = type(default) if default is not MISSING and default is not None else str
        try:
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                value: Any = text.lower() in ("true", "1", "yes")
            elif kind in (int, float, str):
                value = kind(text)
            elif kind is tuple:
                value = tuple(int(v) for v in text.split(",") if v.strip())
            else:
                value = text
        except ValueError:
            raise LatentStudioError(f"--set {key}={text}: not a {kind.__name__}") from None
        out[key] = value
    return out


def _check_train_args(args: argparse.Namespace) -> None:
    """Every number of ``train`` checked before any work, with one clear line.

    Raises
    ------
    LatentStudioError
        A step count, epoch count, batch size, logging interval, IWAE k or time limit out of range.
    """
    checks = [
        (args.steps is None or args.steps >= 1, f"--steps must be at least 1, got {args.steps}"),
        (args.epochs is None or (math.isfinite(args.epochs) and args.epochs > 0), f"--epochs must be positive, got {args.epochs}"),
        (args.batch_size >= 1, f"--batch-size must be at least 1, got {args.batch_size}"),
        (args.log_every >= 1, f"--log-every must be at least 1, got {args.log_every}"),
        (args.iwae_k >= 0, f"--iwae-k must be 0 (skip) or more, got {args.iwae_k}"),
        (args.max_seconds is None or args.max_seconds > 0, f"--max-seconds must be positive, got {args.max_seconds}"),
    ]
    for ok, message in checks:
        if not ok:
            raise LatentStudioError(message)


def cmd_train(args: argparse.Namespace) -> int:
    """Train headless; see the ``train`` sub-command's help."""
    _check_train_args(args)
    import torch
    from tqdm import tqdm

    from engines.lib.checkpoint import save_checkpoint
    from engines.data import load_dataset
    from engines.shared.registry import create_engine
    from engines.lib.training import BatchStream, configure_threads, pick_device

    overrides = _config_overrides(args)  # a bad --set fails here, before the data loads
    dataset = load_dataset(args.data, args.image_size)
    device = pick_device(args.device)
    threads = configure_threads(device, args.threads)
    torch.manual_seed(args.seed)
    engine = create_engine(args.model, dataset.info, **overrides).to(device)
    n_train = len(dataset.train_indices)
    if args.epochs is not None:
        steps = max(1, math.ceil(args.epochs * n_train / args.batch_size))
    else:
        steps = args.steps if args.steps is not None else 1000
    print(f"{dataset.summary()}", file=sys.stderr)
    print(f"{args.model} on {device} ({threads} threads): {steps} steps of batch {args.batch_size}", file=sys.stderr)
    stream = BatchStream(dataset, args.batch_size, args.seed, device, with_labels=engine.capabilities.conditional)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, float]] = []
    names: list[str] = []
    engine.train()
    t0 = time.perf_counter()
    done = 0
    with tqdm(range(1, steps + 1), unit="step", file=sys.stderr, mininterval=0.5) as bar:
        for step in bar:
            losses = engine.training_step(next(stream), step)
            out_of_time = args.max_seconds is not None and time.perf_counter() - t0 >= args.max_seconds
            if step % args.log_every == 0 or step == steps or out_of_time:  # the last step is always logged
                names.extend(k for k in losses if k not in names)
                rows.append({"step": step, **losses})
                shown = {k: f"{v:.4g}" for k, v in losses.items() if "/" not in k}
                bar.set_postfix(shown, refresh=False)
            done = step
            if out_of_time:
                break
    steps = done
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    with open(args.out / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["step", *names], restval="")
        writer.writeheader()
        writer.writerows(rows)
    save_checkpoint(engine, args.out / "model.safetensors", step=steps, data_spec=args.data, image_size=args.image_size)
    held_out = _held_out(engine, dataset, args.iwae_k)
    _write_samples(engine, args.out / "samples.png", 64, args.seed)
    from engines.lib.checkpoint import read_manifest

    run = {
        **read_manifest(args.out / "model.safetensors"),
        "train": {
            "steps": steps,
            "batch_size": args.batch_size,
            "epochs": steps * args.batch_size / max(1, n_train),
            "seconds": seconds,
            "images_per_sec": steps * args.batch_size / seconds,
            "device": str(device),
            "threads": threads,
            "final": rows[-1] if rows else {},
        },
        "held_out": held_out,
    }
    (args.out / "run.json").write_text(json.dumps(run, indent=2))
    msg = f"{steps} steps in {seconds:.1f} s ({run['train']['images_per_sec']:.0f} images/s)"
    if held_out:
        from engines.shared.results import HeldOutLikelihood

        msg += "; " + HeldOutLikelihood.from_json(held_out).summary()
    print(msg + f"; wrote {args.out}/", file=sys.stderr)
    from engines.shared.runs import register_run

    register_run(args.out)  # listed in the window's Runs dock
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """Sample from a run folder or checkpoint into a PNG grid."""
    from engines.lib.checkpoint import load_checkpoint
    from engines.lib.training import configure_threads, pick_device

    device = pick_device()
    configure_threads(device)
    engine, _ = load_checkpoint(args.run, device=str(device), with_optimizer=False)
    if args.n < 1:
        raise LatentStudioError(f"--n must be at least 1, got {args.n}")
    path = _write_samples(engine, args.out, args.n, args.seed, args.scale)
    print(f"wrote {path}", file=sys.stderr)
    return 0
