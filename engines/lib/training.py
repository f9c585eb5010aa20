"""Training helpers shared by the CLI and the worker: device choice, CPU threads, seeding, batches."""

from __future__ import annotations

import math
import os
import random
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from engines.data.base import Dataset
from engines.shared.errors import ConfigError, DataError


def pick_device(prefer: str | None = None) -> torch.device:
    """The device to train on: ``cuda``, then ``mps``, then ``cpu``.

    Parameters
    ----------
    prefer : str or None
        Force a device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``); None or ``"auto"`` picks.

    Raises
    ------
    ConfigError
        The forced device is not a device name, or is not available on this machine.
    """
    if prefer in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(prefer)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"unknown device {prefer!r}; use cpu, cuda, cuda:N or mps") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {prefer!r} asked for, but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {prefer!r} asked for, but only {torch.cuda.device_count()} CUDA devices exist")
    elif device.type == "mps":
        if not _mps_available():
            raise ConfigError(f"device {prefer!r} asked for, but Apple MPS is not available here")
    elif device.type != "cpu":
        raise ConfigError(f"unsupported device {prefer!r}; use cpu, cuda, cuda:N or mps")
    return device


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def cpu_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def configure_threads(device: torch.device | str, threads: int | None = None) -> int:
    """Set torch's intra-op CPU threads and return the number set.

    On the CPU the default is every core but one (at least 1), so the window keeps a core. On a
    GPU the CPU threads matter little; they are only changed when ``threads`` is given.

    Raises
    ------
    ConfigError
        ``threads`` below 1.
    """
    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be at least 1, not {threads}")
    device = torch.device(device)
    if threads is None:
        if device.type != "cpu":
            return torch.get_num_threads()
        threads = max(1, cpu_cores() - 1)
    torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's global generator and torch (every device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


#: Learning-rate schedules ``train --lr-schedule`` offers: each a factor of the initial rate at a step.
LR_SCHEDULES = ("constant", "cosine", "warmup")


def lr_factor(schedule: str, step: int, total: int) -> float:
    """The factor on the initial learning rate at ``step`` (from 1) of ``total`` planned steps.

    ``constant`` 1; ``cosine`` half a cosine from 1 to 0.01 over ``total`` steps, then 0.01 (Loshchilov &
    Hutter 2017, SGDR, without restarts); ``warmup`` linear from 1 / W to 1 over the first W = 5% of the
    steps (at least 1), then 1 (Goyal et al. 2017).

    Raises
    ------
    ConfigError
        An unknown schedule name.
    """
    t = min(max(step, 1), max(total, 1)) / max(total, 1)
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * t))
    if schedule == "warmup":
        warm = max(1, round(0.05 * total))
        return min(1.0, max(step, 1) / warm)
    raise ConfigError(f"unknown learning-rate schedule {schedule!r}; one of {', '.join(LR_SCHEDULES)}")


def apply_lr_schedule(optimizers: dict[str, torch.optim.Optimizer], schedule: str, step: int, total: int) -> None:
    """Set every group's ``lr`` to its ``initial_lr`` (kept in the group, so checkpoints carry it) times
    :func:`lr_factor`; call it before each step. A ``constant`` schedule leaves the optimisers alone."""
    if schedule == "constant":
        return
    factor = lr_factor(schedule, step, total)
    for opt in optimizers.values():
        for group in opt.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor


class BatchStream:
    """An endless iterator of training batches, reshuffled every epoch.

    Each epoch is a permutation of the split drawn from a generator seeded with ``seed`` (so two
    streams with the same seed yield the same batches); it is cut into batches of ``batch_size``
    and a last incomplete batch is dropped, unless the split is smaller than one batch, in which
    case every batch is the whole split.

    Array-backed data (``dataset.x`` is not None) is converted once: on an accelerator the split is
    copied to the device once and indexed there (no host-to-device copy per batch); on the CPU the
    array is used without a copy where it is float32, contiguous and writeable. Lazy data
    (``dataset.x`` is None) is fetched with ``dataset.get(indices)`` per batch, the next batch
    prepared in a background thread while the current one trains (``prefetch``).

    Parameters
    ----------
    dataset : Dataset
    batch_size : int
        Examples per batch, >= 1.
    seed : int
        Seed of the shuffling.
    device : torch.device or str
    split : {"train", "test"}
    prefetch : bool
        Fetch the next lazy batch in a background thread.
    with_labels : bool
        Yield ``(x, y)`` tuples with the labels y, (B,) int64 on ``device``, for engines with
        a declared ``conditioning`` of ``labels`` (the conditional GAN).

    Yields
    ------
    (B, C, H, W) float32 in [0, 1] or (B, 2) float32, on ``device``; with ``with_labels`` a tuple
    ``(x, y)`` with y (B,) int64.

    Attributes
    ----------
    epoch : int
        Number of completed passes over the split.
    images_seen : int
        Examples yielded so far.
    batches_per_epoch : int

    Raises
    ------
    DataError
        Empty split, a lazy data set returning a batch of the wrong shape, or ``with_labels`` for
        a data set without labels.
    ConfigError
        Unknown split, batch size below 1.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        seed: int,
        device: torch.device | str = "cpu",
        split: str = "train",
        prefetch: bool = True,
        with_labels: bool = False,
    ) -> None:
        if split not in ("train", "test"):
            raise ConfigError(f"split must be 'train' or 'test', not {split!r}")
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, not {batch_size}")
        indices = np.asarray(dataset.train_indices if split == "train" else dataset.test_indices, dtype=np.int64)
        if indices.size == 0:
            raise DataError(f"{dataset.info.spec}: the {split} split is empty")
        if with_labels and dataset.labels(indices[:1]) is None:
            raise DataError(f"{dataset.info.spec}: this model needs class labels and the data set has none")
        self.with_labels = bool(with_labels)
        self.dataset = dataset
        self.device = torch.device(device)
        self.indices = indices
        self.n = int(indices.size)
        self.batch_size = min(int(batch_size), self.n)
        self.batches_per_epoch = self.n // self.batch_size
        self.epoch = 0
        self.images_seen = 0
        self._gen = torch.Generator().manual_seed(int(seed))
        self._perm_device = torch.device("cpu")  # where the epoch's permutation lives
        self._pos = 0
        self._epoch_taken = 0
        self._pool: ThreadPoolExecutor | None = None
        self._prefetch = bool(prefetch)
        self._next: tuple[Future, int, torch.Tensor] | None = None
        x = dataset.x
        if x is not None:
            if self.device.type == "cpu" and x.dtype == np.float32 and x.flags.c_contiguous and x.flags.writeable:
                self._x = torch.from_numpy(x)  # no copy: batches index the whole array
                self._rows: torch.Tensor | None = torch.from_numpy(indices)
            else:
                split_x = np.ascontiguousarray(x[indices], dtype=np.float32)
                self._x = torch.from_numpy(split_x).to(self.device)
                self._rows = None
                self._perm_device = self.device  # one small copy per epoch, none per batch
            self._lazy = False
        else:
            self._lazy = True
            if prefetch:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-prefetch")
        self._new_perm()
        self._handed: tuple[torch.Tensor, int, int] = (self._perm_state, 0, 0)  # what state_dict resumes from

    def _new_perm(self) -> None:
        """Draw the next epoch's permutation, keeping the generator's state before it (for resume)."""
        self._perm_state = self._gen.get_state()
        self._perm = torch.randperm(self.n, generator=self._gen).to(self._perm_device)

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
        """Where the stream stands, as resumable state: the batches after the last one handed out.

        Returns
        -------
        tensors : dict
            ``{"generator": (5056,) uint8}``, the shuffling generator's state before the current epoch's
            permutation was drawn.
        meta : dict
            ``position`` (examples of that epoch already handed out), ``epoch`` (its index), ``images_seen``,
            ``n`` and ``batch_size`` (checked on load).

        A batch prefetched but not yet handed out is not counted: it is drawn again after a resume.
        """
        state, pos, epoch = self._handed
        meta = {"position": int(pos), "epoch": int(epoch), "images_seen": int(self.images_seen), "n": self.n,
                "batch_size": self.batch_size}
        return {"generator": state.clone()}, meta

    def load_state_dict(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`'s state: the next batch is the one that followed it.

        Raises
        ------
        ConfigError
            The state is malformed or was saved for another split size or batch size.
        """
        try:
            n, batch, pos, epoch, seen = (int(meta[k]) for k in ("n", "batch_size", "position", "epoch", "images_seen"))
            gen = tensors["generator"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"the data stream's saved state is malformed ({exc})") from exc
        if n != self.n or batch != self.batch_size:
            raise ConfigError(f"the data stream was saved for {n} examples in batches of {batch}; "
                              f"this one has {self.n} in batches of {self.batch_size}")
        if not 0 <= pos <= n or epoch < 0 or seen < 0:
            raise ConfigError(f"the data stream's saved position {pos} (epoch {epoch}) is out of range")
        if not isinstance(gen, torch.Tensor) or gen.dtype != torch.uint8 or gen.shape != self._gen.get_state().shape:
            raise ConfigError("the data stream's saved generator state is malformed")
        self.close()
        if self._lazy and self._prefetch:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-prefetch")
        self._gen.set_state(gen.clone())
        self._new_perm()
        self._pos, self._epoch_taken, self.epoch, self.images_seen = pos, epoch, epoch, seen
        self._handed = (self._perm_state, pos, epoch)

    def __iter__(self) -> BatchStream:
        return self

    def _take(self) -> tuple[torch.Tensor, int]:
        """Positions (B,) into the split of the next batch and its epoch, reshuffling when one ends."""
        if self._pos + self.batch_size > self.n:
            self._new_perm()
            self._pos = 0
            self._epoch_taken += 1
        sel = self._perm[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        self._taken = (self._perm_state, self._pos, self._epoch_taken)
        return sel, self._epoch_taken

    def _fetch(self, sel: torch.Tensor) -> torch.Tensor:
        """A lazy batch on the host (pinned when the device is CUDA)."""
        idx = self.indices[sel.numpy()]
        arr = np.asarray(self.dataset.get(idx), dtype=np.float32)
        expected = (len(idx), *self.dataset.info.shape)
        if arr.shape != expected:
            raise DataError(f"{self.dataset.info.spec}: get() returned shape {arr.shape}, expected {expected}")
        batch = torch.from_numpy(np.ascontiguousarray(arr))
        return batch.pin_memory() if self.device.type == "cuda" else batch

    def __next__(self) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if not self.with_labels:
            return self._next_x()
        x, sel = self._next_x(), self._last_sel
        y = np.asarray(self.dataset.labels(self.indices[sel.cpu().numpy()]), dtype=np.int64)
        return x, torch.from_numpy(y).to(self.device)

    def _next_x(self) -> torch.Tensor:
        """The next x batch; its positions into the split are left in ``self._last_sel``."""
        if not self._lazy:
            sel, self.epoch = self._take()
            self._handed = self._taken
            self._last_sel = sel
            self.images_seen += int(sel.numel())
            if self._rows is not None:
                return self._x[self._rows[sel]]
            return self._x[sel]
        if self._pool is None:
            sel, self.epoch = self._take()
            self._handed = self._taken
            batch = self._fetch(sel)
        else:
            if self._next is None:
                sel, epoch = self._take()
                self._next = (self._pool.submit(self._fetch, sel), epoch, sel, self._taken)
            future, self.epoch, sel, self._handed = self._next
            ahead, epoch = self._take()
            self._next = (self._pool.submit(self._fetch, ahead), epoch, ahead, self._taken)  # one batch ahead
            batch = future.result()
        self._last_sel = sel
        self.images_seen += int(batch.shape[0])
        return batch.to(self.device, non_blocking=self.device.type == "cuda")

    def close(self) -> None:
        """Stop the prefetch thread (idempotent)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            self._next = None

    def __enter__(self) -> BatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
