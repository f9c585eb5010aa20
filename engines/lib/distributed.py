"""Data-parallel training over several processes with ``torch.distributed`` (``latent-studio train --nproc N``).

``train --nproc N`` starts N copies of itself through torchrun's launcher (``torch.distributed.run
--standalone``); each finds its rank in the environment torchrun sets and calls :func:`init` (NCCL on
GPUs, one GPU a process; Gloo on CPUs). Every process builds the same engine from the same seed and
draws the same global batch of N x B examples from the same data order, then trains on its own B
(:func:`shard`). Before every optimiser step the gradients are averaged over the processes
(:func:`average_gradients`, an optimiser step pre-hook), so the weights stay identical everywhere and a
step equals one step on the whole N x B batch for every model whose loss is a mean over its batch
(the data-parallel scheme of DistributedDataParallel, Li et al. 2020, applied at the optimiser so that no
engine changes). Logged losses are averaged over the processes (:func:`mean_losses`); rank 0 writes the
run. Batch norm sees each process's own B examples, as in plain DDP.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist

from engines.shared.errors import ConfigError


def world() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) outside a distributed launch."""
    try:
        return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))
    except ValueError as exc:
        raise ConfigError(f"torchrun's RANK / WORLD_SIZE / LOCAL_RANK are not integers ({exc})") from exc


def is_distributed() -> bool:
    """Whether this process is one of several started by torchrun."""
    return world()[1] > 1


def launch_command(module: str, argv: list[str], nproc: int, threads: int | None) -> list[str]:
    """The command that runs ``python -m module argv`` in ``nproc`` processes through torchrun's launcher
    (``--standalone``: a rendezvous on this machine), ``--nproc`` taken out of ``argv`` and each process given
    ``--threads`` (its share of the cores) unless ``threads`` was asked for."""
    import sys

    rest, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            rest.append(a)
    if threads is None:
        rest += ["--threads", str(max(1, (os.cpu_count() or 2) // nproc))]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", module, *rest]


def init(prefer: str | None = None) -> torch.device:
    """Join the process group (NCCL when CUDA is there and not refused, else Gloo); this process's device.

    Raises
    ------
    ConfigError
        Asked for CUDA without one GPU per process.
    """
    rank, size, local = world()
    use_cuda = torch.cuda.is_available() and prefer in (None, "cuda")
    if use_cuda:
        if torch.cuda.device_count() <= local:
            raise ConfigError(f"process {rank} wants GPU {local}, but this machine has {torch.cuda.device_count()}")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    elif prefer == "cuda":
        raise ConfigError("--device cuda with --nproc needs a GPU per process")
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=size)
    return device


def shard(batch: Any, rank: int, size: int) -> Any:
    """This process's rows of a global batch: rows [rank B, (rank + 1) B) of x (and of y for a labelled batch)."""
    if isinstance(batch, tuple):
        return tuple(shard(b, rank, size) for b in batch)
    per = batch.shape[0] // size
    return batch[rank * per: (rank + 1) * per]


def average_gradients(optimizers: dict[str, torch.optim.Optimizer]) -> list[Any]:
    """Before each step of each optimiser, replace every gradient by its mean over the processes.

    Returns the hook handles (``handle.remove()`` undoes it). Parameters without a gradient are skipped,
    the same on every process since they run the same code on batches of the same shape.
    """
    size = dist.get_world_size()

    def hook(optimizer: torch.optim.Optimizer, _args: Any, _kwargs: Any) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])  # one collective a step, not one per tensor
        dist.all_reduce(flat)
        flat /= size
        offset = 0
        for g in grads:
            g.copy_(flat[offset: offset + g.numel()].view_as(g))
            offset += g.numel()

    return [opt.register_step_pre_hook(hook) for opt in optimizers.values()]


def mean_losses(losses: dict[str, float], device: torch.device) -> dict[str, float]:
    """Each loss term averaged over the processes (every process must pass the same names)."""
    names = sorted(losses)
    values = torch.tensor([float(losses[k]) for k in names], dtype=torch.float64, device=device)
    dist.all_reduce(values)
    values /= dist.get_world_size()
    means = dict(zip(names, values.tolist()))
    return {k: means[k] for k in losses}


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def close() -> None:
    """Leave the process group."""
    if dist.is_initialized():
        dist.destroy_process_group()
