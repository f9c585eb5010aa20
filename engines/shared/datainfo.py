"""What the window knows of a data set: its description (:class:`DataInfo`) and the built-in listing.

JSON-able and torch-free; the data sets themselves live in :mod:`engines.data`.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The built-in data sets for the window's menu: (spec, one-line description).
BUILTIN_SPECS: list[tuple[str, str]] = [
    ("shapes", "dSprites-style shapes with known factors (shape, scale, orientation, x, y), 64x64"),
    ("shapes:32", "the same shapes drawn at 32x32"),
    ("digits", "scikit-learn's 1,797 handwritten digits (8x8, upscaled to 32x32), labels 0-9"),
    ("ring", "8 Gaussians on the unit circle, std 0.01 (2-D points, PacGAN)"),
    ("grid", "25 Gaussians on a 5x5 grid, std 0.05 (2-D points, PacGAN)"),
]

#: The spec prefix that asks for a statically binarised copy of an image data set (``binarized:digits``).
BINARIZED_PREFIX = "binarized:"


def split_binarized(spec: str) -> tuple[str, bool]:
    """``(inner spec, True)`` for ``"binarized:SPEC"`` (the prefix case-insensitive), else ``(spec, False)``."""
    text = spec.strip() if isinstance(spec, str) else spec
    if isinstance(text, str) and text.lower().startswith(BINARIZED_PREFIX):
        return text[len(BINARIZED_PREFIX):], True
    return spec, False


def with_binarized(spec: str, on: bool) -> str:
    """``spec`` with the ``binarized:`` prefix added (``on``) or removed."""
    inner, _ = split_binarized(spec)
    return BINARIZED_PREFIX + inner if on else inner


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about its data, small enough to send to the window as JSON.

    Attributes
    ----------
    spec : str
        The data spec that made the data set, e.g. ``"shapes:32"`` or ``"idx:/data/t10k-images.gz"``.
    kind : {"image", "points"}
        Images (C, H, W) in [0, 1], or 2-D points (2,) in data units.
    shape : tuple of int
        Shape of one example: (C, H, W) for images, (2,) for points.
    size : int
        Number of examples in the whole data set (train + held out).
    n_train, n_test : int
        Sizes of the training split and the held-out split.
    class_names : tuple of str or None
        Names of the label classes where the data has labels.
    factor_names : tuple of str or None
        Names of ground-truth factors of variation where they are known (e.g. ``shapes``).
    factor_sizes : tuple of int or None
        Number of distinct values of each factor.
    modes : tuple of tuple of float or None
        Mode centres (M, 2) of a known 2-D mixture (``ring``, ``grid``).
    mode_std : float or None
        Standard deviation of each mixture component.
    binarized : int or None
        The seed of a static binarisation (each pixel 1 with probability its grey level, drawn once;
        Salakhutdinov & Murray 2008), where the spec asked for one (``binarized:SPEC``); None otherwise.
        Images are then exactly 0 or 1, and a Bernoulli model's log-likelihood is that of binary data.
    """

    spec: str
    kind: str
    shape: tuple[int, ...]
    size: int
    n_train: int
    n_test: int
    class_names: tuple[str, ...] | None = None
    factor_names: tuple[str, ...] | None = None
    factor_sizes: tuple[int, ...] | None = None
    modes: tuple[tuple[float, float], ...] | None = None
    mode_std: float | None = None
    binarized: int | None = None

    @property
    def channels(self) -> int:
        """Channels of an image example (1 or 3); 0 for points."""
        return self.shape[0] if self.kind == "image" else 0

    @property
    def image_size(self) -> int:
        """Side of a square image example in pixels; 0 for points."""
        return self.shape[-1] if self.kind == "image" else 0

    def to_json(self) -> dict:
        """A JSON-able dict (tuples become lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_json(cls, d: dict) -> DataInfo:
        """Inverse of :meth:`to_json`."""
        d = dict(d)
        for k in ("shape", "class_names", "factor_names", "factor_sizes"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        if d.get("modes") is not None:
            d["modes"] = tuple(tuple(m) for m in d["modes"])
        return cls(**d)
