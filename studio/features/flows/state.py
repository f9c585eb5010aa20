"""The Flow tab's Qt-free part: when it applies, the edited z, interpolation paths and the captions.

For models whose z has the image's shape and an exact inverse (normalizing flows): a held-out image goes
to z = f(x) exactly and back, z is edited along directions found in the worker (principal components
of encoded held-out images, or a class's mean difference) in units of the encodings' spread, samples
are drawn at a temperature, and two real images are interpolated with exact endpoints.
"""

from __future__ import annotations

import math

import numpy as np

#: Slider range of a direction, in standard deviations of the encodings along it.
SIGMAS = 3.0
#: Slider notches per standard deviation.
NOTCHES = 10
#: Images of the temperature strip.
STRIP = 8


def flow_reason(capabilities: object | None, latent: object | None, data_kind: str) -> str:
    """Why the tab is off ("" when it applies): it needs an image-shaped z with an exact inverse."""
    if capabilities is None or latent is None:
        return "Build a model first"
    kinds = getattr(latent, "kinds", ())
    if getattr(capabilities, "encoder", "") != "exact":
        return ("This model has no exact inverse from images to z: build a flow (nice, realnvp, glow, maf, "
                "planar) to invert, edit and interpolate real images exactly")
    if data_kind != "image" or "image" not in kinds:
        return ("A flow on 2-D points: its density and the warped z-grid are in the Coverage dock, and "
                "Explore's sliders move its two z dimensions")
    return ""


def space_caption(nats: float, bits_per_dim: float) -> str:
    """"1.234 bits/dim" where bits/dim apply, else "log p = -12.3 nats"."""
    if bits_per_dim is not None and math.isfinite(bits_per_dim):
        return f"{bits_per_dim:.3f} bits/dim"
    return f"log p = {nats:.1f} nats"


def reconstruction_caption(x: np.ndarray, x_back: np.ndarray) -> str:
    """How exact the inverse was: the largest |x - f^-1(f(x))| over the pixels."""
    err = float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(x_back, np.float64))))
    return f"f^-1(f(x)): max |error| {err:.1e}"


def lerp_path(z_a: np.ndarray, z_b: np.ndarray, frames: int) -> np.ndarray:
    """(frames, D) float32 straight line from z_a to z_b, both ends exact (frames >= 2)."""
    t = np.linspace(0.0, 1.0, max(2, int(frames)))[:, None]
    path = (1 - t) * np.asarray(z_a, np.float64)[None] + t * np.asarray(z_b, np.float64)[None]
    path[0], path[-1] = z_a, z_b
    return path.astype(np.float32)


class FlowEdit:
    """An encoded image and the directions it is moved along.

    Attributes
    ----------
    base : ndarray or None
        (D,) z = f(x) of the inverted image.
    directions : ndarray
        (k, D) unit directions.
    scales : ndarray
        (k,) the encodings' standard deviation along each: a coefficient of 1 moves one of those.
    names : list of str
    coefficients : ndarray
        (k,) in [-SIGMAS, SIGMAS].
    """

    def __init__(self) -> None:
        self.base: np.ndarray | None = None
        self.directions = np.zeros((0, 0), np.float32)
        self.scales = np.zeros(0, np.float32)
        self.names: list[str] = []
        self.coefficients = np.zeros(0, np.float64)

    def set_base(self, z: np.ndarray) -> None:
        """A new image's z (D,); the coefficients go back to 0."""
        self.base = np.asarray(z, np.float32).reshape(-1).copy()
        self.coefficients = np.zeros(len(self.scales))

    def set_directions(self, directions: np.ndarray, scales: np.ndarray, names: list[str]) -> None:
        """New directions (k, D) with their scales (k,) and names; the coefficients go back to 0.

        Raises
        ------
        ValueError
            On mismatched shapes.
        """
        d = np.asarray(directions, np.float32)
        s = np.asarray(scales, np.float32).reshape(-1)
        if d.ndim != 2 or len(d) != len(s) or len(names) != len(s):
            raise ValueError(f"directions {d.shape}, scales {s.shape} and {len(names)} names do not match")
        self.directions, self.scales, self.names = d, s, list(names)
        self.coefficients = np.zeros(len(s))

    def set_coefficient(self, i: int, value: float) -> None:
        """Coefficient of direction ``i``, clamped to [-SIGMAS, SIGMAS]."""
        self.coefficients[i] = float(np.clip(value, -SIGMAS, SIGMAS))

    def reset(self) -> None:
        self.coefficients = np.zeros(len(self.scales))

    def z(self) -> np.ndarray | None:
        """(D,) float32 base + sum_i c_i s_i d_i, or None before an image is inverted.

        Raises
        ------
        ValueError
            When the directions' width is not z's.
        """
        if self.base is None:
            return None
        if not len(self.scales):
            return self.base.copy()
        if self.directions.shape[1] != self.base.shape[0]:
            raise ValueError(f"directions of width {self.directions.shape[1]} for a z of {self.base.shape[0]}")
        move = (self.coefficients * self.scales) @ self.directions
        return (self.base + move).astype(np.float32)

    def caption(self) -> str:
        """The non-zero moves, e.g. "PC1 +1.5, PC3 -0.5", or "the image itself"."""
        moves = [f"{n.split(' (')[0]} {c:+.1f}" for n, c in zip(self.names, self.coefficients) if c]
        return ", ".join(moves) if moves else "the image itself"
