"""engines.lib.training: device choice, CPU threads, seeding and the batch stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engines.data.base import DataInfo, Dataset, split_indices
from engines.shared.errors import ConfigError, DataError
from engines.lib.training import BatchStream, configure_threads, cpu_cores, pick_device, seed_everything


def make_dataset(n: int = 50, lazy: bool = False) -> Dataset:
    """Images (1, 4, 4) whose every pixel holds the example's index / 1000, so batches are traceable."""
    train, test = split_indices(n)
    info = DataInfo(spec="test", kind="image", shape=(1, 4, 4), size=n, n_train=len(train), n_test=len(test))
    x = np.broadcast_to((np.arange(n, dtype=np.float32) / 1000)[:, None, None, None], (n, 1, 4, 4)).copy()
    if not lazy:
        return Dataset(info, x=x, train_indices=train, test_indices=test)
    return LazyData(info, x=None, train_indices=train, test_indices=test)


class LazyData(Dataset):
    calls: int = 0

    def get(self, indices):
        self.calls += 1
        idx = np.asarray(indices, dtype=np.float32)
        return np.broadcast_to((idx / 1000)[:, None, None, None], (len(idx), 1, 4, 4)).copy()


def ids(batch: torch.Tensor) -> list[int]:
    return [int(round(v * 1000)) for v in batch[:, 0, 0, 0].tolist()]


def test_pick_device_and_errors():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if expected == "cpu" and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        expected = "mps"
    assert pick_device().type == expected and pick_device("auto").type == expected
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError):
        pick_device("warp-drive")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            pick_device("cuda")
    else:
        with pytest.raises(ConfigError):
            pick_device(f"cuda:{torch.cuda.device_count()}")


def test_configure_threads_leaves_a_core():
    before = torch.get_num_threads()
    try:
        assert configure_threads("cpu") == max(1, cpu_cores() - 1) == torch.get_num_threads()
        assert configure_threads(torch.device("cpu"), threads=1) == 1
        with pytest.raises(ConfigError):
            configure_threads("cpu", threads=0)
    finally:
        torch.set_num_threads(before)


def test_seed_everything_repeats():
    seed_everything(3)
    a = (torch.rand(3), np.random.rand(3))
    seed_everything(3)
    b = (torch.rand(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_array_stream_covers_each_epoch_and_reshuffles():
    data = make_dataset(50)
    train = set(data.train_indices.tolist())
    stream = BatchStream(data, 9, seed=1, device="cpu")
    assert stream.batches_per_epoch == len(train) // 9 == 5
    epochs = []
    for _ in range(3):
        seen = []
        for _ in range(stream.batches_per_epoch):
            b = next(stream)
            assert b.shape == (9, 1, 4, 4) and b.dtype == torch.float32
            seen += ids(b)
        epochs.append(seen)
        assert len(set(seen)) == len(seen) == 45 and set(seen) <= train  # the last incomplete batch is dropped
    assert stream.epoch == 2 and stream.images_seen == 3 * 45
    assert epochs[0] != epochs[1] != epochs[2]
    assert ids(next(stream)) and stream.epoch == 3
    # The same seed gives the same batches; another seed other batches.
    again = BatchStream(data, 9, seed=1)
    assert [ids(next(again)) for _ in range(5)] == [epochs[0][i : i + 9] for i in range(0, 45, 9)]
    other = BatchStream(data, 9, seed=2)
    assert ids(next(other)) != epochs[0][:9]


def test_cpu_stream_does_not_copy_float32_arrays():
    data = make_dataset(30)
    stream = BatchStream(data, 4, seed=0)
    assert np.shares_memory(stream._x.numpy(), data.x)
    data.x.setflags(write=False)  # read-only arrays are copied once (torch cannot borrow them)
    stream = BatchStream(data, 4, seed=0)
    assert not np.shares_memory(stream._x.numpy(), data.x)
    assert set(ids(next(stream))) <= set(data.train_indices.tolist())


def test_test_split_small_split_and_errors():
    data = make_dataset(50)
    stream = BatchStream(data, 100, seed=0, split="test")
    b = next(stream)
    assert sorted(ids(b)) == data.test_indices.tolist()  # a split smaller than a batch: all of it
    with pytest.raises(ConfigError):
        BatchStream(data, 4, seed=0, split="validation")
    with pytest.raises(ConfigError):
        BatchStream(data, 0, seed=0)
    empty = Dataset(data.info, x=data.x, train_indices=np.zeros(0, np.int64), test_indices=data.test_indices)
    with pytest.raises(DataError, match="empty"):
        BatchStream(empty, 4, seed=0)


@pytest.mark.parametrize("prefetch", [False, True])
def test_lazy_stream_matches_array_stream(prefetch):
    eager = BatchStream(make_dataset(50), 8, seed=4)
    lazy_data = make_dataset(50, lazy=True)
    with BatchStream(lazy_data, 8, seed=4, prefetch=prefetch) as lazy:
        for _ in range(12):  # more than two epochs
            a, b = next(eager), next(lazy)
            assert torch.equal(a, b)
            assert (lazy.epoch, lazy.images_seen) == (eager.epoch, eager.images_seen)
        if prefetch:  # the next batch is already on its way
            assert torch.equal(lazy._next[0].result(), next(eager).cpu())
        assert lazy_data.calls == 12 + (1 if prefetch else 0)
    assert lazy._pool is None


def test_lazy_stream_checks_shapes():
    data = make_dataset(20, lazy=True)
    data.get = lambda idx: np.zeros((len(idx), 3), np.float32)
    with BatchStream(data, 4, seed=0) as stream, pytest.raises(DataError, match="shape"):
        next(stream)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_array_stream_lives_on_the_gpu():
    data = make_dataset(50)
    stream = BatchStream(data, 8, seed=0, device="cuda")
    assert stream._x.is_cuda and stream._x.shape[0] == len(data.train_indices)
    b = next(stream)
    assert b.is_cuda and set(ids(b.cpu())) <= set(data.train_indices.tolist())
    with BatchStream(make_dataset(50, lazy=True), 8, seed=0, device="cuda") as lazy:
        assert torch.equal(next(lazy), b)
