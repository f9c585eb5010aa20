"""Headless commands: ``latent-studio train`` and ``latent-studio sample``.

They run the same engine, data and checkpoint code as the worker. Building the parser is cheap;
torch is imported only when a command runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
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
        "DIR/metrics.csv (one row per logged step) and DIR/samples.png. With --resume DIR, continue a run "
        "exactly where it stopped (weights, optimisers, random generators, the data order and step).",
    )
    p.add_argument("--data", help="data spec: shapes, shapes:32, digits, ring, grid, idx:PATH, folder:PATH, npz:PATH; binarized:SPEC for static binary images")
    p.add_argument("--model", help="registry name, e.g. vae, beta-vae")
    p.add_argument("--out", type=Path, help="run folder to write (with --resume: the run's own folder unless given)")
    p.add_argument("--resume", type=Path, metavar="DIR",
                   help="continue the run in DIR exactly: --steps more steps (default: the steps it planned and did not do)")
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
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="data-parallel training in N processes (torchrun's launcher: one GPU each with NCCL, or CPU "
                   "processes with Gloo), each on --batch-size examples of every step's N x batch")
    p.add_argument("--lr-schedule", choices=["constant", "cosine", "warmup"],
                   help="learning rate over the planned steps: constant (default), cosine (down to 1%%), "
                   "warmup (linear over the first 5%%)")
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


def _held_out_terms(engine: Any, dataset: Any, limit: int = 1000) -> dict[str, float]:
    """The engine's extra held-out curves (:meth:`~engines.models.base.Engine.held_out_terms`) over up to
    ``limit`` held-out images, means of batches of 250 weighted by their size; {} for none."""
    import torch

    from engines.metrics.likelihood import held_out_indices

    idx = held_out_indices(dataset, limit)
    if len(idx) == 0:
        return {}
    sums: dict[str, float] = {}
    gen = torch.Generator(device=engine.device).manual_seed(0)
    was_training = engine.training
    engine.eval()
    try:
        with torch.no_grad():
            for i in range(0, len(idx), 250):
                part = idx[i:i + 250]
                x = torch.as_tensor(dataset.get(part), device=engine.device)
                for k, v in engine.held_out_terms(x, gen).items():
                    sums[k] = sums.get(k, 0.0) + float(v) * len(part)
    finally:
        engine.train(was_training)
    return {k: v / len(idx) for k, v in sums.items()}


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
    if args.resume is None:
        for flag in ("data", "model", "out"):
            if getattr(args, flag) is None:
                raise LatentStudioError(f"train needs --{flag} (or --resume DIR to continue a run)")
    else:
        given = [f"--{k.replace('_', '-')}" for k in ("data", "model", "arch", "latent_dim", "beta", "lr", "epochs",
                                                      "image_size", "lr_schedule") if getattr(args, k) is not None]
        if given or args.settings:
            raise LatentStudioError(f"--resume continues the run as it was saved; {', '.join(given) or '--set'} "
                                    "cannot change it (train a new run instead)")
    checks = [
        (1 <= args.nproc <= 1024, f"--nproc must be from 1 to 1024, got {args.nproc}"),
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


def _launch(args: argparse.Namespace) -> int:
    """``train --nproc N``: run this same command in N processes through torchrun's launcher (its exit code)."""
    import subprocess

    from engines.lib.distributed import launch_command

    cmd = launch_command("latent_studio", list(getattr(args, "argv", None) or sys.argv[1:]), args.nproc, args.threads)
    print(f"latent-studio train: {args.nproc} processes (torchrun --standalone)", file=sys.stderr)
    return subprocess.call(cmd, stdin=subprocess.DEVNULL)


def cmd_train(args: argparse.Namespace) -> int:
    """Train headless, or continue a run exactly with ``--resume``; see the ``train`` sub-command's help."""
    _check_train_args(args)
    from engines.lib import distributed as D

    if args.nproc > 1 and not D.is_distributed():
        return _launch(args)
    import torch
    from tqdm import tqdm

    from engines.lib import resume as R
    from engines.lib.training import apply_lr_schedule

    rank, size, _ = D.world()
    run = _resumed(args) if args.resume is not None else _fresh(args)
    engine, dataset, stream, device = run["engine"], run["dataset"], run["stream"], run["device"]
    first, steps, rows, names = run["first"], run["steps"], run["rows"], run["names"]
    out: Path = run["out"]
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    schedule, optimizers = run["settings"]["lr_schedule"], engine.optimizer_states()
    if size > 1:
        D.average_gradients(optimizers)
    engine.train()
    t0 = time.perf_counter()
    done = first - 1
    with tqdm(range(first, steps + 1), unit="step", file=sys.stderr, mininterval=0.5, disable=rank > 0) as bar:
        for step in bar:
            apply_lr_schedule(optimizers, schedule, step, run["settings"]["schedule_steps"])
            batch = next(stream)
            losses = engine.training_step(D.shard(batch, rank, size) if size > 1 else batch, step)
            out_of_time = args.max_seconds is not None and time.perf_counter() - t0 >= args.max_seconds
            if size > 1:  # every process logs the same means and stops at the same step
                losses = D.mean_losses({**losses, "__stop__": float(out_of_time)}, device)
                out_of_time = losses.pop("__stop__") > 0
            if step % run["log_every"] == 0 or step == steps or out_of_time:  # the last step is always logged
                names.extend(k for k in losses if k not in names)
                rows.append({"step": step, **losses})
                shown = {k: f"{v:.4g}" for k, v in losses.items() if "/" not in k}
                bar.set_postfix(shown, refresh=False)
            done = step
            if out_of_time:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    settings = {**run["settings"], "planned_steps": steps}
    state = R.capture(stream, run=settings, hyper_history=run["hyper_history"])  # before anything else draws
    if rank > 0:  # rank 0 writes the run (the weights are the same everywhere)
        D.barrier()
        D.close()
        sys.stdout.flush()
        sys.stderr.flush()
        # Leave without the interpreter's teardown: a c10d (Gloo) thread still joinable there aborts the process
        # now and then ("terminate called without an active exception"), failing a run that is complete.
        os._exit(0)
    try:
        return _write_run(args, run, engine, dataset, stream, device, out, rows, names, done, first, seconds, state,
                          settings)
    finally:
        if size > 1:
            D.barrier()
            D.close()


def _write_run(args: argparse.Namespace, run: dict, engine: Any, dataset: Any, stream: Any, device: Any, out: Path,
               rows: list, names: list, done: int, first: int, seconds: float, state: Any, settings: dict) -> int:
    """Write a trained run's metrics.csv, checkpoint (with its resume state), held-out likelihood, samples and run.json."""
    from engines.lib.checkpoint import read_manifest, save_checkpoint

    with open(out / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["step", *names], restval="")
        writer.writeheader()
        writer.writerows(rows)
    save_checkpoint(engine, out / "model.safetensors", step=done, data_spec=run["data_spec"],
                    image_size=run["image_size"], extra={"seed": settings["seed"], "batch_size": settings["batch_size"]},
                    resume=state)
    held_out = _held_out(engine, dataset, args.iwae_k)
    _write_samples(engine, out / "samples.png", 64, settings["seed"])
    trained = done - first + 1
    n_train = len(dataset.train_indices)
    batch = settings["batch_size"]
    record = {
        **read_manifest(out / "model.safetensors"),
        "train": {
            "steps": done,
            "batch_size": batch,
            "epochs": done * batch / max(1, n_train),
            "seconds": seconds,
            "images_per_sec": trained * batch / max(seconds, 1e-9),
            "device": str(device),
            "threads": run["threads"],
            "final": rows[-1] if rows else {},
            **({"resumed_from": first - 1} if args.resume is not None else {}),
        },
        "held_out": held_out,
    }
    record.pop("resume", None)  # generator states: in the checkpoint, not in the summary
    extra = _held_out_terms(engine, dataset)
    if extra:  # e.g. an RBM's free energy of held-out and training images, a Helmholtz machine's twin's -ELBO
        record["held_out_terms"] = extra
    if "ais" in engine.capabilities.likelihood:  # an energy model: the log Z its held-out figure used, with its error
        log_z, se = engine.log_z()
        record["log_z"] = {"nats": log_z, "stderr": se, "method": "exact" if se == 0 else "ais"}
    (out / "run.json").write_text(json.dumps(record, indent=2))
    msg = f"{trained} steps in {seconds:.1f} s ({record['train']['images_per_sec']:.0f} images/s), step {done}"
    if held_out:
        from engines.shared.results import HeldOutLikelihood

        msg += "; " + HeldOutLikelihood.from_json(held_out).summary()
    print(msg + f"; wrote {out}/", file=sys.stderr)
    from engines.shared.runs import register_run

    register_run(out)  # listed in the window's Runs dock
    return 0


def _fresh(args: argparse.Namespace) -> dict[str, Any]:
    """A new run's engine, data and stream (``train`` without ``--resume``)."""
    import torch

    from engines.data import load_dataset
    from engines.lib.training import BatchStream, configure_threads, pick_device
    from engines.shared.registry import create_engine

    from engines.lib import distributed as D

    overrides = _config_overrides(args)  # a bad --set fails here, before the data loads
    dataset = load_dataset(args.data, args.image_size)
    rank, size, _ = D.world()
    device = D.init(args.device) if size > 1 else pick_device(args.device)
    threads = configure_threads(device, args.threads)
    torch.manual_seed(args.seed)  # the same initial weights in every process
    engine = create_engine(args.model, dataset.info, **overrides).to(device)
    if rank > 0:
        torch.manual_seed(args.seed + rank)  # each process its own noise (rank 0 as a single process would)
    batch = args.batch_size * size  # every process draws the same global batch and trains on its share
    n_train = len(dataset.train_indices)
    if args.epochs is not None:
        steps = max(1, math.ceil(args.epochs * n_train / batch))
    else:
        steps = args.steps if args.steps is not None else 1000
    if rank == 0:
        print(f"{dataset.summary()}", file=sys.stderr)
        print(f"{args.model} on {device} ({threads} threads{f' x {size} processes' if size > 1 else ''}): {steps} "
              f"steps of batch {batch}", file=sys.stderr)
    stream = BatchStream(dataset, batch, args.seed, device, with_labels=engine.capabilities.conditional)
    if stream.batch_size != batch:
        raise LatentStudioError(f"{args.data}: {n_train} training examples are fewer than one batch of {batch}")
    settings = {"seed": args.seed, "batch_size": batch, "log_every": args.log_every, "threads": threads,
                "lr_schedule": args.lr_schedule or "constant", "schedule_steps": steps, "nproc": size}
    return {"engine": engine, "dataset": dataset, "stream": stream, "device": device, "threads": threads,
            "first": 1, "steps": steps, "rows": [], "names": [], "out": args.out, "data_spec": args.data,
            "image_size": args.image_size, "settings": settings, "log_every": args.log_every, "hyper_history": []}


def _resumed(args: argparse.Namespace) -> dict[str, Any]:
    """A saved run's engine, data and stream, put back exactly where they stood (``train --resume DIR``).

    Raises
    ------
    LatentStudioError
        No checkpoint in DIR, one saved without resume state, or nothing left to train without ``--steps``.
    """
    from engines.data import load_dataset
    from engines.lib import resume as R
    from engines.lib.checkpoint import load_checkpoint, read_manifest, read_resume_state
    from engines.lib.training import LR_SCHEDULES, BatchStream, configure_threads, pick_device

    folder: Path = args.resume
    ckpt = folder / "model.safetensors" if folder.is_dir() else folder
    manifest = read_manifest(ckpt)
    state = read_resume_state(ckpt)
    if state is None:
        raise LatentStudioError(f"{ckpt}: saved without the state an exact resume needs (by an older version, "
                                "or an export's weights); open it in the studio or train a new run")
    settings = state.run
    try:
        seed, batch_size = int(settings["seed"]), int(settings["batch_size"])
        planned, log_every = int(settings.get("planned_steps", 0)), int(settings.get("log_every", 1))
    except (KeyError, TypeError, ValueError) as exc:
        raise LatentStudioError(f"{ckpt}: the run's saved settings are malformed ({exc})") from exc
    step = int(manifest["step"])
    more = args.steps if args.steps is not None else planned - step
    if more < 1:
        raise LatentStudioError(f"{ckpt}: the run did all {planned} steps it planned; say how many more with --steps N")
    spec, image_size = manifest.get("data_spec"), manifest.get("image_size")
    if not isinstance(spec, str) or not spec:
        raise LatentStudioError(f"{ckpt}: the manifest names no data set to resume on")
    from engines.lib import distributed as D

    dataset = load_dataset(spec, image_size)
    rank, size, _ = D.world()
    if batch_size % size:
        raise LatentStudioError(f"{ckpt}: the run's batch of {batch_size} does not split over {size} processes")
    device = D.init(args.device) if size > 1 else pick_device(args.device)
    wanted = args.threads if args.threads is not None else settings.get("threads")
    threads = configure_threads(device, int(wanted) if wanted else None)
    engine, manifest = load_checkpoint(ckpt, device=device, with_optimizer=True)
    stream = BatchStream(dataset, batch_size, seed, device, with_labels=engine.capabilities.conditional)
    R.restore_stream(state, stream, str(ckpt))
    R.restore_rng(state, str(ckpt))
    if rank > 0:
        import torch

        torch.manual_seed(seed + rank + step)
    out = args.out if args.out is not None else (folder if folder.is_dir() else folder.parent)
    names, rows = _read_metrics(out / "metrics.csv", step)
    if rank == 0:
        print(f"{dataset.summary()}", file=sys.stderr)
        print(f"{engine.name} on {device} ({threads} threads{f' x {size} processes' if size > 1 else ''}): resuming "
              f"at step {step} for {more} more steps of batch {batch_size}", file=sys.stderr)
    settings = {"lr_schedule": "constant", "schedule_steps": planned, **settings, "threads": threads, "nproc": size}
    if settings["lr_schedule"] not in LR_SCHEDULES:
        raise LatentStudioError(f"{ckpt}: unknown learning-rate schedule {settings['lr_schedule']!r} in the run")
    return {"engine": engine, "dataset": dataset, "stream": stream, "device": device, "threads": threads,
            "first": step + 1, "steps": step + more, "rows": rows, "names": names, "out": out, "data_spec": spec,
            "image_size": image_size, "settings": settings, "log_every": log_every,
            "hyper_history": state.hyper_history}


def _read_metrics(path: Path, upto: int) -> tuple[list[str], list[dict[str, float]]]:
    """The terms and rows of a run's ``metrics.csv`` up to step ``upto`` (later rows belong to a lost future)."""
    from engines.shared.runs import read_metrics_csv

    if not path.is_file():
        return [], []
    steps, terms = read_metrics_csv(path)
    rows = []
    for i, step in enumerate(steps):
        if step <= upto:
            rows.append({"step": step, **{k: v[i] for k, v in terms.items() if not math.isnan(v[i])}})
    return list(terms), rows


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
