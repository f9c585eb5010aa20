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


#: Seconds a peer has to complete the authentication handshake before it is dropped.
HANDSHAKE_S = 10.0


class AuthListener:
    """Accepts connections on ``listener`` (made without an authkey) and keeps those that prove they hold ``authkey``.

    Each peer is authenticated on a thread of its own (``multiprocessing.connection``'s HMAC challenge, both
    ways), so a peer that connects and stays silent, or one with the wrong key, neither blocks the others
    nor ends the wait: it is dropped after :data:`HANDSHAKE_S` s, or at once, and reported to
    ``refused(address, why)``. The key never crosses the wire.

    Parameters
    ----------
    listener : multiprocessing.connection.Listener
    authkey : bytes
    refused : callable or None
        ``refused(address, why)`` for each peer dropped (called from a handshake thread).
    """

    def __init__(self, listener: Listener, authkey: bytes, refused=None) -> None:  # noqa: ANN001
        self.listener, self._authkey, self._refused = listener, authkey, refused
        self._ready: list[Connection] = []
        self._cv = threading.Condition()
        self._closed = False
        threading.Thread(target=self._accept_loop, name="link-accept", daemon=True).start()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                conn = self.listener.accept()
            except (OSError, EOFError):
                return  # the listener was closed
            threading.Thread(target=self._handshake, args=(conn, self.listener.last_accepted), name="link-handshake",
                             daemon=True).start()

    def _handshake(self, conn: Connection, address: object) -> None:
        from multiprocessing.connection import AuthenticationError, answer_challenge, deliver_challenge

        timer = threading.Timer(HANDSHAKE_S, conn.close)  # a silent peer: closing the socket ends its read
        timer.daemon = True
        timer.start()
        try:
            deliver_challenge(conn, self._authkey)
            answer_challenge(conn, self._authkey)
            why = ""
        except AuthenticationError:
            why = "wrong token (authentication failed)"
        except (OSError, EOFError, ValueError) as exc:
            why = f"no handshake ({type(exc).__name__})"
        finally:
            timer.cancel()
        with self._cv:
            if not why and not self._closed:
                self._ready.append(conn)
                self._cv.notify_all()
                return
        conn.close()
        if why and self._refused is not None:
            self._refused(address, why)

    def next(self, until: float = float("inf"), give_up=None) -> Connection | None:  # noqa: ANN001
        """The next authenticated connection, or None at ``until`` (a ``time.monotonic()`` deadline) or when
        ``give_up()`` (polled about 20 times a second) says so."""
        with self._cv:
            while not self._ready:
                if time.monotonic() >= until or (give_up is not None and give_up()) or self._closed:
                    return None
                self._cv.wait(0.05)
            return self._ready.pop(0)

    def close(self) -> None:
        """Stop accepting; connections not yet taken are closed."""
        with self._cv:
            self._closed = True
            waiting, self._ready = self._ready, []
        self.listener.close()
        for conn in waiting:
            conn.close()


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

    def __init__(self, threads: int | None = None, device: str | None = None, connect_timeout: float = 120.0,
                 remote: str | None = None, token: str | None = None) -> None:
        self.threads = threads
        self.device = device
        self.connect_timeout = connect_timeout
        self.remote, self.token = remote, token
        self.process: subprocess.Popen | None = None
        self.conn: Connection | None = None
        self.refused: list[tuple[object, str]] = []  # (address, why) of peers that failed the handshake
        self._send_lock = threading.Lock()

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker and wait (up to ``connect_timeout``) until it has connected; with ``remote``,
        connect to a worker already listening there (``latent-studio worker --listen``) with ``token``."""
        if self.remote is not None:
            self._connect_remote()
            return
        authkey = secrets.token_bytes(32)
        listener = Listener(("127.0.0.1", 0), family="AF_INET")  # authenticated below, one peer at a time
        host, port = listener.address
        cmd = [sys.executable, "-m", "engines.cli.worker", "--connect", f"{host}:{port}"]
        if self.threads is not None:
            cmd += ["--threads", str(self.threads)]
        if self.device is not None:
            cmd += ["--device", self.device]
        env = dict(os.environ, **{AUTHKEY_ENV: authkey.hex()})
        self.process = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
        process = self.process
        # another local process that connects first is refused and dropped; the wait goes on for ours
        accepting = AuthListener(listener, authkey, refused=lambda address, why: self.refused.append((address, why)))
        conn = accepting.next(time.monotonic() + self.connect_timeout, give_up=lambda: process.poll() is not None)
        accepting.close()
        if conn is None:
            code = process.poll()
            self.kill()
            why = f"exited with code {code}" if code is not None else "did not connect in time"
            raise WorkerDied(f"the worker process {why}")
        self.conn = conn
        set_nodelay(self.conn)

    def _connect_remote(self) -> None:
        from multiprocessing.connection import AuthenticationError, answer_challenge, deliver_challenge

        from engines.shared.errors import ConfigError

        host, sep, port = str(self.remote).rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError(f"a remote worker's address is HOST:PORT, not {self.remote!r}")
        if not self.token:
            raise ConfigError("a remote worker needs the token it printed when it started (--token)")
        try:
            sock = socket.create_connection((host.strip("[]"), int(port)), timeout=min(self.connect_timeout, 30.0))
        except OSError as exc:
            raise WorkerDied(f"cannot reach a worker at {self.remote} ({exc})") from None
        sock.settimeout(None)
        conn = Connection(sock.detach())
        timer = threading.Timer(HANDSHAKE_S, conn.close)  # not a Latent Studio worker: it never answers
        timer.daemon = True
        timer.start()
        try:
            answer_challenge(conn, self.token.encode("utf-8"))
            deliver_challenge(conn, self.token.encode("utf-8"))
        except AuthenticationError:
            conn.close()
            raise WorkerDied(f"the worker at {self.remote} refused the token") from None
        except (OSError, EOFError, ValueError) as exc:
            conn.close()
            raise WorkerDied(f"no Latent Studio worker answered at {self.remote} ({type(exc).__name__})") from None
        finally:
            timer.cancel()
        self.conn = conn
        set_nodelay(conn)

    def is_alive(self) -> bool:
        """Whether the process is still running (for a remote worker: whether the connection is open)."""
        if self.remote is not None:
            return self.conn is not None
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
        """Ask the worker to shut down, wait up to ``timeout`` seconds, then kill it (a remote worker only ends
        this window's session and listens for the next)."""
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
