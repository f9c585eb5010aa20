"""Latent and hyperparameter specifications: plain dataclasses shared by engines and the window.

No torch here, so the window (which never imports torch) can rebuild these from JSON.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from engines.shared.errors import ConfigError


@dataclass(frozen=True)
class LatentDim:
    """One latent dimension as the sliders show it.

    Attributes
    ----------
    name : str
        Label, e.g. ``"z3"`` or ``"c1 (categorical)"``.
    kind : {"gaussian", "uniform", "categorical"}
        Prior of the dimension. A categorical code of k classes spans k consecutive dimensions of z
        (a one-hot block); each of them has kind ``"categorical"`` and the same ``group``.
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


@dataclass(frozen=True)
class LatentSpec:
    """The latent space of an engine: an ordered tuple of :class:`LatentDim`.

    ``z`` tensors have shape (N, dim).
    """

    dims: tuple[LatentDim, ...]

    @property
    def dim(self) -> int:
        """Number of latent dimensions, the width of z."""
        return len(self.dims)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dims)

    @classmethod
    def gaussian(cls, dim: int, prefix: str = "z") -> LatentSpec:
        """``dim`` standard Gaussian dimensions named z0, z1, ..., with sliders over [-3, 3]."""
        return cls(tuple(LatentDim(f"{prefix}{i}") for i in range(dim)))

    def to_json(self) -> list[dict]:
        return [asdict(d) for d in self.dims]

    @classmethod
    def from_json(cls, items: list[dict]) -> LatentSpec:
        return cls(tuple(LatentDim(**d) for d in items))


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
