"""The window's model trained data-parallel by a worker of several processes (``latent-studio worker --listen
PORT --nproc N`` on a multi-GPU server).

torchrun's launcher starts N worker processes (:mod:`engines.lib.distributed`: NCCL, one GPU each, or Gloo on
CPUs). Rank 0 is the worker the window talks to, with everything it has alone; ranks 1..N-1 are followers
(:func:`follow`) that only train. When rank 0 starts training (and again after anything changed the model
between two steps: a hyperparameter, a rollback, a load), :meth:`Lockstep.sync` writes the live model as a
checkpoint with its resume state to a folder the processes share and tells the followers to load it; then,
step by step, :meth:`Lockstep.step` tells them to take one more. Every process draws the same global batch
of N x B examples, trains on its share, and averages its gradients with the others before each optimiser
step, so the weights stay the same everywhere; rank 0 logs the losses averaged over the processes.

Control travels as broadcast tensors of JSON bytes (never pickle), from rank 0 to the followers on the same
machine.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from engines.lib import distributed as D

_STEP, _PAUSE = 1, 0


class Lockstep:
    """Rank 0's side: keep the followers in step with the live model (module docstring).

    Parameters
    ----------
    device : torch.device
        This process's device (tensors of the collectives live there: NCCL wants CUDA ones).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.rank, self.size, _ = D.world()
        self.active = False  # the followers are inside a session, waiting for step or pause
        self._folder = Path(tempfile.mkdtemp(prefix="latent-studio-lockstep-"))
        self._count = 0
        self._hooks: list[Any] = []
        self._engine: Any = None

    @property
    def label(self) -> str:
        """What the window shows as the device: "cuda:0 x 4 processes"."""
        return f"{self.device} x {self.size} processes"

    def sync(self, session: Any) -> None:
        """Send the followers ``session``'s model as it is now (weights, optimisers, data order, generators)."""
        from engines.lib.checkpoint import save_checkpoint

        self.pause()
        self._count += 1
        path = self._folder / f"sync-{self._count % 2}.safetensors"  # two files: a follower may still read the last
        save_checkpoint(session.engine, path, step=session.step, data_spec=session.data_spec,
                        image_size=session.image_size, extra=session.manifest_extra(), manifest_beside=False,
                        resume=session.capture_resume())
        _broadcast_json({"op": "session", "path": str(path), "data_spec": session.data_spec,
                         "image_size": session.image_size, "batch_size": int(session.batch_size),
                         "seed": int(session.seed), "step": int(session.step)}, self.device)
        if self._engine is not session.engine:
            for h in self._hooks:
                h.remove()
            self._hooks = D.average_gradients(session.engine.optimizer_states())
            self._engine = session.engine
        self.active = True

    def step(self) -> None:
        """Tell the followers to take one step (rank 0 then takes its own)."""
        _broadcast_int(_STEP, self.device)

    def mean_losses(self, losses: dict[str, float]) -> dict[str, float]:
        """This step's loss terms averaged over every process (the followers send theirs)."""
        return D.mean_losses(losses, self.device)

    def pause(self) -> None:
        """Tell the followers the session is over: they wait for the next :meth:`sync` (nothing if none runs)."""
        if self.active:
            _broadcast_int(_PAUSE, self.device)
            self.active = False

    def close(self) -> None:
        """Send the followers home and leave the process group."""
        self.pause()
        _broadcast_json({"op": "quit"}, self.device)
        for h in self._hooks:
            h.remove()
        D.close()


def global_batch(session: Any, size: int) -> int:
    """Examples each step draws for every process together."""
    return int(session.batch_size) * size


def follow(device: torch.device) -> None:
    """A follower's life: load each session rank 0 sends, take the steps it calls for, until it says quit."""
    from engines.data import load_dataset
    from engines.lib import resume as R
    from engines.lib.checkpoint import load_checkpoint, read_resume_state
    from engines.lib.training import BatchStream

    rank, size, _ = D.world()
    datasets: dict[tuple, Any] = {}
    while True:
        header = _broadcast_json(None, device)
        if header.get("op") != "session":
            break
        path = header["path"]
        engine, _ = load_checkpoint(path, device=device, with_optimizer=True)
        key = (header["data_spec"], header["image_size"])
        if key not in datasets:
            datasets.clear()
            datasets[key] = load_dataset(*key)
        stream = BatchStream(datasets[key], int(header["batch_size"]) * size, int(header["seed"]), device,
                             with_labels=engine.capabilities.conditional)
        state = read_resume_state(path)
        if state is not None:
            R.restore_stream(state, stream, path)
            R.restore_rng(state, path)
        step = int(header["step"])
        torch.manual_seed(int(header["seed"]) + 7919 * rank + step)  # noise of its own, not rank 0's
        hooks = D.average_gradients(engine.optimizer_states())
        engine.train()
        while _broadcast_int(None, device) == _STEP:
            losses = engine.training_step(D.shard(next(stream), rank, size), step)
            D.mean_losses(losses, device)
            step += 1
        for h in hooks:
            h.remove()
        stream.close()
    D.close()


def _broadcast_int(value: int | None, device: torch.device) -> int:
    t = torch.tensor([0 if value is None else int(value)], dtype=torch.int64, device=device)
    dist.broadcast(t, 0)
    return int(t.item())


def _broadcast_json(obj: dict | None, device: torch.device) -> dict:
    """``obj`` from rank 0 to every process, as the bytes of its JSON (the others pass None and get it)."""
    data = b"" if obj is None else json.dumps(obj).encode("utf-8")
    n = _broadcast_int(len(data) if obj is not None else None, device)
    buf = (torch.frombuffer(bytearray(data), dtype=torch.uint8).to(device) if obj is not None
           else torch.empty(n, dtype=torch.uint8, device=device))
    dist.broadcast(buf, 0)
    return json.loads(bytes(buf.cpu().tolist()).decode("utf-8")) if obj is None else obj
