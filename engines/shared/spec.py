"""Latent and hyperparameter specifications: plain dataclasses shared by engines and the window.

No torch here, so the window (which never imports torch) can rebuild these from JSON.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from engines.shared.errors import ConfigError


@dataclass(frozen=True)
class LatentKind:
    """One kind of latent variable and how the window explores it (a row of :data:`LATENT_KINDS`).

    Attributes
    ----------
    name : str
    control : {"slider", "picker", "toggle", "directions", "completion"}
        The Explore control: a slider per dimension (continuous), a picker per categorical
        variable (its one-hot block), a toggle per binary unit, directions and a temperature
        for an image-shaped z (never a slider per pixel), conditional completion for no latent.
    continuous : bool
        Whether traversals, lerp/slerp and directions apply to it dimension by dimension.
    doc : str
        One line for tooltips.
    """

    name: str
    control: str
    continuous: bool
    doc: str


#: The latent kinds, one table for both processes (the window never imports torch).
LATENT_KINDS: dict[str, LatentKind] = {k.name: k for k in (
    LatentKind("gaussian", "slider", True, "continuous, standard normal prior; sliders over [-3, 3]"),
    LatentKind("uniform", "slider", True, "continuous, uniform prior over [low, high]"),
    LatentKind("categorical", "picker", False, "one of k classes, a one-hot block of k dimensions"),
    LatentKind("binary", "toggle", False, "a binary unit (0 or 1), e.g. an RBM's hidden unit"),
    LatentKind("image", "directions", True, "z has the image's shape (a flow): directions and temperature"),
    LatentKind("none", "completion", False, "no latent (autoregressive): explored by conditional completion"),
)}


@dataclass(frozen=True)
class LatentDim:
    """One latent dimension as the sliders show it.

    Attributes
    ----------
    name : str
        Label, e.g. ``"z3"`` or ``"c1 (categorical)"``.
    kind : str
        A key of :data:`LATENT_KINDS`: ``"gaussian"``, ``"uniform"``, ``"categorical"`` or
        ``"binary"`` (an image-shaped z is a :class:`LatentSpec` with a ``shape``). A categorical
        code of k classes spans k consecutive dimensions of z (a one-hot block); each of them has
        kind ``"categorical"`` and the same ``group``. A binary unit's slider range is [0, 1].
    low, high : float
        Range shown on the slider (e.g. -3 to 3 for a standard Gaussian).
    group : str or None
        Name of the categorical block this dimension belongs to.
    """

    name: str
    kind: str = "gaussian"
    low: float = -3.0
    high: float = 3.0
    group: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in LATENT_KINDS or self.kind in ("image", "none"):
            raise ConfigError(f"latent dimension {self.name!r}: unknown kind {self.kind!r}")

    @property
    def continuous(self) -> bool:
        """Whether this dimension is moved by a slider (Gaussian or uniform)."""
        return LATENT_KINDS[self.kind].continuous


@dataclass(frozen=True)
class LatentSpec:
    """The latent space of an engine: an ordered tuple of :class:`LatentDim`, or an image shape.

    ``z`` tensors have shape (N, dim). A flow's z has the image's own shape: ``shape`` is
    (C, H, W), ``dims`` is empty and z is (N, C*H*W) on the wire. No latent at all (an
    autoregressive model): ``dims`` empty, ``shape`` None, ``dim`` 0.
    """

    dims: tuple[LatentDim, ...]
    shape: tuple[int, ...] | None = None

    @property
    def dim(self) -> int:
        """Number of latent dimensions, the width of z."""
        if self.shape is not None:
            return math.prod(self.shape)
        return len(self.dims)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds present, in order of first appearance (``("image",)``, ``("none",)`` for those)."""
        if self.shape is not None:
            return ("image",)
        if not self.dims:
            return ("none",)
        return tuple(dict.fromkeys(d.kind for d in self.dims))

    def groups(self) -> list[tuple[str, str, list[int]]]:
        """The latent as groups in z's order: (kind, name, indices) each.

        A categorical code is one group of its k one-hot dimensions (named by its ``group``); every
        other dimension is a group of one. Empty for an image-shaped z or no latent.
        """
        out: list[tuple[str, str, list[int]]] = []
        where: dict[str, int] = {}
        for i, d in enumerate(self.dims):
            if d.kind == "categorical":
                key = d.group or d.name
                if key not in where:
                    where[key] = len(out)
                    out.append(("categorical", key, []))
                out[where[key]][2].append(i)
            else:
                out.append((d.kind, d.name, [i]))
        return out

    def indices(self, kind: str) -> list[int]:
        """Indices of z's dimensions of ``kind`` (a key of :data:`LATENT_KINDS`), in order."""
        return [i for i, d in enumerate(self.dims) if d.kind == kind]

    @property
    def continuous(self) -> list[int]:
        """Indices of the continuous (slider) dimensions: Gaussian and uniform."""
        return [i for i, d in enumerate(self.dims) if d.continuous]

    @property
    def categorical(self) -> dict[str, list[int]]:
        """Each categorical code's one-hot indices, by group name, in z's order."""
        return {name: idx for kind, name, idx in self.groups() if kind == "categorical"}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dims)

    def describe(self) -> str:
        """What z is, in words: ``"10 continuous dimensions and 1 categorical code (10 classes)"``,
        ``"z of the image's shape, 1x28x28"``, ``"no latent"``. A categorical code counts once, however
        many one-hot dimensions it spans (so a cGAN with 10 noise dimensions is not "20 latent dims")."""
        if self.shape is not None:
            return "z of the image's shape, " + "x".join(str(s) for s in self.shape)
        if not self.dims:
            return "no latent"
        codes = self.categorical
        counts = ((len(self.continuous), "continuous dimension"), (len(self.indices("binary")), "binary unit"))
        parts = [f"{n} {word}{'s' * (n != 1)}" for n, word in counts if n]
        if codes:
            sizes = sorted({len(v) for v in codes.values()})
            classes = "/".join(str(k) for k in sizes)
            parts.append(f"{len(codes)} categorical code{'s' * (len(codes) != 1)} ({classes} classes)")
        return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]

    @classmethod
    def gaussian(cls, dim: int, prefix: str = "z") -> LatentSpec:
        """``dim`` standard Gaussian dimensions named z0, z1, ..., with sliders over [-3, 3]."""
        return cls(tuple(LatentDim(f"{prefix}{i}") for i in range(dim)))

    @classmethod
    def image(cls, shape: tuple[int, ...]) -> LatentSpec:
        """An image-shaped z of ``shape`` (C, H, W), as a flow has."""
        return cls((), tuple(int(s) for s in shape))

    @classmethod
    def empty(cls) -> LatentSpec:
        """No latent (an autoregressive model)."""
        return cls(())

    def to_json(self) -> dict:
        """``{"dims": [...], "shape": [C, H, W] or None}``."""
        return {"dims": [asdict(d) for d in self.dims], "shape": None if self.shape is None else list(self.shape)}

    @classmethod
    def from_json(cls, d: dict | list) -> LatentSpec:
        """Inverse of :meth:`to_json` (a bare list of dims, the older form, is accepted too)."""
        if isinstance(d, list):
            return cls(tuple(LatentDim(**x) for x in d))
        shape = d.get("shape")
        return cls(tuple(LatentDim(**x) for x in d.get("dims", [])), None if shape is None else tuple(shape))


@dataclass(frozen=True)
class HyperParam:
    """A live-tunable hyperparameter with its range.

    Attributes
    ----------
    name : str
        Name used in commands and plots, e.g. ``"beta"``, ``"lr"``.
    value : float
        Current value.
    low, high : float
        Inclusive range accepted by :meth:`validate`.
    log : bool
        Whether the window should use a logarithmic control (learning rates).
    integer : bool
        Whether the value is an integer (critic steps).
    doc : str
        One line for the tooltip.
    """

    name: str
    value: float
    low: float
    high: float
    log: bool = False
    integer: bool = False
    doc: str = ""

    def validate(self, value: float) -> float:
        """Return ``value`` as this parameter's type.

        Raises
        ------
        ConfigError
            If the value is not finite or lies outside [low, high].
        """
        value = float(value)
        if not math.isfinite(value) or not (self.low <= value <= self.high):
            raise ConfigError(f"{self.name}={value!r} is outside its range [{self.low}, {self.high}]")
        return float(round(value)) if self.integer else value

    def with_value(self, value: float) -> HyperParam:
        return replace(self, value=self.validate(value))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> HyperParam:
        return cls(**d)
