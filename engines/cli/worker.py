"""The worker's command line: ``python -m engines.cli.worker --connect HOST:PORT``, or ``--listen [HOST:]PORT``.

With ``--connect`` the window starts it (:class:`engines.shared.link.WorkerLink`); it connects back, then
serves (:class:`engines.worker.serve.Worker`) until Shutdown or until the window goes away. With
``--listen`` (``latent-studio worker --listen PORT`` on a GPU server) it waits for windows that know the
token it prints, and serves them one after another.
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
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--connect", metavar="HOST:PORT", help="address the window listens on (the window starts it so)")
    where.add_argument("--listen", metavar="[HOST:]PORT",
                       help="wait for windows on this address (127.0.0.1 unless a host is given) and print a token "
                       "they connect with: latent-studio studio --connect HOST:PORT --token TOKEN")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="with --listen: train the window's model data-parallel in N processes (one GPU each, NCCL; "
                   "or Gloo on CPUs), started by torchrun's launcher; process 0 talks to the window")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: all cores but one on the CPU)")
    p.add_argument("--device", help="force a device: cpu, cuda, cuda:N or mps (default: cuda, then mps, then cpu)")
    return p


def listen_address(text: str) -> tuple[str, int]:
    """``"PORT"`` (on 127.0.0.1) or ``"HOST:PORT"`` as a (host, port) tuple.

    Raises
    ------
    ConfigError
        Not a port in [0, 65535] (0: any free port).
    """
    host, sep, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535 or (sep and not host):
        raise ConfigError(f"--listen wants PORT or HOST:PORT, not {text!r}")
    return (host.strip("[]") if sep else "127.0.0.1"), int(port)


def serve_listening(address: tuple[str, int], device, threads: int, token: str | None = None,  # noqa: ANN001
                    out=None, lockstep=None) -> None:  # noqa: ANN001
    """Listen on ``address`` and serve one window at a time, for ever (Ctrl+C ends it).

    A window proves it holds the token (``multiprocessing.connection``'s HMAC challenge: the token never
    crosses the wire); a wrong token or a silent peer is refused and logged on stderr, and the worker goes
    on listening. When a window closes, its session ends (autosaved) and the next window is served.
    """
    import secrets
    from multiprocessing.connection import Listener

    from engines.shared.link import AuthListener

    out = out or sys.stdout
    token = token or secrets.token_urlsafe(24)
    listener = Listener(address, family="AF_INET")
    host, port = listener.address
    accepting = AuthListener(listener, token.encode("utf-8"), refused=lambda peer, why: print(
        f"latent-studio worker: refused a connection from {peer[0]}:{peer[1]}: {why}", file=sys.stderr, flush=True))
    where = device if lockstep is None else lockstep.label
    print(f"Latent Studio worker on {where} ({threads} threads), listening on {host}:{port}", file=out)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print("  listening beyond this machine: the link is authenticated but not encrypted; prefer 127.0.0.1 "
              "and an SSH tunnel (ssh -L)", file=out)
    print(f"  token: {token}", file=out)
    print(f"  connect with: latent-studio studio --connect {host}:{port} --token {token}", file=out, flush=True)
    try:
        while True:
            conn = accepting.next()
            if conn is None:
                return
            set_nodelay(conn)
            peer = accepting.listener.last_accepted
            print(f"latent-studio worker: a window connected from {peer[0]}:{peer[1]}", file=sys.stderr, flush=True)
            Worker(conn, device, threads, lockstep=lockstep).serve()
            print("latent-studio worker: the window left; listening again", file=sys.stderr, flush=True)
    finally:
        accepting.close()
        if lockstep is not None:
            lockstep.close()


def _launch(args: argparse.Namespace, argv: list[str] | None) -> int:
    """``--listen ... --nproc N``: this same command in N processes, torchrun's launcher taking this process's place."""
    from engines.lib.distributed import launch_command

    cmd = launch_command("engines.cli.worker", list(sys.argv[1:] if argv is None else argv), args.nproc, args.threads)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, cmd)  # torchrun in this process's place: a signal to it reaches every worker
    return 1  # not reached


def main(argv: list[str] | None = None) -> int:
    """Run the worker; returns the process exit code (0 after Shutdown or when the window went away)."""
    from engines.lib.training import configure_threads, pick_device

    args = build_parser().parse_args(argv)
    if args.nproc != 1 and (args.listen is None or not 1 <= args.nproc <= 1024):
        print("latent-studio worker: --nproc goes with --listen and is from 1 to 1024", file=sys.stderr)
        return 2
    if args.listen is not None:
        from engines.lib import distributed as D

        if args.nproc > 1 and not D.is_distributed():
            return _launch(args, argv)
        lockstep = None
        try:
            address = listen_address(args.listen)
            device = D.init(args.device) if D.is_distributed() else pick_device(args.device)
            threads = configure_threads(device, args.threads)
        except LatentStudioError as exc:
            print(f"latent-studio worker: {exc}", file=sys.stderr)
            return 2
        sys.setswitchinterval(0.001)
        if D.is_distributed():
            from engines.worker.lockstep import Lockstep, follow

            if D.world()[0] > 0:
                follow(device)
                return 0
            lockstep = Lockstep(device)
        try:
            serve_listening(address, device, threads, os.environ.pop("LATENT_STUDIO_TOKEN", None), lockstep=lockstep)
        except OSError as exc:
            print(f"latent-studio worker: cannot listen on {args.listen} ({exc})", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0
        return 0
    key_hex = os.environ.pop(AUTHKEY_ENV, "")  # out of the environment: no child (ffmpeg) inherits it
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
