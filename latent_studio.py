"""The ``latent-studio`` command: opens the studio, or runs a headless command.

This module sits outside both packages on purpose: it dispatches to :mod:`studio` (the window,
never torch) or :mod:`engines.cli.commands` (torch, never Qt), so neither package imports the other.
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    """The full command-line parser (cheap: imports neither torch nor Qt)."""
    from engines.cli.commands import add_commands

    parser = argparse.ArgumentParser(
        prog="latent-studio",
        description="Latent Studio: train deep generative models visually, explore their latent space, export images. "
        "With no command, opens the studio window.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("studio", help="open the studio window (the default)")
    p.add_argument("--data", default="shapes", help="data spec to start with (default %(default)s)")
    p.add_argument("--model", default="beta-vae", help="model to start with (default %(default)s)")
    p.add_argument("--connect", metavar="HOST:PORT",
                   help="drive a worker started elsewhere with latent-studio worker --listen (give its --token)")
    p.add_argument("--token", help="the token the remote worker printed")
    p.set_defaults(func=_studio)
    p = sub.add_parser("worker", help="run a worker that windows connect to (on a GPU server, say)",
                       description="Listen for studio windows on [HOST:]PORT (127.0.0.1 unless a host is given), "
                       "print a one-time token, and train and host models for the window that connects with it. "
                       "Reach it from another machine through an SSH tunnel: ssh -L PORT:127.0.0.1:PORT server.")
    p.add_argument("--listen", required=True, metavar="[HOST:]PORT", help="where to listen (port 0: any free port)")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="train the window's model data-parallel in N processes (one GPU each), process 0 talking "
                   "to the window")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: all cores but one on the CPU)")
    p.add_argument("--device", help="force a device: cpu, cuda, cuda:N or mps (default: cuda, then mps, then cpu)")
    p.set_defaults(func=_worker)
    p = sub.add_parser(
        "snapshot",
        help="open the real window offscreen, train N steps through the real worker, save a screenshot, exit",
    )
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--data", default="digits", help="data spec (default %(default)s)")
    p.add_argument("--model", default="beta-vae", help="model (default %(default)s)")
    p.add_argument("--steps", type=int, default=300, help="training steps before the screenshot (default %(default)s)")
    p.add_argument("--panel", default="Losses", choices=["Losses", "Coverage", "Disentanglement", "Runs", "Messages"],
                   help="bottom panel shown in front (default %(default)s)")
    p.add_argument("--size", default="1400x900", help="window size WxH in pixels (default %(default)s)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds before giving up (default %(default)s)")
    p.add_argument("--tab", default="Samples", choices=["Samples", "Traversal", "Morph", "Pixels", "Flow", "Directions", "Map"],
                   help="central tab shown (default %(default)s)")
    p.set_defaults(func=_snapshot)
    add_commands(sub)
    return parser


def _worker(args: argparse.Namespace) -> int:
    from engines.cli.worker import main as worker_main

    extra = [flag for name in ("threads", "device", "nproc") if getattr(args, name) is not None
             for flag in (f"--{name}", str(getattr(args, name)))]
    return worker_main(["--listen", args.listen, *extra])


def _studio(args: argparse.Namespace) -> int:
    if (args.connect is None) != (args.token is None):
        print("latent-studio studio: --connect and --token go together", file=sys.stderr)
        return 2
    from studio.preflight import display_problem

    problem = display_problem()  # before Qt, whose own abort names the wrong library
    if problem is not None:
        print(f"latent-studio: {problem}", file=sys.stderr)
        return 2
    from studio.app import main as studio_main

    return studio_main(data=args.data, model=args.model, remote=args.connect, token=args.token)


def _snapshot(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from studio.snapshot import run_snapshot

    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        print(f"latent-studio snapshot: --size wants WxH, such as 1400x900, not {args.size!r}", file=sys.stderr)
        return 2
    return run_snapshot(args.out, data=args.data, model=args.model, steps=args.steps, panel=args.panel,
                        tab=None if args.tab == "Samples" else args.tab, size=(w, h),
                        timeout=args.timeout)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``latent-studio`` console script; returns the exit code."""
    from engines.shared.errors import LatentStudioError

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["studio", *argv]
    args = parser.parse_args(argv)
    args.argv = argv  # train --nproc starts the same command again in each process
    try:
        return int(args.func(args) or 0)
    except LatentStudioError as exc:
        print(f"latent-studio {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
