"""Starting the worker process and talking to it: the window's side of the link, without Qt or torch.

The window listens on a local socket (``multiprocessing.connection.Listener`` with a random
authkey), starts ``python -m engines.cli.worker`` as a fresh interpreter (the spawn start method: no
fork, nothing inherited but the command line and environment) and accepts its connection. Only
``send_bytes``/``recv_bytes`` frames of :mod:`engines.shared.protocol` cross it, never pickle, so the same
link works with a worker on another machine over TCP.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection, Listener

from engines.shared import protocol
from engines.shared.errors import ProtocolError

#: Environment variable through which the worker receives the authkey (hex), never the command line.
AUTHKEY_ENV = "LATENT_STUDIO_AUTHKEY"


def set_nodelay(conn: Connection) -> None:
    """Turn off Nagle's algorithm on a TCP connection (both ends call this).

    ``Connection.send_bytes`` writes the length and the payload of a frame over 16 KiB in two
    writes; with Nagle on, the tail then waits for the peer's delayed ACK (about 40 ms), which
    turns a 2 ms 64x64 decode round trip into 45 ms. A pipe or a closed connection: nothing to do.
    """
    try:
        with socket.fromfd(conn.fileno(), socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, ValueError):
        pass


class WorkerDied(ConnectionError):
    """The worker process exited or the connection broke."""


class WorkerLink:
    """A worker process and the connection to it.

    Parameters
    ----------
    threads : int or None
        Torch threads for the worker; None lets the worker choose (all cores but one on CPU).
    device : str or None
        Force a device ("cpu", "cuda", "mps"); None picks cuda, then mps, then cpu.
    connect_timeout : float
        Seconds to wait for the worker to connect (it imports torch first).

    Raises
    ------
    WorkerDied
        From :meth:`start` if the worker exits or does not connect in time.
    """

    def __init__(self, threads: int | None = None, device: str | None = None, connect_timeout: float = 120.0) -> None:
        self.threads = threads
        self.device = device
        self.connect_timeout = connect_timeout
        self.process: subprocess.Popen | None = None
        self.conn: Connection | None = None
        self._send_lock = threading.Lock()

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker and wait (up to ``connect_timeout``) until it has connected."""
        authkey = secrets.token_bytes(32)
        listener = Listener(("127.0.0.1", 0), family="AF_INET", authkey=authkey)
        host, port = listener.address
        cmd = [sys.executable, "-m", "engines.cli.worker", "--connect", f"{host}:{port}"]
        if self.threads is not None:
            cmd += ["--threads", str(self.threads)]
        if self.device is not None:
            cmd += ["--device", self.device]
        env = dict(os.environ, **{AUTHKEY_ENV: authkey.hex()})
        self.process = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
        accepted: list[Connection] = []
        failure: list[BaseException] = []

        def accept() -> None:
            try:
                accepted.append(listener.accept())
            except BaseException as exc:  # noqa: BLE001 - reported below
                failure.append(exc)

        t = threading.Thread(target=accept, name="worker-accept", daemon=True)
        t.start()
        deadline = time.monotonic() + self.connect_timeout
        while t.is_alive() and time.monotonic() < deadline and self.process.poll() is None:
            t.join(0.05)
        if not accepted:
            code = self.process.poll()
            listener.close()
            self.kill()
            why = f"exited with code {code}" if code is not None else "did not connect in time"
            if failure:
                why += f" ({failure[0]})"
            raise WorkerDied(f"the worker process {why}")
        listener.close()
        self.conn = accepted[0]
        set_nodelay(self.conn)

    def is_alive(self) -> bool:
        """Whether the process is still running."""
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def kill(self) -> None:
        """Kill the process at once (no goodbye) and close the connection."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self._close_conn()

    def close(self, timeout: float = 10.0) -> None:
        """Ask the worker to shut down, wait up to ``timeout`` seconds, then kill it."""
        if self.conn is not None and self.is_alive():
            try:
                self.send(protocol.Shutdown())
            except WorkerDied:
                pass
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def _close_conn(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None

    # -- messages --------------------------------------------------------------------------------
    def send(self, command: protocol.Command) -> None:
        """Send one command (thread-safe).

        Raises
        ------
        WorkerDied
            If the connection is closed or broken.
        """
        frame = protocol.encode(command)
        conn = self.conn
        if conn is None:
            raise WorkerDied("no worker connection")
        try:
            with self._send_lock:
                conn.send_bytes(frame)
        except (OSError, EOFError, ValueError) as exc:
            raise WorkerDied(f"the worker connection broke ({exc})") from None

    def recv(self, timeout: float | None = None) -> protocol.Event | None:
        """The next event, or None if none arrives within ``timeout`` seconds (None waits forever).

        Raises
        ------
        WorkerDied
            If the worker exited or the connection broke.
        ProtocolError
            If the worker sent a frame that does not decode.
        """
        conn = self.conn
        if conn is None:
            raise WorkerDied("no worker connection")
        try:
            if timeout is not None and not conn.poll(timeout):
                return None
            frame = conn.recv_bytes(protocol.MAX_FRAME_BYTES)
        except (OSError, EOFError, ValueError) as exc:
            code = None if self.process is None else self.process.poll()
            raise WorkerDied(f"the worker connection closed (exit code {code}; {type(exc).__name__})") from None
        event = protocol.decode(frame)
        if not isinstance(event, protocol.Event):
            raise ProtocolError(f"the worker sent a command, not an event: {type(event).__name__}")
        return event

    def wait_for(self, event_type: type, timeout: float = 60.0, collect: list | None = None) -> protocol.Event:
        """Receive events until one of ``event_type`` arrives; others go to ``collect`` if given.

        Raises
        ------
        TimeoutError
            If none arrives within ``timeout`` seconds.
        RuntimeError
            If an :class:`protocol.Error` event arrives first (its message and traceback).
        """
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {event_type.__name__} from the worker within {timeout} s")
            event = self.recv(left)
            if event is None:
                continue
            if isinstance(event, event_type):
                return event
            if isinstance(event, protocol.Error) and event_type is not protocol.Error:
                raise RuntimeError(f"worker error: {event.message}\n{event.traceback}")
            if collect is not None:
                collect.append(event)
