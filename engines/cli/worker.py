"""The worker's command line: ``python -m engines.cli.worker --connect HOST:PORT``.

The window starts it (:class:`engines.shared.link.WorkerLink`); it connects back, then serves
(:class:`engines.worker.serve.Worker`) until Shutdown or until the window goes away.
"""

from __future__ import annotations

import argparse
import os
import sys
from multiprocessing.connection import Client

from engines.shared.errors import ConfigError, LatentStudioError
from engines.shared.link import AUTHKEY_ENV, set_nodelay
from engines.worker.serve import Worker, parse_address


def build_parser() -> argparse.ArgumentParser:
    """The worker's command line (it is started by the window, rarely by hand)."""
    p = argparse.ArgumentParser(
        prog="python -m engines.cli.worker",
        description="Latent Studio's worker: connects back to the window, trains and hosts models. "
        f"The connection's authkey is read (hex) from the {AUTHKEY_ENV} environment variable.",
    )
    p.add_argument("--connect", required=True, metavar="HOST:PORT", help="address the window listens on")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: all cores but one on the CPU)")
    p.add_argument("--device", help="force a device: cpu, cuda, cuda:N or mps (default: cuda, then mps, then cpu)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the worker; returns the process exit code (0 after Shutdown or when the window went away)."""
    from engines.lib.training import configure_threads, pick_device

    args = build_parser().parse_args(argv)
    key_hex = os.environ.get(AUTHKEY_ENV, "")
    try:
        address = parse_address(args.connect)
        authkey = bytes.fromhex(key_hex)
        if not authkey:
            raise ConfigError(f"the {AUTHKEY_ENV} environment variable (the link's authkey, hex) is not set")
        device = pick_device(args.device)
        threads = configure_threads(device, args.threads)
    except (LatentStudioError, ValueError) as exc:
        print(f"latent-studio worker: {exc}", file=sys.stderr)
        return 2
    sys.setswitchinterval(0.001)  # hand the GIL to the host thread quickly while the trainer runs Python
    try:
        conn = Client(address, authkey=authkey)
    except (OSError, EOFError) as exc:
        print(f"latent-studio worker: cannot connect to {args.connect} ({exc})", file=sys.stderr)
        return 1
    set_nodelay(conn)
    Worker(conn, device, threads).serve()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Leave at once: daemon threads may be inside torch, and interpreter teardown could wait on them.
    os._exit(code)
