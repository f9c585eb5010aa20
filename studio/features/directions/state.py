"""The Directions tab's Qt-free part: the point being moved, the direction set, arithmetic and the local grid.

A direction set (principal, independent, attribute, group or local directions, found in the worker)
moves a base point: ``z = base + sum_i c_i scale_i v_i``, the coefficients in the latents' standard
deviations along each direction. The base is the Explore point as it was before the first direction
moved; any other change of the Explore point becomes the new base.
"""

from __future__ import annotations

import numpy as np

from engines.shared.directions import DirectionSet, arithmetic

#: Slider range of a direction, in standard deviations of the latents along it.
SIGMAS = 3.0
#: Slider notches per standard deviation.
NOTCHES = 10
#: Columns of the local-directions grid (values from -LOCAL_SPAN to +LOCAL_SPAN sigma).
LOCAL_COLUMNS = 5
LOCAL_SPAN = 2.0
#: The arithmetic's slots.
SLOTS = ("a", "b", "c")
#: What each method is called in the window.
METHOD_NAMES = {
    "pca": "principal components (PCA)",
    "ica": "independent components (ICA)",
    "attribute": "attribute (a factor or class)",
    "class": "class difference (from -> to)",
    "groups": "two groups (lassoed on the Map)",
}


class DirectionEdit:
    """A base point moved along a direction set.

    Attributes
    ----------
    base : ndarray or None
        (D,) float32.
    found : DirectionSet or None
    coefficients : ndarray
        (k,) in [-SIGMAS, SIGMAS].
    """

    def __init__(self) -> None:
        self.base: np.ndarray | None = None
        self.found: DirectionSet | None = None
        self.coefficients = np.zeros(0)

    def set_base(self, z: np.ndarray) -> None:
        """A new base (D,): the coefficients go back to 0."""
        self.base = np.asarray(z, np.float32).reshape(-1).copy()
        self.coefficients = np.zeros(len(self.found) if self.found is not None else 0)

    def set_directions(self, found: DirectionSet | None) -> None:
        """A new set (or none): the coefficients go back to 0."""
        self.found = found
        self.coefficients = np.zeros(len(found) if found is not None else 0)

    def fits(self, dim: int) -> bool:
        """Whether the set moves a z of width ``dim``."""
        return self.found is not None and self.found.dim == int(dim)

    def set_coefficient(self, i: int, value: float) -> None:
        """Coefficient ``i``, clamped to [-SIGMAS, SIGMAS]."""
        self.coefficients[i] = float(np.clip(value, -SIGMAS, SIGMAS))

    def reset(self) -> None:
        self.coefficients = np.zeros(len(self.coefficients))

    def z(self) -> np.ndarray | None:
        """(D,) float32 the moved point, or None without a base or a set that fits it."""
        if self.base is None or self.found is None or self.found.dim != len(self.base):
            return None
        return self.found.move(self.base, self.coefficients)

    def caption(self) -> str:
        """The non-zero moves, e.g. "PC1 +1.5, x -0.5", or "the point itself"."""
        if self.found is None:
            return "the point itself"
        moves = [f"{n} {c:+.1f}" for n, c in zip(self.found.names, self.coefficients) if c]
        return ", ".join(moves) if moves else "the point itself"

    def traversal_latents(self, index: int | None = None) -> dict:
        """The sidecar latents of a traversal along the set's directions (all, or direction ``index``) from the
        moved point: ``{"z", "directions" (scaled), "names", "steps", "low", "high"}``.

        Raises
        ------
        ValueError
            Without a base point or a set that fits it.
        """
        z = self.z()
        if z is None:
            raise ValueError("find directions (and move the Explore point) before exporting a traversal along them")
        picks = range(len(self.found)) if index is None else [int(index)]
        return {"z": z.astype(float).tolist(), "index": None, "dims": None, "steps": 9, "low": -SIGMAS,
                "high": SIGMAS, "directions": [(self.found.vectors[i] * self.found.scales[i]).astype(float).tolist()
                                               for i in picks],
                "names": [self.found.names[i] for i in picks]}


def local_grid(base: np.ndarray, found: DirectionSet, columns: int = LOCAL_COLUMNS,
               span: float = LOCAL_SPAN) -> np.ndarray:
    """(k * columns, D) float32: row i moves ``base`` along direction i from -span to +span sigma."""
    values = np.linspace(-span, span, columns)
    b = np.asarray(base, np.float64).reshape(1, 1, -1)
    steps = values[None, :, None] * (found.scales[:, None, None] * found.vectors[:, None, :])
    return (b + steps).reshape(-1, found.dim).astype(np.float32)


class Arithmetic:
    """The three points of ``a - b + c`` (White 2016), each a z with a label.

    Attributes
    ----------
    slots : dict of str to (ndarray, str) or None
    """

    def __init__(self) -> None:
        self.slots: dict[str, tuple[np.ndarray, str] | None] = {s: None for s in SLOTS}

    def set(self, slot: str, z: np.ndarray, label: str) -> None:
        """Put ``z`` (D,) labelled ``label`` in ``slot`` ("a", "b" or "c").

        Raises
        ------
        KeyError
            An unknown slot.
        """
        if slot not in self.slots:
            raise KeyError(slot)
        self.slots[slot] = (np.asarray(z, np.float32).reshape(-1).copy(), str(label))

    def clear(self) -> None:
        self.slots = {s: None for s in SLOTS}

    def result(self) -> np.ndarray | None:
        """(D,) float32 a - b + c, or None while a slot is empty or the widths differ."""
        if any(v is None for v in self.slots.values()):
            return None
        zs = [self.slots[s][0] for s in SLOTS]
        if len({len(z) for z in zs}) != 1:
            return None
        return arithmetic(*zs)

    def caption(self) -> str:
        """E.g. "held-out #3 - held-out #7 + current point"."""
        labels = [v[1] if v is not None else "?" for v in (self.slots[s] for s in SLOTS)]
        return f"{labels[0]} - {labels[1]} + {labels[2]}"


class Groups:
    """The two groups of a "two groups" direction: held-out positions (lassoed or picked) and dropped images.

    Attributes
    ----------
    positions : dict of str to list of int
        "a" and "b": positions in the held-out split.
    images : dict of str to list of ndarray
        "a" and "b": images (C, H, W) float32 the user dropped.
    """

    def __init__(self) -> None:
        self.positions: dict[str, list[int]] = {"a": [], "b": []}
        self.images: dict[str, list[np.ndarray]] = {"a": [], "b": []}

    def sizes(self) -> dict[str, int]:
        """Images in each group, held-out and dropped."""
        return {g: len(self.positions[g]) + len(self.images[g]) for g in "ab"}

    def ready(self) -> bool:
        """Whether both groups hold an image."""
        return all(self.sizes().values())

    def fields(self) -> dict:
        """The FindDirections fields of the groups: ``group_a``, ``group_b`` and, where there are any, ``images_a`` /
        ``images_b`` stacked (N, C, H, W)."""
        out: dict = {"group_a": list(self.positions["a"]), "group_b": list(self.positions["b"])}
        for g in "ab":
            if self.images[g]:
                out[f"images_{g}"] = np.stack(self.images[g]).astype(np.float32)
        return out

    def caption(self) -> str:
        s = self.sizes()
        return f"group A: {s['a']} images, group B: {s['b']} images (lassoed on the Map, or added from the data set browser)"
