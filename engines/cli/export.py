"""Headless export commands: ``latent-studio interpolate``, ``traverse`` and ``render``.

Each writes its output (PNG, GIF or MP4 by the suffix of ``--out``) and a JSON sidecar with the
resolved latents (:mod:`engines.lib.export`), so ``latent-studio render OUT.json`` re-renders it without
the original SPECs. Building the parser is cheap; torch is imported only when a command runs.

A SPEC names one latent vector:

- an integer seed: one draw from the model's own prior, ``engine.prior_sample(1,
  torch.Generator(device).manual_seed(seed))`` (standard normal for most engines);
- ``data:N``: held-out example N of the run's data set (the checkpoint manifest's data spec),
  through the encoder or by projection as below;
- an image file path: loaded with :func:`engines.data.files.load_image_file` at the model's
  size, then :func:`engines.lib.projection.to_latent`: the encoder's posterior mean where the model
  has one, else projection (optimising z through the decoder for ``--project-steps`` steps, with
  a tqdm progress bar).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engines.shared.errors import ExportError

#: Adam steps of a projection when the model has no encoder (``--project-steps``).
PROJECT_STEPS = 200


def add_export_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``interpolate``, ``traverse`` and ``render`` on ``sub`` (the ``latent-studio`` subparsers)."""
    p = sub.add_parser(
        "interpolate",
        help="decode a latent path between SPECs into a PNG strip, GIF or MP4 (and a sidecar)",
        description="A SPEC is an integer seed (a prior draw), data:N (held-out example N) or an image file.",
    )
    _common(p)
    p.add_argument("--from", dest="start", required=True, metavar="SPEC", help="first keyframe")
    p.add_argument("--to", dest="end", required=True, metavar="SPEC", help="last keyframe")
    p.add_argument("--via", action="append", default=[], metavar="SPEC", help="keyframe in between (repeatable)")
    p.add_argument("--frames", type=int, required=True, help="number of frames")
    p.add_argument("--slerp", action="store_true", help="spherical interpolation (same as --method slerp)")
    p.add_argument("--method", choices=["lerp", "slerp", "spline"], help="curve between keyframes (default lerp)")
    p.add_argument("--constant-speed", action="store_true", help="equal steps along the path's arc length")
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser(
        "traverse",
        help="sweep latent dimensions around a base latent: PNG grid (one row per dimension), GIF or MP4",
    )
    _common(p)
    p.add_argument("--from", dest="start", metavar="SPEC", help="base latent (default: the prior centre)")
    p.add_argument("--dims", type=int, nargs="+", help="dimensions to sweep (default: every continuous one)")
    p.add_argument("--steps", type=int, default=9, help="values per dimension (default %(default)s)")
    p.add_argument("--low", type=float, default=-3.0, help="first value (default %(default)s)")
    p.add_argument("--high", type=float, default=3.0, help="last value (default %(default)s)")
    p.add_argument("--direction", action="append", metavar="FILE:K",
                   help="sweep direction K (from 1) of a direction set (latent-studio directions --json FILE) "
                        "instead of dimensions, in its own units; repeatable, one row each; FILE alone: all of them")
    p.set_defaults(func=cmd_traverse)

    p = sub.add_parser("render", help="re-render an export from its JSON sidecar (checks the checkpoint hash)")
    p.add_argument("sidecar", type=Path, help="the export's .json sidecar")
    p.add_argument("--out", type=Path, help="file to write (default: the sidecar's own output)")
    p.add_argument("--device", choices=["cpu", "cuda", "mps"], help="torch device (default: the export's, else cpu)")
    p.set_defaults(func=cmd_render)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, type=Path, help="run folder (model.safetensors inside) or .safetensors file")
    p.add_argument("--out", required=True, type=Path, help="output file: .png, .gif or .mp4")
    p.add_argument("--fps", type=float, default=12, help="frames per second of a GIF or MP4 (default %(default)s)")
    p.add_argument("--size", type=int,
                   help="longest side of each frame (each tile of a PNG) in px; 0: the model's own size "
                        "(default: 256 for GIF and MP4, 96 for PNG tiles)")
    p.add_argument("--lanczos", action="store_true", help="resize with Lanczos instead of nearest-neighbour")
    p.add_argument("--labels", action="store_true", help="write a label under each frame")
    p.add_argument("--project-steps", type=int, default=PROJECT_STEPS,
                   help="projection steps for an image SPEC on a model without encoder (default %(default)s)")
    p.add_argument("--device", choices=["cpu", "cuda", "mps"], help="torch device (default: cuda, then mps, then cpu)")


def _load(args: argparse.Namespace) -> tuple[Any, dict, Path]:
    """(engine in eval mode, manifest, checkpoint file) of ``--run``."""
    from engines.lib.checkpoint import load_checkpoint
    from engines.lib.export import checkpoint_file
    from engines.lib.training import configure_threads, pick_device

    ck = checkpoint_file(args.run)
    if not ck.is_file():
        raise ExportError(f"{args.run}: no checkpoint (expected a .safetensors file or a run folder holding model.safetensors)")
    device = pick_device(args.device)
    configure_threads(device)
    engine, manifest = load_checkpoint(ck, device=str(device), with_optimizer=False)
    engine.eval()
    return engine, manifest, ck


def resolve_spec(engine: Any, manifest: dict, spec: str, project_steps: int = PROJECT_STEPS) -> list[float]:
    """The latent vector (D floats) a SPEC names; see the module docstring.

    Raises
    ------
    ExportError
        A SPEC that is none of the three forms, or a held-out index out of range.
    DataError
        An image file that is missing or unreadable (the message names it), or a data set that
        cannot be loaded.
    ConfigError
        A projection that cannot run.
    """
    import numpy as np
    import torch

    spec = str(spec).strip()
    try:
        seed = int(spec)
    except ValueError:
        seed = None
    if seed is not None:
        if not 0 <= seed < 2**63:
            raise ExportError(f"seed SPEC must lie in [0, 2**63), not {seed}")
        gen = torch.Generator(device=engine.device).manual_seed(seed)
        with torch.no_grad():
            return [float(v) for v in engine.prior_sample(1, gen)[0].float().cpu()]
    if spec.startswith("data:"):
        from engines.data import load_dataset

        try:
            index = int(spec[5:])
        except ValueError:
            raise ExportError(f"bad SPEC {spec!r}: data:N needs an integer N") from None
        dataset = load_dataset(manifest["data_spec"], manifest.get("image_size"))
        pool = dataset.test_indices
        if not 0 <= index < len(pool):
            raise ExportError(f"bad SPEC {spec!r}: {manifest['data_spec']} has {len(pool)} held-out examples")
        x = np.asarray(dataset.get(pool[index : index + 1]), np.float32)
    elif Path(spec).suffix:
        from engines.shared.image_files import load_image_file

        if engine.data.kind != "image":
            raise ExportError(f"{spec}: an image SPEC needs an image model; this one models 2-D points")
        c, h, _ = engine.data.shape
        x = load_image_file(spec, c, h)[None]
    else:
        raise ExportError(f"bad SPEC {spec!r}: use an integer seed, data:N or an image file path")
    return [float(v) for v in _to_latent(engine, x, project_steps)[0].float().cpu()]


def _to_latent(engine: Any, x: Any, steps: int) -> Any:
    import torch
    from tqdm import tqdm

    from engines.lib.projection import to_latent

    if steps < 0:
        raise ExportError(f"--project-steps must be >= 0, not {steps}")
    with tqdm(total=steps, unit="step", desc="projecting", file=sys.stderr, disable=None, leave=False) as bar:
        def callback(done: int, loss: float) -> None:
            bar.update(done - bar.n)
            bar.set_postfix(loss=f"{loss:.4g}", refresh=False)

        return to_latent(engine, torch.as_tensor(x), steps=steps, callback=callback,
                         generator=torch.Generator(device=engine.device).manual_seed(0))


def _settings(args: argparse.Namespace) -> dict:
    size = args.size if args.size is not None else (96 if args.out.suffix.lower() == ".png" else 256)
    return {"fps": args.fps, "size": size or None, "resample": "lanczos" if args.lanczos else "nearest",
            "labels": bool(args.labels)}


def _check_out(args: argparse.Namespace) -> None:
    """``--out`` checked before anything loads: an export is a .gif, .mp4 or .png.

    Raises
    ------
    ExportError
        Another suffix, named as the user typed it (not as the sidecar beside it).
    """
    from engines.shared.media import SUFFIXES

    if args.out.suffix.lower() not in SUFFIXES:
        raise ExportError(f"--out {args.out}: an export is one of {', '.join(SUFFIXES)}, not {args.out.suffix or 'no suffix'}")


def _run_export(engine: Any, kind: str, args: argparse.Namespace, ck: Path, latents: dict) -> int:
    from tqdm import tqdm

    from engines.lib.export import export

    with tqdm(unit="latent", desc=kind, file=sys.stderr, disable=None, leave=False) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        side = export(engine, kind, args.out, ck, latents, _settings(args), progress=progress)
    print(f"wrote {args.out} and {side}", file=sys.stderr)
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    """See the ``interpolate`` sub-command's help."""
    _check_out(args)
    method = args.method or ("slerp" if args.slerp else "lerp")
    if args.slerp and args.method not in (None, "slerp"):
        raise ExportError(f"--slerp contradicts --method {args.method}")
    engine, manifest, ck = _load(args)
    specs = [args.start, *args.via, args.end]
    keys = [resolve_spec(engine, manifest, s, args.project_steps) for s in specs]
    latents = {"keyframes": keys, "method": method, "frames": args.frames, "constant_speed": bool(args.constant_speed)}
    return _run_export(engine, "interpolation", args, ck, latents)


def cmd_traverse(args: argparse.Namespace) -> int:
    """See the ``traverse`` sub-command's help."""
    _check_out(args)
    engine, manifest, ck = _load(args)
    z = None if args.start is None else resolve_spec(engine, manifest, args.start, args.project_steps)
    latents = {"z": z, "index": None, "dims": args.dims, "steps": args.steps, "low": args.low, "high": args.high}
    if args.direction:
        if args.dims:
            raise ExportError("--direction and --dims both name the rows: give one of them")
        vectors, names = directions_from(args.direction, engine.latent.dim)
        latents.update(directions=vectors, names=names)
    return _run_export(engine, "traversal", args, ck, latents)


def directions_from(specs: list[str], dim: int) -> tuple[list[list[float]], list[str]]:
    """The scaled direction vectors and names ``FILE:K`` specs pick (K from 1; ``FILE`` alone: every one).

    Raises
    ------
    ExportError
        A file that is not a direction set, K out of range, or directions of another width than ``dim``.
    """
    from engines.shared.directions import DirectionSet
    from engines.shared.errors import ConfigError

    vectors, names = [], []
    for spec in specs:
        path, _, k = spec.rpartition(":") if ":" in spec and spec.rpartition(":")[2].isdigit() else (spec, "", "")
        try:
            found = DirectionSet.read(path)
        except ConfigError as e:
            raise ExportError(str(e)) from None
        if found.dim != dim:
            raise ExportError(f"{path}: directions of width {found.dim}; the model's z has {dim}")
        picks = range(len(found)) if not k else [int(k) - 1]
        for i in picks:
            if not 0 <= i < len(found):
                raise ExportError(f"{path}: direction {i + 1} asked for; the set holds 1 to {len(found)}")
            vectors.append([float(x) for x in found.vectors[i] * found.scales[i]])
            names.append(found.names[i])
    return vectors, names


def cmd_render(args: argparse.Namespace) -> int:
    """See the ``render`` sub-command's help."""
    from engines.lib.export import render

    path = render(args.sidecar, args.out, device=args.device)
    print(f"wrote {path}", file=sys.stderr)
    return 0
