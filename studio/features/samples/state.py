"""The "Samples & decode" tab's Qt-free part: which sample grid to show as the worker sends them."""

from __future__ import annotations

#: Points drawn for the sample view of 2-D data.
POINT_SAMPLES = 1000


class SampleFeed:
    """What the Samples controller keeps between grids.

    For 2-D points the fixed-z grid (64 samples) is too few to see a density: the first grid after a
    model is built asks for :data:`POINT_SAMPLES`, and once those are shown the small grids no longer
    replace them.

    Attributes
    ----------
    points_shown : bool
        Whether the :data:`POINT_SAMPLES` sample of 2-D data has been shown since the model was built.
    step : int
        The training step of the last grid shown (-1: none yet).
    """

    def __init__(self) -> None:
        self.points_shown = False
        self.step = -1

    def reset(self) -> None:
        """A model was built (the worker sends a first grid after Ready)."""
        self.points_shown, self.step = False, -1

    def show_grid(self, points: bool) -> bool:
        """Whether a fixed-z grid (2-D ``points`` or images) replaces what is shown."""
        return not (points and self.points_shown)

    def shown(self, step: int, large_sample: bool = False) -> None:
        """A grid of ``step`` was shown; ``large_sample`` when it was the :data:`POINT_SAMPLES` one."""
        self.step = int(step)
        self.points_shown = self.points_shown or large_sample
