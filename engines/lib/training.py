"""Training helpers shared by the CLI and the worker: device choice, CPU threads, seeding, batches."""

from __future__ import annotations

import os
import random
from concurrent.futures import Future, ThreadPoolExecutor

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
        self._perm = torch.randperm(self.n, generator=self._gen).to(self._perm_device)

    def __iter__(self) -> BatchStream:
        return self

    def _take(self) -> tuple[torch.Tensor, int]:
        """Positions (B,) into the split of the next batch and its epoch, reshuffling when one ends."""
        if self._pos + self.batch_size > self.n:
            self._perm = torch.randperm(self.n, generator=self._gen).to(self._perm_device)
            self._pos = 0
            self._epoch_taken += 1
        sel = self._perm[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
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
            self._last_sel = sel
            self.images_seen += int(sel.numel())
            if self._rows is not None:
                return self._x[self._rows[sel]]
            return self._x[sel]
        if self._pool is None:
            sel, self.epoch = self._take()
            batch = self._fetch(sel)
        else:
            if self._next is None:
                sel, epoch = self._take()
                self._next = (self._pool.submit(self._fetch, sel), epoch, sel)
            future, self.epoch, sel = self._next
            ahead, epoch = self._take()
            self._next = (self._pool.submit(self._fetch, ahead), epoch, ahead)  # one batch ahead
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
