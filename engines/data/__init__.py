"""Data sets by spec string: built-in (shapes, digits, ring, grid) and the user's files (idx, folder, npz).

Every loader returns a :class:`Dataset` of float32 arrays (images in [0, 1]) and raises
:class:`engines.shared.errors.DataError` with the file and the problem on bad input. numpy only: no torch.

Specs
-----
``shapes``, ``shapes:SIZE``
    dSprites-style shapes with factors (shape, scale, orientation, x, y), 64x64 by default,
    drawn lazily (:mod:`engines.data.shapes`).
``digits``, ``digits:SIZE``
    scikit-learn's 1,797 handwritten 8x8 digits, upscaled (32x32 by default).
``ring``, ``grid``
    2-D Gaussian mixtures with known modes (PacGAN's 8-mode ring and 25-mode grid).
``idx:PATH``, ``folder:PATH``, ``npz:PATH``
    The user's files (:mod:`engines.data.files`, which documents the size policy).
``binarized:SPEC``
    Any image spec above, statically binarised with a fixed seed for the Bernoulli models
    (:mod:`engines.data.binarize`, which states the draw), e.g. ``binarized:digits``.

An ``image_size`` passed to :func:`load_dataset` overrides a size in the spec. It is ignored by
the 2-D point sets, but checked like everywhere else.
"""

from __future__ import annotations

import operator

from engines.data.base import DataInfo, Dataset, split_indices
from engines.data.binarize import binarized, split_binarized
from engines.data.builtin import load_digits, load_grid, load_ring, load_shapes
from engines.data.files import MAX_SIZE, MIN_SIZE, load_folder, load_idx, load_npz
from engines.data.shapes import ShapesDataset
from engines.shared.datainfo import BUILTIN_SPECS
from engines.shared.errors import DataError

__all__ = [
    "BUILTIN_SPECS",
    "DataError",
    "DataInfo",
    "Dataset",
    "ShapesDataset",
    "check_image_size",
    "load_dataset",
    "parse_spec",
    "split_indices",
]


_SIZED = ("shapes", "digits")  # optional ":SIZE"
_PLAIN = ("ring", "grid")  # no argument
_FILES = ("idx", "folder", "npz")  # ":PATH" required
KINDS = _SIZED + _PLAIN + _FILES


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split a data spec into its kind and argument, checking its syntax (a ``binarized:`` prefix is
    looked through: the inner spec's kind and argument are returned).

    Parameters
    ----------
    spec : str
        e.g. ``"shapes"``, ``"shapes:32"``, ``"idx:/a/b.gz"``. The kind is case-insensitive; the
        argument is everything after the first colon (so ``"folder:C:\\images"`` works).

    Returns
    -------
    kind : str
        One of :data:`KINDS`.
    argument : str or None
        The size or path; None where the spec has none.

    Raises
    ------
    DataError
        An empty spec, an unknown kind, a file kind without a path, an argument given to
        ``ring``/``grid``, or a size that is not an integer in 8..64.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"empty data spec {spec!r}; expected one of {', '.join(KINDS)}")
    inner, binary = split_binarized(spec)
    if binary:
        kind, argument = parse_spec(inner)
        if kind in _PLAIN:
            raise DataError(f"data spec {spec!r}: only images can be binarised, {kind} holds 2-D points")
        return kind, argument
    head, sep, argument = spec.strip().partition(":")
    kind = head.strip().lower()
    if kind not in KINDS:
        raise DataError(f"unknown data spec {spec!r}: kind {head!r} is not one of {', '.join(KINDS)}")
    if kind in _FILES:
        if not argument.strip():
            raise DataError(f"data spec {spec!r} needs a path, e.g. {kind}:/path/to/data")
        return kind, argument
    if not sep:
        return kind, None
    if kind in _PLAIN:
        raise DataError(f"data spec {spec!r}: {kind} takes no argument")
    text = argument.strip()
    if not text.isdigit():
        raise DataError(f"data spec {spec!r}: size {argument!r} is not a whole number of pixels")
    check_image_size(int(text), spec)
    return kind, text


def check_image_size(image_size: object, spec: str = "data") -> int | None:
    """Check an image side: None, or an integer in [MIN_SIZE, MAX_SIZE] (8..64 pixels).

    Raises
    ------
    DataError
        Not an integer, or outside the range.
    """
    if image_size is None:
        return None
    try:
        if isinstance(image_size, bool):
            raise TypeError
        size = operator.index(image_size)  # type: ignore[arg-type]
    except TypeError:
        raise DataError(f"{spec}: image_size must be a whole number of pixels, got {image_size!r}") from None
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise DataError(
            f"{spec}: image_size {size} is outside {MIN_SIZE}..{MAX_SIZE} pixels "
            f"(Latent Studio's models work on images from {MIN_SIZE}x{MIN_SIZE} to {MAX_SIZE}x{MAX_SIZE})"
        )
    return size


def load_dataset(spec: str, image_size: int | None = None) -> Dataset:
    """Load a data set by spec.

    Parameters
    ----------
    spec : str
        See the module docstring and :data:`BUILTIN_SPECS`.
    image_size : int, optional
        Side in pixels (8..64) every image is resized to; None for the data set's default size
        (shapes 64, or the size in ``shapes:SIZE``; digits 32; IDX and npz their own size; a
        folder see :func:`engines.data.files.load_folder`). Ignored by ``ring`` and ``grid``.

    Returns
    -------
    Dataset
        Images (N, C, H, W) float32 in [0, 1] (:class:`ShapesDataset` draws them lazily), or
        (N, 2) float32 points, with labels, factors and the fixed held-out split.

    Raises
    ------
    DataError
        A bad spec or image_size, or a file that is missing or malformed (the message names it).
    """
    inner, binary = split_binarized(spec)
    if binary:
        return binarized(load_dataset(inner, image_size), spec.strip())
    kind, argument = parse_spec(spec)
    size = check_image_size(image_size, spec)
    spec = spec.strip()
    if kind in _SIZED:
        if size is None and argument is not None:
            size = int(argument)
        return load_shapes(size, spec) if kind == "shapes" else load_digits(size, spec)
    if kind == "ring":
        return load_ring(spec)
    if kind == "grid":
        return load_grid(spec)
    assert argument is not None
    loader = {"idx": load_idx, "folder": load_folder, "npz": load_npz}[kind]
    return loader(argument, size, spec)
