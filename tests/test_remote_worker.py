"""A worker on another machine (issue 12), both ends on 127.0.0.1: `latent-studio worker --listen` prints a token,
a window that knows it drives the worker with the same protocol, a wrong token is refused and logged, and no
peer (silent, unauthenticated, or sending an absurd length) stops it from serving."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Client

import numpy as np
import pytest

from engines.shared import protocol as P
from engines.shared.link import WorkerDied, WorkerLink
from workers import collect


class Listening:
    """``latent-studio worker --listen 127.0.0.1:0`` in a process of its own; its address, token and stderr lines."""

    def __init__(self, home, *extra: str) -> None:  # noqa: ANN001
        env = dict(os.environ, LATENT_STUDIO_HOME=str(home))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "latent_studio", "worker", "--listen", "127.0.0.1:0", "--threads", "1",
             "--device", "cpu", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            stdin=subprocess.DEVNULL)
        self.printed: list[str] = []
        for line in self.process.stdout:  # the banner: address, token, the command to connect
            self.printed.append(line.rstrip())
            if line.strip().startswith("connect with:"):
                break
        self.address = next(x for x in self.printed if "listening on" in x).rsplit(" ", 1)[-1]
        self.token = next(x for x in self.printed if x.strip().startswith("token:")).split()[-1]
        self.errors: list[str] = []
        threading.Thread(target=self._read_errors, daemon=True).start()

    def _read_errors(self) -> None:
        for line in self.process.stderr:
            self.errors.append(line.rstrip())

    def wait_for_log(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hit = [e for e in self.errors if text in e]
            if hit:
                return hit[-1]
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not logged; stderr: {self.errors[-5:]}")

    def close(self) -> None:
        self.process.terminate()  # torchrun passes it on to its processes
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture(scope="module")
def listening(tmp_path_factory):
    worker = Listening(tmp_path_factory.mktemp("server-home"))
    yield worker
    worker.close()


def test_the_banner_says_where_and_how_to_connect_and_binds_localhost(listening) -> None:
    host, port = listening.address.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    assert f"latent-studio studio --connect {listening.address} --token {listening.token}" in listening.printed[-1]
    assert len(listening.token) >= 24


def test_a_wrong_token_is_refused_and_logged_and_the_worker_keeps_listening(listening) -> None:
    link = WorkerLink(remote=listening.address, token="not-the-token", connect_timeout=30)
    with pytest.raises(WorkerDied, match="refused the token"):
        link.start()
    assert "wrong token" in listening.wait_for_log("refused a connection from 127.0.0.1")
    from multiprocessing.connection import AuthenticationError

    host, port = listening.address.rsplit(":", 1)
    with pytest.raises(AuthenticationError):  # multiprocessing's own client is refused the same way
        Client((host, int(port)), authkey=b"guess")
    deadline = time.monotonic() + 20
    while len([e for e in listening.errors if "wrong token" in e]) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len([e for e in listening.errors if "wrong token" in e]) >= 2  # each refusal logged


def test_the_right_token_drives_the_worker_with_the_same_protocol_even_past_a_silent_peer(listening) -> None:
    host, port = listening.address.rsplit(":", 1)
    silent = socket.create_connection((host, int(port)))  # connects and says nothing: must not hold the door
    link = WorkerLink(remote=listening.address, token=listening.token, connect_timeout=30)
    link.start()
    try:
        started = link.wait_for(P.Started, timeout=60)
        assert started.device == "cpu" and "vae" in started.models
        link.send(P.Configure(data="digits", model="vae", image_size=8, latent_dim=2, seed=0, batch_size=16))
        ready = collect(link, lambda e: isinstance(e, (P.Ready, P.Error)), timeout=60)[-1]
        assert isinstance(ready, P.Ready), ready
        link.send(P.Train(steps=5))
        assert collect(link, lambda e: isinstance(e, P.Stopped), timeout=60)[-1].step == 5
        link.send(P.Decode(request_id=3, z=np.zeros((1, 2), np.float32)))
        decoded = collect(link, lambda e: isinstance(e, P.Decoded) and e.request_id == 3)[-1]
        assert decoded.images.shape == (1, 1, 8, 8)
    finally:
        link.close()
        silent.close()
    listening.wait_for_log("listening again")
    again = WorkerLink(remote=listening.address, token=listening.token, connect_timeout=30)
    again.start()  # the next window is served
    try:
        assert again.wait_for(P.Started, timeout=60).pid == started.pid
    finally:
        again.close()


def test_an_absurd_message_length_ends_that_session_not_the_worker(listening) -> None:
    host, port = listening.address.rsplit(":", 1)
    conn = Client((host, int(port)), authkey=listening.token.encode())  # an authenticated peer gone bad
    assert conn.poll(60)
    conn.recv_bytes()  # Started
    os.write(conn.fileno(), struct.pack("!i", -1) + struct.pack("!Q", 2**62))  # "the next frame is 4 EiB"
    listening.wait_for_log("listening again", timeout=30)
    conn.close()
    link = WorkerLink(remote=listening.address, token=listening.token, connect_timeout=30)
    link.start()
    try:
        assert link.wait_for(P.Started, timeout=60)
    finally:
        link.close()


def test_a_local_process_that_connects_first_does_not_hijack_the_start(monkeypatch) -> None:
    """The window's listener for its own worker: an impostor with a wrong key and a silent one connect before the
    worker does; both are dropped and the real worker is accepted."""
    import engines.shared.link as link_module

    real = subprocess.Popen
    impostors: list[socket.socket] = []

    def popen(cmd, **kw):  # noqa: ANN001, ANN202 - the worker is started only after two impostors knocked
        host, port = cmd[cmd.index("--connect") + 1].rsplit(":", 1)
        impostors.append(socket.create_connection((host, int(port))))

        def wrong() -> None:
            try:
                Client((host, int(port)), authkey=b"guess")
            except Exception:  # noqa: BLE001 - refused, as it should be
                pass

        t = threading.Thread(target=wrong, daemon=True)
        t.start()
        t.join(10)
        return real(cmd, **kw)

    monkeypatch.setattr(link_module.subprocess, "Popen", popen)
    link = WorkerLink(threads=1, device="cpu", connect_timeout=90)
    link.start()
    try:
        assert link.wait_for(P.Started, timeout=60).pid == link.pid
        assert any("wrong token" in why for _, why in link.refused)
    finally:
        link.kill()
        for s in impostors:
            s.close()


def test_the_worker_takes_its_key_out_of_the_environment_its_children_inherit(monkeypatch) -> None:
    from engines.cli import worker
    from engines.shared.link import AUTHKEY_ENV

    monkeypatch.setenv(AUTHKEY_ENV, "00" * 32)
    assert worker.main(["--connect", "nowhere"]) == 2  # a bad address: it stops before connecting
    assert AUTHKEY_ENV not in os.environ


def test_an_export_for_a_remote_window_comes_back_as_bytes_and_re_renders_where_it_lands(listening, tmp_path) -> None:
    from engines.lib.export import read_sidecar, render
    from studio.services.exports import write_delivered

    link = WorkerLink(remote=listening.address, token=listening.token, connect_timeout=30)
    link.start()
    try:
        link.wait_for(P.Started, timeout=60)
        link.send(P.Configure(data="digits", model="vae", image_size=8, latent_dim=2, seed=0, batch_size=16))
        assert isinstance(collect(link, lambda e: isinstance(e, (P.Ready, P.Error)), timeout=60)[-1], P.Ready)
        mine = tmp_path / "here" / "walk.gif"  # a path on the window's machine, which the worker never sees
        mine.parent.mkdir()
        link.send(P.Export(request_id=5, kind="interpolation", out=str(mine), deliver=True,
                           latents={"keyframes": [[0.0, 0.0], [1.0, -1.0]], "method": "lerp", "frames": 6,
                                    "constant_speed": False},
                           settings={"fps": 8, "size": 32, "resample": "nearest", "labels": False}))
        done = collect(link, lambda e: isinstance(e, (P.Exported, P.Error)), timeout=60)[-1]
    finally:
        link.close()
    assert isinstance(done, P.Exported), done
    assert done.names == ["walk.gif", "walk.gif.json", "walk.gif.safetensors"] and not mine.exists()
    write_delivered(done.path, done.names, done.sizes, done.blob)
    assert mine.is_file() and read_sidecar(str(mine) + ".json")["checkpoint"]["path"] == "walk.gif.safetensors"
    again = tmp_path / "again.gif"
    render(str(mine) + ".json", again)  # the sidecar finds its weights beside it, on this machine
    assert again.read_bytes() == mine.read_bytes()
    with pytest.raises(ValueError, match="not one of"):  # a peer cannot write anywhere else
        write_delivered(mine, ["../../evil.sh"], [3], np.frombuffer(b"abc", np.uint8))
