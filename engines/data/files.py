"""The user's own data files: MNIST-style IDX (raw or gzip), a folder of images, an ``.npz``.

Every file is untrusted. Each loader checks what it reads before it allocates (an IDX header is
checked against the file's size, a gzip stream is read with a cap derived from its header, an npz
member's header and size are checked before it is loaded) and raises
:class:`engines.shared.errors.DataError` naming the file and the problem; no numpy, zlib or Pillow
exception escapes.

Size policy (shared by all three loaders): with ``image_size`` given, every image is resized to
``image_size x image_size``; without it, images keep their own size when they are square with a
side in [:data:`MIN_SIZE`, :data:`MAX_SIZE`] (and, for a folder, all of the same size), and are
otherwise resized to :data:`DEFAULT_SIZE`. A non-square image is centre-cropped to a square
before it is resized. Resizing is Pillow's bicubic filter (antialiased when shrinking), clipped
to [0, 1].

This module also holds the array helpers the built-in data sets share (:func:`resize_images`,
:func:`array_dataset`). numpy and Pillow only: no torch.
"""

from __future__ import annotations

import gzip
import os
import stat
import struct
import zipfile
import zlib
from typing import BinaryIO

import numpy as np
from PIL import Image

from engines.data.base import DataInfo, Dataset, split_indices
from engines.shared.image_files import (  # noqa: F401 - MIN_SIZE, MAX_SIZE and load_image_file are part of this module's face
    _BICUBIC, MAX_SIDE, MAX_SIZE, MIN_SIZE, _crop_box, _load_image, _probe, load_image_file,
)
from engines.shared.errors import DataError

#: Side that images of an unusable size (non-square, mixed, or outside the range) are resized to.
DEFAULT_SIZE = 32
#: Most values (float32) a loaded data set may hold, before or after resizing: 2 GiB.
MAX_ELEMENTS = 1 << 29
#: Most image files read from a folder.
MAX_FILES = 200_000
#: File name endings read from a folder (case-insensitive).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")

IDX_IMAGES = 0x00000803  # unsigned bytes, 3 dimensions (N, H, W)
IDX_LABELS = 0x00000801  # unsigned bytes, 1 dimension (N,)
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


# --------------------------------------------------------------------------------------------
# Helpers shared by every loader
# --------------------------------------------------------------------------------------------


def target_size(h: int, w: int, image_size: int | None) -> int:
    """The side images of native size (h, w) are stored at, following the module's size policy."""
    if image_size is not None:
        return image_size
    return h if h == w and MIN_SIZE <= h <= MAX_SIZE else DEFAULT_SIZE



#: Most bytes one data file may take while it is decoded: its raw array (as stored, decompressed) plus the
#: float32 images it becomes; conversion and resizing go chunk by chunk, so nothing else of that size is held.
MEMORY_BUDGET = 3 * 2**30
#: Images converted (and resized) at a time.
_CONVERT_CHUNK = 1024


def check_budget(raw_bytes: int, out_elements: int, name: str, what: str) -> None:
    """Raise DataError, before anything is decoded, when ``raw_bytes`` plus ``out_elements`` float32 values
    pass :data:`MEMORY_BUDGET` (a small compressed file can promise gigabytes)."""
    need = int(raw_bytes) + 4 * int(out_elements)
    if need > MEMORY_BUDGET:
        raise DataError(f"{name}: {what} would need {need / 2**30:.1f} GiB to decode (the limit is "
                        f"{MEMORY_BUDGET / 2**30:.0f} GiB); use fewer images or a smaller image_size")


def to_float_images(x: np.ndarray, size: int, scale: float) -> np.ndarray:
    """``x`` (N, C, H, W) of any numeric dtype, divided by ``scale`` and resized to ``size``, chunk by chunk.

    Returns
    -------
    (N, C, size, size) float32 in [0, 1]; only one chunk of :data:`_CONVERT_CHUNK` images is ever held as
    float32 at its native size beside the output.
    """
    n, c, h, w = x.shape
    out = np.empty((n, c, size, size), np.float32)
    for start in range(0, n, _CONVERT_CHUNK):
        chunk = np.asarray(x[start: start + _CONVERT_CHUNK], dtype=np.float32)
        if scale != 1.0:
            chunk /= np.float32(scale)
        out[start: start + len(chunk)] = resize_images(chunk, size)
    return out


def check_elements(n: int, name: str, what: str) -> None:
    """Raise DataError if ``n`` float32 values would exceed :data:`MAX_ELEMENTS`."""
    if n > MAX_ELEMENTS:
        raise DataError(
            f"{name}: {what} would need {n * 4 / 2**30:.1f} GiB as float32 "
            f"(the limit is {MAX_ELEMENTS * 4 / 2**30:.0f} GiB); use fewer images or a smaller image_size"
        )


def resize_images(x: np.ndarray, size: int) -> np.ndarray:
    """Resize images to ``size x size`` with Pillow's bicubic filter (centre-cropping non-square ones).

    Parameters
    ----------
    x : (N, C, H, W) float32 in [0, 1]
    size : int
        Side of the output in pixels.

    Returns
    -------
    (N, C, size, size) float32 in [0, 1] (``x`` itself when it already has that size).
    """
    n, c, h, w = x.shape
    if h == w == size:
        return x
    box = _crop_box(w, h)
    out = np.empty((n, c, size, size), np.float32)
    for i in range(n):
        for j in range(c):
            im = Image.fromarray(np.ascontiguousarray(x[i, j], dtype=np.float32))
            out[i, j] = np.asarray(im.resize((size, size), _BICUBIC, box=box))
    return np.clip(out, 0.0, 1.0, out=out)


def labels_to_classes(y: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer labels to indices in [0, K) and class names.

    Labels that are already 0..K-1 are kept; other values are renumbered in sorted order and
    their original values become the class names.
    """
    values, inverse = np.unique(y, return_inverse=True)
    if np.array_equal(values, np.arange(len(values))):
        return y.astype(np.int64), tuple(str(v) for v in range(len(values)))
    return inverse.reshape(-1).astype(np.int64), tuple(str(v) for v in values.tolist())


def array_dataset(
    spec: str,
    x: np.ndarray,
    y: np.ndarray | None = None,
    class_names: tuple[str, ...] | None = None,
    factors: np.ndarray | None = None,
    factor_names: tuple[str, ...] | None = None,
    factor_sizes: tuple[int, ...] | None = None,
    modes: tuple[tuple[float, float], ...] | None = None,
    mode_std: float | None = None,
) -> Dataset:
    """A :class:`Dataset` over arrays, with its fixed held-out split.

    Parameters
    ----------
    spec : str
        The spec that made the data set.
    x : (N, C, H, W) float32 in [0, 1] images, or (N, 2) float32 points
    y : (N,) int64 labels in [0, len(class_names)), optional
    factors : (N, K) int64, optional
        Ground-truth factor values, column k in [0, factor_sizes[k]).
    """
    n = len(x)
    train, test = split_indices(n)
    info = DataInfo(
        spec=spec, kind="points" if x.ndim == 2 else "image", shape=tuple(int(s) for s in x.shape[1:]),
        size=n, n_train=len(train), n_test=len(test), class_names=class_names,
        factor_names=factor_names, factor_sizes=factor_sizes, modes=modes, mode_std=mode_std,
    )
    return Dataset(info=info, x=x, y=y, factors=factors, train_indices=train, test_indices=test)


# --------------------------------------------------------------------------------------------
# IDX (MNIST format)
# --------------------------------------------------------------------------------------------


def _open(path: str) -> BinaryIO:
    """Open a regular file for reading (never a folder, pipe or device, which could block)."""
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise DataError(f"{path}: is a folder, not a file")
        if not stat.S_ISREG(mode):
            raise DataError(f"{path}: is not a regular file")
        return open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None


def _read(stream: BinaryIO, n: int, path: str) -> bytearray:
    """Up to ``n`` bytes of ``stream`` (fewer only at its end); gzip and I/O errors become DataError."""
    buf = bytearray()
    try:
        while len(buf) < n:
            chunk = stream.read(min(_CHUNK, n - len(buf)))
            if not chunk:
                break
            buf += chunk
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{path}: truncated or corrupt gzip stream ({e})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e})") from None
    return buf


def read_idx(path: str, magic: int, count: int | None = None, out_per_item: int = 0) -> tuple[tuple[int, ...], bytearray]:
    """Read an IDX file of unsigned bytes (raw or gzip), checking its header against its size.

    Parameters
    ----------
    path : str
    magic : int
        The expected magic number: :data:`IDX_IMAGES` (N, H, W) or :data:`IDX_LABELS` (N,).
    count : int or None
        The N the header must declare (labels for N images), checked before the payload is read.
    out_per_item : int
        float32 values each of the N items becomes (images after resizing), counted in the memory budget
        (:func:`check_budget`) before the payload is read.

    Returns
    -------
    dims : tuple of int
        The dimensions the header declares.
    data : bytearray
        Exactly ``prod(dims)`` bytes.

    Raises
    ------
    DataError
        Missing file, wrong magic number, absurd dimensions, fewer or more bytes than the header
        promises, or a truncated or corrupt gzip stream.
    """
    with _open(path) as f:
        is_gzip = f.read(2) == _GZIP_MAGIC
        f.seek(0)
        stream: BinaryIO = gzip.GzipFile(fileobj=f, mode="rb") if is_gzip else f  # type: ignore[assignment]
        head = _read(stream, 4, path)
        if len(head) < 4:
            raise DataError(f"{path}: too short for an IDX header ({len(head)} bytes)")
        found = int.from_bytes(head, "big")
        if found != magic:
            names = {IDX_IMAGES: "IDX images (ubyte, N x H x W)", IDX_LABELS: "IDX labels (ubyte, N)"}
            hint = f"; this is an {names[found]} file" if found in names else ""
            raise DataError(
                f"{path}: wrong magic number 0x{found:08x}, expected 0x{magic:08x} for {names[magic]}{hint}"
            )
        ndim = head[3]
        raw = _read(stream, 4 * ndim, path)
        if len(raw) < 4 * ndim:
            raise DataError(f"{path}: truncated IDX header ({ndim} dimensions declared)")
        dims = struct.unpack(f">{ndim}I", raw)
        if dims[0] == 0 or any(d == 0 or d > MAX_SIDE for d in dims[1:]):
            raise DataError(f"{path}: absurd IDX dimensions {'x'.join(map(str, dims))}")
        expected = int(np.prod(dims, dtype=np.int64))
        check_elements(expected, path, f"{'x'.join(map(str, dims))} values")
        if count is not None and dims[0] != count:
            raise DataError(f"{path}: {dims[0]} labels for {count} images")
        check_budget(expected, dims[0] * out_per_item, path, f"{'x'.join(map(str, dims))} values")
        if not is_gzip:
            held = os.fstat(f.fileno()).st_size - 4 - 4 * ndim
            if held != expected:
                raise DataError(
                    f"{path}: header promises {'x'.join(map(str, dims))} = {expected} bytes "
                    f"but the file holds {held} bytes after the header"
                )
        data = _read(stream, expected + 1, path)
        if len(data) != expected:
            raise DataError(
                f"{path}: header promises {'x'.join(map(str, dims))} = {expected} bytes but the "
                f"decompressed stream holds {'more' if len(data) > expected else len(data)} bytes after the header"
            )
    return dims, data


def labels_path_for(path: str) -> str | None:
    """The labels file beside an IDX images file, where there is one.

    ``t10k-images-idx3-ubyte.gz`` -> ``t10k-labels-idx1-ubyte.gz`` (or without ``.gz``),
    ``train-images.idx3-ubyte`` -> ``train-labels.idx1-ubyte``.
    """
    folder, name = os.path.split(path)
    stem, gz = (name[:-3], True) if name.lower().endswith(".gz") else (name, False)
    label_stem = stem.replace("images", "labels").replace("idx3", "idx1")
    if label_stem == stem:
        return None
    for candidate in ((label_stem + ".gz", label_stem) if gz else (label_stem, label_stem + ".gz")):
        full = os.path.join(folder, candidate)
        if os.path.isfile(full):
            return full
    return None


def load_idx(path: str, image_size: int | None = None, spec: str | None = None) -> Dataset:
    """MNIST-format IDX images (magic 0x00000803, raw or gzip), with the labels beside them if any.

    Parameters
    ----------
    path : str
        The images file, e.g. ``t10k-images-idx3-ubyte.gz``. Labels are read from the matching
        ``*labels-idx1-ubyte[.gz]`` (see :func:`labels_path_for`) when it exists.
    image_size : int, optional
        Side to resize to; by default the module's size policy (MNIST keeps 28).
    spec : str, optional
        Spec recorded in the :class:`DataInfo` (default ``"idx:" + path``).

    Returns
    -------
    Dataset
        x (N, 1, S, S) float32 in [0, 1]; y (N,) int64 where labels were found.

    Raises
    ------
    DataError
        See :func:`read_idx`; also a labels file whose count differs from the images'.
    """
    path = os.path.expanduser(path)
    dims, data = read_idx(path, IDX_IMAGES, out_per_item=(image_size or MAX_SIZE) ** 2)  # at most 64 x 64 each
    n, h, w = dims
    size = target_size(h, w, image_size)
    check_elements(n * size * size, path, f"{n} images of {size}x{size}")
    x = to_float_images(np.frombuffer(data, np.uint8).reshape(n, 1, h, w), size, 255.0)  # chunk by chunk
    del data
    y = class_names = None
    label_path = labels_path_for(path)
    if label_path is not None:
        (m,), raw = read_idx(label_path, IDX_LABELS, count=n)  # a wrong count is refused before its payload
        y, class_names = labels_to_classes(np.frombuffer(raw, np.uint8))
    return array_dataset(spec or f"idx:{path}", x, y, class_names)


# --------------------------------------------------------------------------------------------
# A folder of images
# --------------------------------------------------------------------------------------------


def _image_files(folder: str) -> list[str]:
    """Image files directly inside ``folder`` (sorted; hidden files skipped)."""
    out = []
    try:
        with os.scandir(folder) as it:
            for e in it:
                if not e.name.startswith(".") and e.name.lower().endswith(IMAGE_EXTENSIONS) and e.is_file():
                    out.append(e.path)
                    if len(out) > MAX_FILES:
                        break
    except OSError as e:
        raise DataError(f"{folder}: cannot be listed ({e.strerror or e})") from None
    return sorted(out)


def _scan(root: str) -> tuple[list[str], np.ndarray | None, tuple[str, ...] | None]:
    """Image files of a folder and, where they sit in sub-folders, their labels."""
    top = _image_files(root)
    try:
        subs = sorted(e.path for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    except OSError as e:
        raise DataError(f"{root}: cannot be listed ({e.strerror or e})") from None
    files, labels, names = [], [], []
    for sub in subs:
        found = _image_files(sub)
        if found:
            labels += [len(names)] * len(found)
            names.append(os.path.basename(sub))
            files += found
        if len(files) + len(top) > MAX_FILES:
            raise DataError(f"{root}: more than {MAX_FILES} image files")
    if top and files:
        raise DataError(
            f"{root}: has images both at the top level ({os.path.basename(top[0])}, ...) and in "
            f"sub-folders; put every image in a sub-folder (one per class) or none"
        )
    if top:
        if len(top) > MAX_FILES:
            raise DataError(f"{root}: more than {MAX_FILES} image files")
        return top, None, None
    if not files:
        raise DataError(f"{root}: no images ({', '.join(IMAGE_EXTENSIONS)}) in the folder or its sub-folders")
    return files, np.asarray(labels, np.int64), tuple(names)





def load_folder(path: str, image_size: int | None = None, spec: str | None = None) -> Dataset:
    """A folder of PNG/JPEG/BMP/WebP images, labelled by sub-folder where there are sub-folders.

    Images sit either all directly in ``path`` (no labels) or in its sub-folders, one level deep,
    one sub-folder per class (class names are the sub-folder names, sorted); deeper folders and
    hidden files are ignored. At most :data:`MAX_FILES` files.

    Size: ``image_size`` if given; else the images' own size when all are the same square size
    in [8, 64]; else (mixed or non-square sizes) :data:`DEFAULT_SIZE`. Non-square images are
    centre-cropped, then resized (bicubic). Channels: 3 if any image is in a colour mode (RGB,
    palette, CMYK, ...) and not every image turns out grey (R = G = B), else 1; grey images in a
    colour set are repeated over 3 channels and alpha is dropped.

    Returns
    -------
    Dataset
        x (N, C, S, S) float32 in [0, 1]; y (N,) int64 and class names where there are sub-folders.

    Raises
    ------
    DataError
        Missing or empty folder, too many files, a file that is not a readable image or is
        larger than 4096 pixels a side, or a data set too large to hold.
    """
    path = os.path.expanduser(path)
    if not os.path.exists(path):
        raise DataError(f"{path}: no such folder")
    if not os.path.isdir(path):
        raise DataError(f"{path}: is not a folder")
    files, y, class_names = _scan(path)
    probes = [_probe(p) for p in files]
    sizes = {(w, h) for w, h, _ in probes}
    if image_size is None and len(sizes) == 1:
        (w, h), = sizes
        size = target_size(h, w, None)
    else:
        size = target_size(0, 1, image_size)
    channels = 3 if any(c for _, _, c in probes) else 1
    check_elements(len(files) * channels * size * size, path, f"{len(files)} images of {channels}x{size}x{size}")
    x = np.empty((len(files), channels, size, size), np.float32)
    for i, p in enumerate(files):
        x[i] = _load_image(p, channels, size)
    if channels == 3 and np.array_equal(x[:, 0], x[:, 1]) and np.array_equal(x[:, 0], x[:, 2]):
        x = np.ascontiguousarray(x[:, :1])
    return array_dataset(spec or f"folder:{path}", x, y, class_names)


# --------------------------------------------------------------------------------------------
# .npz
# --------------------------------------------------------------------------------------------


def _npz_header(zf: zipfile.ZipFile, key: str, path: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of an npz member from its header, before anything is loaded."""
    info = zf.getinfo(key + ".npy")
    if info.file_size > 8 * MAX_ELEMENTS + 4096:
        raise DataError(f"{path}: array {key!r} is too large ({info.file_size / 2**30:.1f} GiB)")
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    return shape, dtype


def _npz_array(npz: np.lib.npyio.NpzFile, key: str, path: str) -> np.ndarray:
    try:
        shape, dtype = _npz_header(npz.zip, key, path)
        if dtype.hasobject:
            raise DataError(f"{path}: array {key!r} holds Python objects (dtype {dtype}); only numeric arrays are read")
        if int(np.prod(shape, dtype=np.int64)) > 2 * MAX_ELEMENTS:
            raise DataError(f"{path}: array {key!r} of shape {shape} is too large")
        check_budget(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize, 0, path, f"array {key!r} of shape {shape}")
        return npz[key]
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - zip and .npy headers of a hostile file fail in many ways
        raise DataError(f"{path}: array {key!r} cannot be read ({e})") from None


def _npz_images(x: np.ndarray, path: str, image_size: int | None) -> np.ndarray:
    """Validate ``x`` and bring it to (N, C, S, S) float32 in [0, 1] (the module's size policy), chunk by chunk."""
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        first, last = x.shape[1] in (1, 3), x.shape[3] in (1, 3)
        if not (first or last):
            raise DataError(f"{path}: x of shape {x.shape} has no channel axis of size 1 or 3")
        if last and not (first and (x.shape[2] == x.shape[3] or x.shape[1] != x.shape[2])):
            x = np.moveaxis(x, 3, 1)  # (N, H, W, C) -> (N, C, H, W)
    else:
        raise DataError(f"{path}: x has shape {x.shape}; expected (N, H, W), (N, H, W, C) or (N, C, H, W)")
    n, c, h, w = x.shape
    if n == 0 or not (0 < h <= MAX_SIDE and 0 < w <= MAX_SIDE):
        raise DataError(f"{path}: x has absurd shape {x.shape}")
    size = target_size(h, w, image_size)
    check_elements(n * c * size * size, path, f"{n} images of {c}x{size}x{size}")
    check_budget(x.nbytes, n * c * size * size, path, f"{n} images of {c}x{h}x{w} as {c}x{size}x{size}")
    if x.dtype == np.uint8 or x.dtype == np.bool_:
        return to_float_images(x, size, 255.0 if x.dtype == np.uint8 else 1.0)
    if np.issubdtype(x.dtype, np.integer):
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > 255:
            raise DataError(f"{path}: integer x ({x.dtype}) has values in [{lo}, {hi}]; expected 0..255")
        return to_float_images(x, size, 255.0)
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise DataError(f"{path}: float x holds NaN or infinite values")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise DataError(f"{path}: float x has values in [{lo:g}, {hi:g}]; expected [0, 1] (or uint8 0..255)")
        return to_float_images(x, size, 1.0)
    raise DataError(f"{path}: x has dtype {x.dtype}; expected uint8 0..255 or float in [0, 1]")


def _npz_names(npz: np.lib.npyio.NpzFile, key: str, count: int | None, path: str) -> tuple[str, ...] | None:
    """Strings stored under ``key`` (``count`` of them where given), or None where absent."""
    if key not in npz.files:
        return None
    a = _npz_array(npz, key, path)
    if a.ndim != 1 or a.dtype.kind not in "US" or len(a) == 0 or (count is not None and len(a) != count):
        want = f"{count} strings" if count is not None else "a list of strings"
        raise DataError(f"{path}: {key} must be {want}, got {a.dtype} of shape {a.shape}")
    return tuple(str(s.decode() if isinstance(s, bytes) else s) for s in a.tolist())


def _int_array(a: np.ndarray, key: str, n: int, ndim: int, path: str) -> np.ndarray:
    """``a`` as int64 after checking it is an integer array of ``ndim`` dimensions and length ``n``."""
    if a.ndim != ndim or len(a) != n or not (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
        want = "(N,)" if ndim == 1 else "(N, K)"
        raise DataError(
            f"{path}: {key} must be integers of shape {want} with N = {n} (the number of images), "
            f"got {a.dtype} of shape {a.shape}"
        )
    return a.astype(np.int64)


def load_npz(path: str, image_size: int | None = None, spec: str | None = None) -> Dataset:
    """Images from an ``.npz`` archive (read with ``allow_pickle=False``).

    Keys: ``x`` (N, H, W), (N, H, W, C) or (N, C, H, W) with C in {1, 3}, uint8 0..255 (or
    another integer type within 0..255) or float in [0, 1] (required); ``y`` (N,) integer labels;
    ``class_names`` (K,) strings, with ``y`` in [0, K); ``factors`` (N, K) integer ground-truth
    factors, each column renumbered to 0..size-1 in sorted order; ``factor_names`` (K,) strings.
    A 4-D ``x`` whose axes 1 and 3 could both be channels is read as (N, C, H, W) when H = W.

    Returns
    -------
    Dataset
        x (N, C, S, S) float32 in [0, 1] (size policy of the module), y and factors where given.

    Raises
    ------
    DataError
        Missing file, not an npz, no ``x``, object arrays, wrong shapes or dtypes, float values
        outside [0, 1] or not finite, or label/factor counts that differ from the image count.
    """
    path = os.path.expanduser(path)
    with _open(path) as f:
        if f.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise DataError(f"{path}: not an .npz archive (no zip signature)")
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001
        raise DataError(f"{path}: not a readable .npz archive ({e})") from None
    with npz:
        if "x" not in npz.files:
            raise DataError(f"{path}: has no array named x (found: {', '.join(npz.files) or 'nothing'})")
        x = _npz_images(_npz_array(npz, "x", path), path, image_size)
        n = x.shape[0]
        y = class_names = factors = factor_names = factor_sizes = None
        if "y" in npz.files:
            y = _int_array(_npz_array(npz, "y", path), "y", n, 1, path)
            class_names = _npz_names(npz, "class_names", None, path)
            if class_names is None:
                y, class_names = labels_to_classes(y)
            elif y.min() < 0 or y.max() >= len(class_names):
                raise DataError(f"{path}: y has values outside [0, {len(class_names)}) of class_names")
        if "factors" in npz.files:
            f = _int_array(_npz_array(npz, "factors", path), "factors", n, 2, path)
            columns = [np.unique(col, return_inverse=True) for col in f.T]
            factors = np.stack([inv.reshape(-1) for _, inv in columns], axis=1).astype(np.int64)
            factor_sizes = tuple(len(v) for v, _ in columns)
            factor_names = _npz_names(npz, "factor_names", f.shape[1], path) or tuple(
                f"factor_{k}" for k in range(f.shape[1])
            )
    return array_dataset(spec or f"npz:{path}", x, y, class_names, factors, factor_names, factor_sizes)
