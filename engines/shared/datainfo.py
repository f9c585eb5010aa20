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


#: Largest image side, examples and class / factor names a data description may claim (checked on load).
MAX_SIDE = 512
MAX_EXAMPLES = 10**8
MAX_NAMES = 1000


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
        """Inverse of :meth:`to_json`, checked: it comes from files and peers we do not trust (a checkpoint's
        manifest, a message), so every size is range-checked before anything is built from it.

        Raises
        ------
        ValueError
            A kind, shape, count or name list out of range (named); TypeError for a field of the wrong type.
        """
        d = dict(d)
        for k in ("shape", "class_names", "factor_names", "factor_sizes"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        if d.get("modes") is not None:
            d["modes"] = tuple(tuple(m) for m in d["modes"])
        info = cls(**d)
        info.check()
        return info

    def check(self) -> None:
        """Raise ValueError unless every field is in range (see :meth:`from_json`)."""
        def count(v: object, what: str, hi: int) -> None:
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= hi:
                raise ValueError(f"data {what} must be an integer in [0, {hi}], not {v!r}")

        if self.kind not in ("image", "points"):
            raise ValueError(f"data kind must be 'image' or 'points', not {self.kind!r}")
        shape = self.shape
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in shape):
            raise ValueError(f"data shape must be integers, not {shape!r}")
        if self.kind == "points" and shape != (2,):
            raise ValueError(f"2-D points have shape (2,), not {shape!r}")
        if self.kind == "image" and (len(shape) != 3 or shape[0] not in (1, 3) or not all(1 <= s <= MAX_SIDE for s in shape[1:])):
            raise ValueError(f"an image shape is (1 or 3, H, W) with sides 1..{MAX_SIDE}, not {shape!r}")
        for what in ("size", "n_train", "n_test"):
            count(getattr(self, what), what, MAX_EXAMPLES)
        for what in ("class_names", "factor_names"):
            names = getattr(self, what)
            if names is not None and (len(names) > MAX_NAMES or not all(isinstance(n, str) and len(n) <= 200 for n in names)):
                raise ValueError(f"data {what} must be at most {MAX_NAMES} strings")
        if self.factor_sizes is not None:
            if len(self.factor_sizes) > MAX_NAMES:
                raise ValueError(f"data factor_sizes must hold at most {MAX_NAMES} counts")
            for v in self.factor_sizes:
                count(v, "factor_sizes", MAX_EXAMPLES)
        if self.modes is not None and (len(self.modes) > MAX_NAMES or not all(len(m) == 2 for m in self.modes)):
            raise ValueError(f"data modes must be at most {MAX_NAMES} (x, y) pairs")
