"""The Explore panel's Qt-free part: which latent dimensions matter, by what measure, and their order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: KL (nats) below which a latent dimension counts as collapsed: the decoder ignores it.
COLLAPSED_KL = 0.05
#: Pixels (summed absolute change of the decoded image) below which flipping a binary unit counts as doing nothing.
INERT_EFFECT = 0.5


@dataclass(frozen=True)
class Measure:
    """What the Explore panel shows per dimension and sorts its rows by, largest first.

    Attributes
    ----------
    name : str
        Its name in the column, the bar chart and the tooltips (``"KL"``, ``"effect"``).
    unit : str
        Its unit (``"nats"``, ``"pixels"``).
    threshold : float
        Below it (in ``unit``) a dimension is greyed out and left unlabelled: it changes (next to) nothing.
    phrase : str
        What being below the threshold means, for the tooltips.
    first : str
        What the order puts first, appended to the panel's header.
    """

    name: str
    unit: str
    threshold: float
    phrase: str
    first: str

    @property
    def label(self) -> str:
        """The column and axis label: ``"KL (nats)"``."""
        return f"{self.name} ({self.unit})"

    def describe(self, value: float) -> str:
        """A row's tooltip: ``"KL 0.010 nats - collapsed: the decoder ignores this dimension"``."""
        return f"{self.name} {value:.3f} {self.unit}" + (f" - {self.phrase}" if value < self.threshold else "")

    def unlabelled(self, factor: str) -> str:
        """Why a row below the threshold is not labelled by the factor its posterior mean follows."""
        return f"Not labelled {factor}: {self.name} < {self.threshold:g} {self.unit}, {self.phrase}"

    def bars_tip(self) -> str:
        """The bar chart's tooltip."""
        return f"{self.name} per latent dimension ({self.unit}); grey bars are below {self.threshold:g} {self.unit}: {self.phrase}"


#: KL per dimension (``StepMetrics.latent_kl``): VAEs and their kin.
KL = Measure("KL", "nats", COLLAPSED_KL, "collapsed: the decoder ignores this dimension",
             "most informative (highest KL) first")
#: Each binary unit's effect on the decoded image (``StepMetrics.unit_effect``): RBMs, DBNs, Helmholtz machines.
EFFECT = Measure("effect", "pixels", INERT_EFFECT, "flipping this unit barely changes the image",
                 "largest effect on the image first")


def measure_order(values: np.ndarray | None, dim: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Order latent dimensions by a measure, largest first.

    Parameters
    ----------
    values : (D,) float array or None
        The measure per dimension (KL in nats, effect in pixels); None (no measurement yet) keeps the
        natural order. NaN counts as 0.
    dim : int
        D, the width of z.
    threshold : float
        Below it (in the measure's unit) a dimension counts as collapsed.

    Returns
    -------
    order : (D,) int64
        Dimension indices by decreasing value (ties keep their natural order).
    collapsed : (D,) bool
        Per dimension (in natural order), whether its value is below ``threshold``.
    """
    if values is None or len(values) != dim:
        return np.arange(dim, dtype=np.int64), np.zeros(dim, bool)
    v = np.nan_to_num(np.asarray(values, np.float64), nan=0.0)
    order = np.argsort(-v, kind="stable").astype(np.int64)
    return order, v < threshold


def kl_order(latent_kl: np.ndarray | None, dim: int, threshold: float = COLLAPSED_KL) -> tuple[np.ndarray, np.ndarray]:
    """:func:`measure_order` by KL per dimension (nats), most informative first; collapsed below ``threshold``."""
    return measure_order(latent_kl, dim, threshold)
