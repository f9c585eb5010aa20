"""The Losses panel's Qt-free part: which loss terms are shown, on which axis, and the hyperparameter markers.

The loss history itself (:class:`studio.state.LossHistory`) is shared with the Coverage feature, so it
stays in :mod:`studio.state`; this module holds what the panel keeps beside it.
"""

from __future__ import annotations

#: Terms hidden until the user ticks them: ``elbo`` is -(recon + kl), the same information mirrored
#: below zero, and would squash the other curves into a flat band.
HIDDEN_BY_DEFAULT = {"elbo"}


def shown_by_default(name: str) -> bool:
    """Main terms (``recon``, ``kl``, ``loss``) are shown; per-dimension terms (``kl/z3``) and ``elbo`` are not."""
    return "/" not in name and name not in HIDDEN_BY_DEFAULT


def measured_term(name: str) -> bool:
    """Terms measured now and then rather than every step (``held_out_nll``, ``held_out_neg_elbo``): drawn
    as points joined by a line, never smoothed."""
    return name.startswith("held_out_")


def on_right_axis(name: str) -> bool:
    """KL terms (``kl``, ``kl/z3``) are drawn against the right axis: they are orders of magnitude below the loss."""
    return name == "kl" or name.startswith("kl/")


class LossTerms:
    """The terms seen (in order of first appearance) with whether each is shown, and the markers.

    Attributes
    ----------
    shown : dict of str -> bool
        Every term seen, in order of first appearance, and whether its curve is drawn.
    markers : list of (int, str)
        Hyperparameter changes: the step and the label (``"lr=0.001"``), in arrival order.
    """

    def __init__(self) -> None:
        self.shown: dict[str, bool] = {}
        self.markers: list[tuple[int, str]] = []

    def add_term(self, name: str) -> bool:
        """See term ``name`` (a no-op when known); whether it is shown."""
        return self.shown.setdefault(name, shown_by_default(name))

    def set_shown(self, name: str, visible: bool) -> bool:
        """Show or hide a known term; whether that changed anything.

        Raises
        ------
        KeyError
            If the term has not been seen yet.
        """
        if self.shown[name] == bool(visible):
            return False
        self.shown[name] = bool(visible)
        return True

    def visible_terms(self) -> list[str]:
        """Names of the terms shown, in order of first appearance."""
        return [n for n, v in self.shown.items() if v]

    def index(self, name: str) -> int:
        """The order in which term ``name`` first appeared (its colour)."""
        return list(self.shown).index(name)

    def any_on_right(self) -> bool:
        """Whether any term seen is drawn against the right (KL) axis."""
        return any(on_right_axis(n) for n in self.shown)

    def add_marker(self, step: int, text: str) -> None:
        """A hyperparameter changed at ``step``."""
        self.markers.append((int(step), str(text)))

    def truncate(self, step: int) -> list[int]:
        """Drop the markers after ``step``; the positions (in :attr:`markers` before) of those dropped."""
        dropped = [i for i, (s, _) in enumerate(self.markers) if s > step]
        self.markers = [m for m in self.markers if m[0] <= step]
        return dropped

    def clear(self) -> None:
        """Forget the terms and the markers (a new model was built)."""
        self.shown.clear()
        self.markers.clear()
