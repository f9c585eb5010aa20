"""Data sets: built-ins (shapes, digits, ring, grid), the user's files (idx, folder, npz), and bad input.

Every file here is written by the test into tmp_path; nothing is read from /work/shared.
"""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engines.data import (
    BUILTIN_SPECS,
    DataError,
    ShapesDataset,
    load_dataset,
    parse_spec,
    split_indices,
)
from engines.data.files import labels_path_for

ROOT = Path(__file__).resolve().parents[1]


def fails(spec: str, *words: str, image_size: int | None = None) -> str:
    """Load ``spec``, expect a DataError, and check its message names each of ``words``."""
    with pytest.raises(DataError) as e:
        load_dataset(spec, image_size)
    msg = str(e.value)
    for w in words:
        assert w.lower() in msg.lower(), msg
    return msg


# --------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------


def test_parse_spec() -> None:
    assert parse_spec("shapes") == ("shapes", None)
    assert parse_spec("shapes:32") == ("shapes", "32")
    assert parse_spec(" Digits:16 ") == ("digits", "16")
    assert parse_spec("idx:/a/b.gz") == ("idx", "/a/b.gz")
    assert parse_spec("folder:C:\\images") == ("folder", "C:\\images")
    for bad in ["", "  ", "mnist", "cifar:/x", "idx:", "npz", "ring:3", "shapes:abc", "shapes:100", "shapes:4"]:
        with pytest.raises(DataError):
            parse_spec(bad)


def test_builtin_specs_all_load_and_are_listed() -> None:
    assert [s for s, _ in BUILTIN_SPECS] == ["shapes", "shapes:32", "digits", "ring", "grid"]
    assert all(isinstance(d, str) and d for _, d in BUILTIN_SPECS)


@pytest.mark.parametrize("size", [4, 7, 65, 256, 2.5, True, "32"])
def test_image_size_out_of_range(size: object) -> None:
    fails("shapes", "image_size", image_size=size)  # type: ignore[arg-type]


def test_engines_data_does_not_import_torch() -> None:
    code = "import sys, engines.data as d; d.load_dataset('ring'); d.load_dataset('shapes:16').get([0]); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------------------------
# Split
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 10, 1797, 737_280])
def test_split_disjoint_and_fixed(n: int) -> None:
    train, test = split_indices(n)
    assert train.dtype == np.int64 and test.dtype == np.int64
    assert len(np.intersect1d(train, test)) == 0
    assert np.array_equal(np.union1d(train, test), np.arange(n))
    assert len(test) == max(1, round(0.1 * n))
    train2, test2 = split_indices(n)
    assert np.array_equal(test, test2) and np.array_equal(train, train2)


def test_dataset_split_matches_split_indices() -> None:
    ds = load_dataset("grid")
    train, test = split_indices(len(ds))
    assert np.array_equal(ds.train_indices, train) and np.array_equal(ds.test_indices, test)
    assert ds.info.n_train == len(train) and ds.info.n_test == len(test)


# --------------------------------------------------------------------------------------------
# shapes
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes() -> ShapesDataset:
    ds = load_dataset("shapes")
    assert isinstance(ds, ShapesDataset)
    return ds


def test_shapes_info(shapes: ShapesDataset) -> None:
    info = shapes.info
    assert len(shapes) == 737_280 == 3 * 6 * 40 * 32 * 32
    assert info.shape == (1, 64, 64) and info.kind == "image"
    assert info.factor_names == ("shape", "scale", "orientation", "x", "y")
    assert info.factor_sizes == (3, 6, 40, 32, 32)
    assert info.class_names == ("square", "ellipse", "heart")
    assert shapes.x is None and shapes.y is None  # lazy
    assert info.n_train + info.n_test == len(shapes)


def test_shapes_factor_round_trip(shapes: ShapesDataset) -> None:
    idx = np.random.default_rng(0).integers(0, len(shapes), 500)
    f = shapes.factor_values(idx)
    assert f.shape == (500, 5) and f.dtype == np.int64
    assert (f >= 0).all() and (f < np.array([3, 6, 40, 32, 32])).all()
    assert np.array_equal(shapes.index_of(f), idx)
    assert np.array_equal(shapes.labels(idx), f[:, 0])
    # mixed radix, shape slowest and y fastest, like dSprites' latents_classes
    assert shapes.index_of(np.array([[1, 2, 3, 4, 5]]))[0] == (((1 * 6 + 2) * 40 + 3) * 32 + 4) * 32 + 5
    assert np.array_equal(shapes.factor_values(np.array([1, 32, len(shapes) - 1])),
                          [[0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [2, 5, 39, 31, 31]])


def test_shapes_bad_indices_and_factors(shapes: ShapesDataset) -> None:
    with pytest.raises(IndexError):
        shapes.get(np.array([len(shapes)]))
    with pytest.raises(IndexError):
        shapes.get(np.array([-1]))
    with pytest.raises(DataError):
        shapes.index_of(np.array([[3, 0, 0, 0, 0]]))
    with pytest.raises(DataError):
        shapes.index_of(np.array([0, 0, 0, 0, 0]))


def test_shapes_get_is_binary_deterministic_and_lazy(shapes: ShapesDataset) -> None:
    idx = np.random.default_rng(1).integers(0, len(shapes), 128)
    x = shapes.get(idx)
    assert x.shape == (128, 1, 64, 64) and x.dtype == np.float32
    assert set(np.unique(x).tolist()) <= {0.0, 1.0}
    assert (x.reshape(128, -1).sum(1) > 10).all()  # every image shows a shape
    assert np.array_equal(x, ShapesDataset(64).get(idx))  # a fresh instance draws the same
    assert np.array_equal(x[5:6], shapes.get(idx[5:6]))  # independent of the batch
    assert shapes.get(np.zeros(0, np.int64)).shape == (0, 1, 64, 64)


def _image(ds: ShapesDataset, factors: list[int]) -> np.ndarray:
    return ds.get(ds.index_of(np.array([factors])))[0, 0]


def _centroid(img: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(img)
    return float(cols.mean()), float(rows.mean())


def test_shapes_factors_move_the_drawing(shapes: ShapesDataset) -> None:
    for shape in range(3):
        xs = [_centroid(_image(shapes, [shape, 5, 0, x, 16]))[0] for x in range(32)]
        ys = [_centroid(_image(shapes, [shape, 5, 0, 16, y]))[1] for y in range(32)]
        assert np.all(np.diff(xs) > 0) and np.all(np.diff(ys) > 0)  # x to the right, y down, all distinct
        areas = [_image(shapes, [shape, s, 0, 16, 16]).sum() for s in range(6)]
        assert np.all(np.diff(areas) > 0)  # scale grows the shape
        # the whole shape stays inside the frame at the corners
        centre = _image(shapes, [shape, 5, 7, 16, 16]).sum()
        for x, y in [(0, 0), (31, 31), (0, 31)]:
            assert _image(shapes, [shape, 5, 7, x, y]).sum() == centre
    # orientation turns the shape; 0 and 2 pi draw the same (as in dSprites)
    assert not np.array_equal(_image(shapes, [2, 5, 0, 16, 16]), _image(shapes, [2, 5, 10, 16, 16]))
    assert np.array_equal(_image(shapes, [2, 5, 0, 16, 16]), _image(shapes, [2, 5, 39, 16, 16]))
    # the three shapes differ
    imgs = [_image(shapes, [s, 5, 3, 16, 16]) for s in range(3)]
    assert not np.array_equal(imgs[0], imgs[1]) and not np.array_equal(imgs[1], imgs[2])


def test_shapes_sizes() -> None:
    ds = load_dataset("shapes:32")
    assert ds.info.shape == (1, 32, 32) and ds.info.spec == "shapes:32"
    x = ds.get(np.arange(0, len(ds), 9973))
    assert x.shape[1:] == (1, 32, 32) and set(np.unique(x).tolist()) <= {0.0, 1.0}
    assert load_dataset("shapes", image_size=16).info.shape == (1, 16, 16)
    assert load_dataset("shapes:32", image_size=48).get(np.array([7])).shape == (1, 1, 48, 48)
    # a smaller drawing is a block-averaged version of the larger one: similar area
    big, small = ShapesDataset(64), ShapesDataset(32)
    idx = np.array([123_456, 500_000])
    assert np.allclose(small.get(idx).sum((1, 2, 3)) * 4, big.get(idx).sum((1, 2, 3)), rtol=0.15)


def test_shapes_batch_is_fast(shapes: ShapesDataset) -> None:
    idx = np.random.default_rng(2).integers(0, len(shapes), 64)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        shapes.get(idx)
        times.append(time.perf_counter() - t)
    assert min(times) < 0.02  # about 1 ms on one core; generous for a shared machine


# --------------------------------------------------------------------------------------------
# digits, ring, grid
# --------------------------------------------------------------------------------------------


def test_digits() -> None:
    from sklearn.datasets import load_digits

    ds = load_dataset("digits")
    assert ds.x is not None and ds.y is not None
    assert ds.x.shape == (1797, 1, 32, 32) and ds.x.dtype == np.float32
    assert 0.0 <= ds.x.min() and ds.x.max() <= 1.0 and ds.x.max() > 0.9
    assert ds.y.dtype == np.int64 and np.array_equal(ds.y, load_digits().target)
    assert ds.info.class_names == tuple("0123456789")
    native = load_dataset("digits", image_size=8)
    assert np.allclose(native.x[:, 0], load_digits().images / 16.0)
    assert load_dataset("digits:16").x.shape == (1797, 1, 16, 16)
    assert np.array_equal(ds.get(np.array([3, 1])), ds.x[[3, 1]])
    assert np.array_equal(ds.labels(np.array([3, 1])), ds.y[[3, 1]])


@pytest.mark.parametrize("spec, n_modes, std", [("ring", 8, 0.01), ("grid", 25, 0.05)])
def test_mixtures(spec: str, n_modes: int, std: float) -> None:
    ds = load_dataset(spec, image_size=32)  # image_size is ignored by points
    assert ds.info.kind == "points" and ds.info.shape == (2,) and ds.info.mode_std == std
    assert ds.x is not None and ds.y is not None
    assert ds.x.shape == (100_000, 2) and ds.x.dtype == np.float32 and ds.y.dtype == np.int64
    modes = np.array(ds.info.modes)
    assert modes.shape == (n_modes, 2)
    if spec == "ring":
        assert np.allclose(np.hypot(modes[:, 0], modes[:, 1]), 1.0)
        assert len({round(float(np.arctan2(b, a)), 6) for a, b in modes}) == 8
    else:
        assert sorted({v for m in modes for v in m}) == [-4.0, -2.0, 0.0, 2.0, 4.0]
        assert len({tuple(m) for m in modes}) == 25
    counts = np.bincount(ds.y, minlength=n_modes)
    assert counts.max() - counts.min() <= 1
    residual = ds.x - modes[ds.y]
    assert abs(residual.std() - std) < 0.02 * std and abs(residual.mean()) < 0.05 * std
    nearest = np.argmin(((ds.x[:, None] - modes[None]) ** 2).sum(-1), axis=1)
    assert np.array_equal(nearest, ds.y)
    assert np.array_equal(load_dataset(spec).x, ds.x)  # a fixed sample


# --------------------------------------------------------------------------------------------
# IDX
# --------------------------------------------------------------------------------------------


def idx_bytes(arr: np.ndarray, magic: int | None = None) -> bytes:
    arr = np.asarray(arr, np.uint8)
    magic = (0x0800 | arr.ndim) if magic is None else magic
    return struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture()
def digits_idx() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (30, 28, 28), dtype=np.uint8), rng.integers(0, 10, 30).astype(np.uint8)


@pytest.mark.parametrize(
    "images, labels, gz",
    [
        ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", False),
        ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", True),
        ("train-images.idx3-ubyte", "train-labels.idx1-ubyte", False),
        ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte", None),  # gzip images, raw labels
    ],
)
def test_idx_with_labels(tmp_path: Path, digits_idx: tuple, images: str, labels: str, gz: bool | None) -> None:
    x, y = digits_idx
    write(tmp_path / images, idx_bytes(x), gz=bool(gz) or gz is None)
    write(tmp_path / labels, idx_bytes(y), gz=bool(gz))
    assert labels_path_for(str(tmp_path / images)) == str(tmp_path / labels)
    ds = load_dataset(f"idx:{tmp_path / images}")
    assert ds.x is not None and ds.y is not None
    assert ds.x.shape == (30, 1, 28, 28) and ds.x.dtype == np.float32
    assert np.allclose(ds.x[:, 0] * 255.0, x)
    assert np.array_equal(ds.y, y.astype(np.int64))
    assert ds.info.class_names == tuple(str(v) for v in range(y.max() + 1))


def test_idx_without_labels_and_resize(tmp_path: Path, digits_idx: tuple) -> None:
    x, _ = digits_idx
    path = write(tmp_path / "my-images.idx3-ubyte.gz", idx_bytes(x), gz=True)
    ds = load_dataset(f"idx:{path}", image_size=16)
    assert ds.x is not None and ds.x.shape == (30, 1, 16, 16) and ds.y is None
    assert 0.0 <= ds.x.min() and ds.x.max() <= 1.0
    big = write(tmp_path / "wide-images", idx_bytes(np.full((2, 20, 100), 200, np.uint8)))
    ds = load_dataset(f"idx:{big}")  # non-square: centre-cropped and resized to the default 32
    assert ds.x is not None and ds.x.shape == (2, 1, 32, 32) and np.allclose(ds.x, 200 / 255, atol=1e-5)


def test_idx_malformed(tmp_path: Path, digits_idx: tuple) -> None:
    x, y = digits_idx
    good = idx_bytes(x)
    fails(f"idx:{tmp_path / 'missing-images'}", "missing-images", "no such")
    fails(f"idx:{tmp_path}", "folder")
    fails(f"idx:{write(tmp_path / 'empty', b'')}", "empty", "too short")
    wrong_magic = struct.pack(">I", 0x903) + good[4:]
    fails(f"idx:{write(tmp_path / 'magic', wrong_magic)}", "magic", "0x00000903")
    fails(f"idx:{write(tmp_path / 'lab', idx_bytes(y))}", "lab", "magic", "label")  # a labels file given as images
    fails(f"idx:{write(tmp_path / 'short', good[:-100])}", "short", "promises")
    fails(f"idx:{write(tmp_path / 'long', good + b'xx')}", "long", "promises")
    fails(f"idx:{write(tmp_path / 'shortgz', good[:-100], gz=True)}", "shortgz", "promises")
    fails(f"idx:{write(tmp_path / 'longgz', good + b'xx', gz=True)}", "longgz", "more")
    fails(f"idx:{write(tmp_path / 'hdr', good[:10])}", "hdr", "header")
    # a header promising far more than the file holds is refused before anything is allocated
    huge = struct.pack(">IIII", 0x803, 1_000_000, 4096, 4096)
    fails(f"idx:{write(tmp_path / 'huge', huge + bytes(100))}", "huge", "GiB")
    many = struct.pack(">IIII", 0x803, 100_000, 28, 28)
    fails(f"idx:{write(tmp_path / 'many', many + bytes(784 * 3))}", "many", "promises")
    for dims in [(0, 28, 28), (5, 0, 28), (5, 28, 5000)]:
        fails(f"idx:{write(tmp_path / 'dims', struct.pack('>IIII', 0x803, *dims))}", "dims", "absurd")
    # truncated and corrupt gzip
    stream = gzip.compress(good)
    fails(f"idx:{write(tmp_path / 'trunc.gz', stream[: len(stream) // 2])}", "trunc.gz", "gzip")
    fails(f"idx:{write(tmp_path / 'crc.gz', stream[:-8] + bytes(8))}", "crc.gz", "gzip")
    fails(f"idx:{write(tmp_path / 'junk.gz', stream[:20] + bytes(range(256)) * 4)}", "junk.gz")


def test_idx_label_count_mismatch(tmp_path: Path, digits_idx: tuple) -> None:
    x, y = digits_idx
    write(tmp_path / "a-images-idx3-ubyte", idx_bytes(x))
    write(tmp_path / "a-labels-idx1-ubyte", idx_bytes(y[:-1]))
    fails(f"idx:{tmp_path / 'a-images-idx3-ubyte'}", "a-labels-idx1-ubyte", "29 labels for 30 images")
    write(tmp_path / "b-images-idx3-ubyte", idx_bytes(x))
    write(tmp_path / "b-labels-idx1-ubyte", idx_bytes(x))  # images where labels should be
    fails(f"idx:{tmp_path / 'b-images-idx3-ubyte'}", "b-labels-idx1-ubyte", "magic")


def test_decompression_bombs_are_refused_before_they_are_decoded(tmp_path: Path, monkeypatch) -> None:
    """Small compressed files that promise more than the memory budget: refused from their headers, at a
    peak far below what they promise (the budget is lowered to 8 MB here to keep the test small)."""
    import tracemalloc

    import engines.data.files as files

    monkeypatch.setattr(files, "MEMORY_BUDGET", 8 * 2**20)
    zeros = np.zeros((12_000, 28, 28), np.uint8)  # 9.4 MB of pixels, 10 kB or so compressed
    gz = tmp_path / "bomb-images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(idx_bytes(zeros)))
    npz = tmp_path / "bomb.npz"
    np.savez_compressed(npz, x=zeros)
    assert gz.stat().st_size < 100_000 and npz.stat().st_size < 100_000
    tracemalloc.start()
    fails(f"idx:{gz}", "to decode", "limit")
    fails(f"npz:{npz}", "to decode", "limit")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * 2**20, peak  # nothing of the promised size was ever allocated
    # labels that do not match are refused from their header, before their payload is read
    ok = np.zeros((30, 8, 8), np.uint8)
    write(tmp_path / "c-images-idx3-ubyte", idx_bytes(ok))
    (tmp_path / "c-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(5_000_000, np.uint8))))
    fails(f"idx:{tmp_path / 'c-images-idx3-ubyte'}", "5000000 labels for 30 images")


def test_converting_in_chunks_matches_converting_at_once(monkeypatch) -> None:
    import engines.data.files as files

    x = np.random.default_rng(0).integers(0, 256, (10, 1, 12, 12), np.uint8)
    whole = files.resize_images(x.astype(np.float32) / 255, 16)
    monkeypatch.setattr(files, "_CONVERT_CHUNK", 3)
    np.testing.assert_array_equal(files.to_float_images(x, 16, 255.0), whole)


# --------------------------------------------------------------------------------------------
# Folder
# --------------------------------------------------------------------------------------------


def save(path: Path, arr: np.ndarray, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt)
    return path


def test_folder_with_class_subfolders(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    grey = {c: [rng.integers(0, 256, (16, 16), dtype=np.uint8) for _ in range(n)] for c, n in [("cat", 3), ("dog", 2)]}
    for c, imgs in grey.items():
        for i, a in enumerate(imgs):
            save(tmp_path / c / f"{i}.png", a)
    (tmp_path / "notes.txt").write_text("not an image, and ignored")
    (tmp_path / "empty_class").mkdir()
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.x is not None and ds.y is not None
    assert ds.x.shape == (5, 1, 16, 16)  # all the same square size: kept
    assert ds.info.class_names == ("cat", "dog") and ds.y.tolist() == [0, 0, 0, 1, 1]
    assert np.allclose(ds.x[3, 0] * 255, grey["dog"][0])
    assert load_dataset(f"folder:{tmp_path}", image_size=8).x.shape == (5, 1, 8, 8)  # type: ignore[union-attr]


def test_folder_formats_mixed_sizes_and_colour(tmp_path: Path) -> None:
    rgb = np.zeros((20, 20, 3), np.uint8)
    rgb[..., 0] = 255
    save(tmp_path / "a.png", np.full((12, 12), 128, np.uint8))
    save(tmp_path / "b.jpg", rgb, "JPEG")
    save(tmp_path / "c.bmp", np.full((40, 30), 255, np.uint8), "BMP")
    save(tmp_path / "d.webp", rgb, "WEBP")
    Image.fromarray(np.full((10, 10), 30000, np.uint16)).save(tmp_path / "e.png")  # 16-bit grey
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.x is not None and ds.y is None
    assert ds.x.shape == (5, 3, 32, 32)  # mixed sizes: the default 32; any colour: 3 channels
    assert np.allclose(ds.x[0], 128 / 255, atol=1e-5)  # grey repeated over the 3 channels
    assert ds.x[1, 0].mean() > 0.9 and ds.x[1, 1:].mean() < 0.1  # red stays red
    assert np.allclose(ds.x[4], 30000 / 65535, atol=1e-3)
    assert load_dataset(f"folder:{tmp_path}", image_size=8).x.shape == (5, 3, 8, 8)  # type: ignore[union-attr]


def test_folder_rgb_files_of_grey_pixels_are_one_channel(tmp_path: Path) -> None:
    for i in range(3):
        save(tmp_path / f"{i}.png", np.full((10, 10, 3), 40 * i, np.uint8))
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.x is not None and ds.x.shape == (3, 1, 10, 10)
    assert np.allclose(ds.x[2], 80 / 255)


def test_folder_malformed(tmp_path: Path) -> None:
    fails(f"folder:{tmp_path / 'nope'}", "nope", "no such folder")
    (tmp_path / "empty").mkdir()
    fails(f"folder:{tmp_path / 'empty'}", "empty", "no images")
    (tmp_path / "file.png").write_bytes(b"hello")
    fails(f"folder:{tmp_path / 'file.png'}", "file.png", "not a folder")
    bad = tmp_path / "bad"
    save(bad / "ok.png", np.zeros((8, 8), np.uint8))
    (bad / "fake.png").write_bytes(b"this is not a png at all")
    fails(f"folder:{bad}", "fake.png", "not an image")
    trunc = tmp_path / "trunc"
    png = save(trunc / "t.png", np.random.default_rng(5).integers(0, 256, (64, 64), dtype=np.uint8))
    png.write_bytes(png.read_bytes()[:200])
    fails(f"folder:{trunc}", "t.png")
    mixed = tmp_path / "mixed"
    save(mixed / "top.png", np.zeros((8, 8), np.uint8))
    save(mixed / "cls" / "in.png", np.zeros((8, 8), np.uint8))
    fails(f"folder:{mixed}", "mixed", "sub-folders")
    huge = tmp_path / "huge"
    huge.mkdir()
    Image.new("1", (5000, 10)).save(huge / "wide.png")
    fails(f"folder:{huge}", "wide.png", "5000x10")


# --------------------------------------------------------------------------------------------
# npz
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layout, shape",
    [("NHW", (6, 12, 12)), ("NHWC", (6, 12, 12, 3)), ("NHWC", (6, 12, 12, 1)), ("NCHW", (6, 3, 12, 12)),
     ("NCHW", (6, 1, 12, 12))],
)
@pytest.mark.parametrize("dtype", ["uint8", "float32", "float64"])
def test_npz_layouts(tmp_path: Path, layout: str, shape: tuple, dtype: str) -> None:
    rng = np.random.default_rng(6)
    u8 = rng.integers(0, 256, shape, dtype=np.uint8)
    x = u8 if dtype == "uint8" else (u8 / 255.0).astype(dtype)
    np.savez(tmp_path / "d.npz", x=x)
    ds = load_dataset(f"npz:{tmp_path / 'd.npz'}")
    assert ds.x is not None and ds.x.dtype == np.float32 and ds.y is None
    expect = u8[:, None] if layout == "NHW" else np.moveaxis(u8, 3, 1) if layout == "NHWC" else u8
    assert ds.x.shape == expect.shape and np.allclose(ds.x * 255.0, expect, atol=1e-3)


def test_npz_labels_and_factors(tmp_path: Path) -> None:
    x = np.zeros((4, 8, 8), np.uint8)
    np.savez_compressed(tmp_path / "a.npz", x=x, y=np.array([7, 3, 7, 9]), factors=np.array([[0, 5], [1, 5], [0, 6], [1, 8]]))
    ds = load_dataset(f"npz:{tmp_path / 'a.npz'}", image_size=16)
    assert ds.x is not None and ds.x.shape == (4, 1, 16, 16)
    assert ds.y is not None and ds.y.tolist() == [1, 0, 1, 2] and ds.info.class_names == ("3", "7", "9")
    assert ds.factors is not None and ds.factors.tolist() == [[0, 0], [1, 0], [0, 1], [1, 2]]
    assert ds.info.factor_sizes == (2, 3) and ds.info.factor_names == ("factor_0", "factor_1")
    np.savez(tmp_path / "b.npz", x=x, y=np.array([0, 1, 1, 0]), class_names=np.array(["no", "yes"]),
             factors=np.array([[0], [1], [2], [3]]), factor_names=np.array(["pose"]))
    ds = load_dataset(f"npz:{tmp_path / 'b.npz'}")
    assert ds.info.class_names == ("no", "yes") and ds.info.factor_names == ("pose",) and ds.info.factor_sizes == (4,)


def test_npz_malformed(tmp_path: Path) -> None:
    def npz(name: str, **arrays: object) -> str:
        np.savez(tmp_path / name, **arrays)  # type: ignore[arg-type]
        return f"npz:{tmp_path / name}"

    x = np.zeros((4, 8, 8), np.uint8)
    fails(f"npz:{tmp_path / 'missing.npz'}", "missing.npz", "no such")
    fails(npz("nox.npz", images=x), "nox.npz", "no array named x", "images")
    fails(npz("range.npz", x=np.full((2, 8, 8), 1.5)), "range.npz", "[1.5, 1.5]", "[0, 1]")
    fails(npz("neg.npz", x=np.full((2, 8, 8), -0.1, np.float32)), "neg.npz", "[0, 1]")
    fails(npz("nan.npz", x=np.full((2, 8, 8), np.nan)), "nan.npz", "nan")
    fails(npz("obj.npz", x=np.array([None, 1], dtype=object)), "obj.npz", "object")
    fails(npz("int.npz", x=np.full((2, 8, 8), 300)), "int.npz", "0..255")
    fails(npz("str.npz", x=np.array(["a", "b"])), "str.npz", "shape")
    fails(npz("dims.npz", x=np.zeros((4, 8))), "dims.npz", "shape")
    fails(npz("chan.npz", x=np.zeros((4, 8, 8, 4))), "chan.npz", "channel")
    fails(npz("none.npz", x=np.zeros((0, 8, 8))), "none.npz", "absurd")
    fails(npz("ylen.npz", x=x, y=np.arange(3)), "ylen.npz", "y", "N = 4")
    fails(npz("yfloat.npz", x=x, y=np.zeros(4)), "yfloat.npz", "y", "integers")
    fails(npz("fac.npz", x=x, factors=np.zeros(4, np.int64)), "fac.npz", "factors")
    fails(npz("names.npz", x=x, y=np.array([0, 1, 2, 0]), class_names=np.array(["a", "b"])), "names.npz", "class_names")
    (tmp_path / "text.npz").write_text("not a zip")
    fails(f"npz:{tmp_path / 'text.npz'}", "text.npz", "not an .npz")
    np.save(tmp_path / "single.npy", x)
    fails(f"npz:{tmp_path / 'single.npy'}", "single.npy", "not an .npz")
    # an .npy header that promises far more than its member holds, and a member cut short
    for name, shape in [("bomb.npz", (10**6, 1000, 1000)), ("cut.npz", (100, 8, 8))]:
        member = bytearray()
        header = {"descr": "|u1", "fortran_order": False, "shape": shape}

        class Sink:
            def write(self, b: bytes) -> None:
                member.extend(b)

        np.lib.format.write_array_header_1_0(Sink(), header)
        with zipfile.ZipFile(tmp_path / name, "w") as zf:
            zf.writestr("x.npy", bytes(member) + bytes(64))
        fails(f"npz:{tmp_path / name}", name, "x")


def test_postscript_named_png_never_reaches_ghostscript(tmp_path: Path, monkeypatch) -> None:
    """Pillow picks a decoder by content: EPS content in a .png would go to Ghostscript (a `{ } loop` hangs,
    a printing body runs). User images open as raster formats only, so it is refused at once, by name."""
    from PIL import EpsImagePlugin

    from engines.shared.image_files import load_image_file

    called = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: called.append(a) or (_ for _ in ()).throw(
        AssertionError("Ghostscript was called")))
    evil = tmp_path / "evil.png"
    evil.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n{ } loop\nshowpage\n")
    start = time.perf_counter()
    with pytest.raises(DataError, match="evil.png: not an image of a format we read"):
        load_image_file(str(evil), 1, 16)
    folder = tmp_path / "folder"
    save(folder / "ok.png", np.zeros((8, 8), np.uint8))
    (folder / "evil.png").write_bytes(evil.read_bytes())
    fails(f"folder:{folder}", "evil.png", "not an image")
    assert not called and time.perf_counter() - start < 5
