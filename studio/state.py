"""Qt-free models behind the window's views: the loss history and the latent ordering by KL.

Like napari's ``components`` these hold data and know nothing of widgets; the Qt panels read them
(on a timer) and tests drive them directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np




class LossHistory:
    """Loss terms per training step in preallocated arrays that grow by doubling.

    Rows are steps, columns loss terms (added the first time a name appears). Beside the raw values
    it keeps a bias-corrected exponential moving average of each term (TensorBoard's "smoothing"),
    updated as rows arrive, so drawing a smoothed curve never recomputes the whole history.

    Parameters
    ----------
    capacity : int
        Rows allocated up front; doubled whenever full.
    smoothing : float
        EMA weight of the past, in [0, 1); 0.98 averages over roughly the last 50 steps.

    Attributes
    ----------
    names : list of str
        Loss term names in order of first appearance.
    version : int
        Incremented on every change, so a view redraws only when the history changed.
    """

    def __init__(self, capacity: int = 1024, smoothing: float = 0.98) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must lie in [0, 1), got {smoothing}")
        self.smoothing = float(smoothing)
        self._capacity0 = max(16, int(capacity))
        self.version = 0
        self.clear()

    # -- building --------------------------------------------------------------------------------
    def clear(self) -> None:
        """Forget every step and every term."""
        self.names: list[str] = []
        self._col: dict[str, int] = {}
        self._n = 0
        self._steps = np.zeros(self._capacity0, np.float64)
        self._raw = np.full((self._capacity0, 0), np.nan, np.float32)
        self._ema = np.full((self._capacity0, 0), np.nan, np.float32)
        self._acc = np.zeros(0, np.float64)  # EMA numerator per term
        self._wsum = np.zeros(0, np.float64)  # EMA weight per term (bias correction)
        self.version += 1

    def __len__(self) -> int:
        return self._n

    def _column(self, name: str) -> int:
        col = self._col.get(name)
        if col is None:
            col = len(self.names)
            self._col[name] = col
            self.names.append(name)
            pad = np.full((self._raw.shape[0], 1), np.nan, np.float32)
            self._raw = np.concatenate([self._raw, pad], axis=1)
            self._ema = np.concatenate([self._ema, pad.copy()], axis=1)
            self._acc = np.append(self._acc, 0.0)
            self._wsum = np.append(self._wsum, 0.0)
        return col

    def _reserve(self, rows: int) -> None:
        cap = self._steps.shape[0]
        if self._n + rows <= cap:
            return
        while cap < self._n + rows:
            cap *= 2
        steps = np.zeros(cap, np.float64)
        steps[: self._n] = self._steps[: self._n]
        raw = np.full((cap, self._raw.shape[1]), np.nan, np.float32)
        raw[: self._n] = self._raw[: self._n]
        ema = np.full_like(raw, np.nan)
        ema[: self._n] = self._ema[: self._n]
        self._steps, self._raw, self._ema = steps, raw, ema

    def append(self, steps: np.ndarray, names: Sequence[str], values: np.ndarray) -> None:
        """Add K consecutive steps.

        Parameters
        ----------
        steps : (K,) int array
            Step numbers.
        names : sequence of T str
            Names of the columns of ``values``.
        values : (K, T) float array
            Loss values; NaN where a step did not log a term.

        Raises
        ------
        ValueError
            If the shapes do not agree.
        """
        steps = np.asarray(steps, np.float64).reshape(-1)
        values = np.asarray(values, np.float32).reshape(len(steps), -1) if len(steps) else np.zeros((0, len(names)))
        if values.shape != (len(steps), len(names)):
            raise ValueError(f"values of shape {values.shape} do not match {len(steps)} steps x {len(names)} names")
        k = len(steps)
        if k == 0:
            return
        cols = np.array([self._column(str(n)) for n in names], dtype=np.int64)
        self._reserve(k)
        rows = slice(self._n, self._n + k)
        self._steps[rows] = steps
        self._raw[rows, cols] = values
        a = self.smoothing
        acc, wsum = self._acc[cols], self._wsum[cols]
        ema = np.full(values.shape, np.nan, np.float32)
        for i in range(k):  # K is a few dozen rows per message; each row is vectorised over terms
            v = values[i].astype(np.float64)
            ok = np.isfinite(v)
            acc = np.where(ok, a * acc + (1.0 - a) * np.where(ok, v, 0.0), acc)
            wsum = np.where(ok, a * wsum + (1.0 - a), wsum)
            ema[i] = np.where(ok, acc / np.maximum(wsum, 1e-12), np.nan)
        self._acc[cols], self._wsum[cols] = acc, wsum
        self._ema[rows, cols] = ema
        self._n += k
        self.version += 1

    def truncate(self, step: int) -> None:
        """Drop the rows after ``step`` (a checkpoint was restored there)."""
        keep = int(np.searchsorted(self._steps[: self._n], step, side="right"))
        if keep == self._n:
            return
        self._n = keep
        for col in range(len(self.names)):  # restart each EMA from its last smoothed value
            last = self._ema[:keep, col]
            finite = last[np.isfinite(last)]
            self._acc[col], self._wsum[col] = (float(finite[-1]), 1.0) if len(finite) else (0.0, 0.0)
        self.version += 1

    # -- reading ---------------------------------------------------------------------------------
    @property
    def steps(self) -> np.ndarray:
        """(n,) float64 step numbers (a view; do not modify)."""
        return self._steps[: self._n]

    @property
    def last_step(self) -> int:
        """The last step recorded, or -1 when empty."""
        return int(self._steps[self._n - 1]) if self._n else -1

    def series(self, name: str, smooth: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Steps and values of one term (views into the history).

        Returns
        -------
        x : (n,) float64 steps
        y : (n,) float32 values (the EMA when ``smooth``); NaN where the term was not logged.

        Raises
        ------
        KeyError
            If no term has that name.
        """
        col = self._col[name]
        data = self._ema if smooth else self._raw
        return self._steps[: self._n], data[: self._n, col]

    def last(self, name: str) -> float:
        """The latest finite value of a term, NaN if none."""
        if name not in self._col:
            return float("nan")
        y = self._raw[: self._n, self._col[name]]
        finite = y[np.isfinite(y)]
        return float(finite[-1]) if len(finite) else float("nan")


def nice_ceiling(x: float) -> float:
    """The smallest of 1, 2 or 5 times a power of ten that is >= ``x`` (x > 0); 1 for x <= 0."""
    if not np.isfinite(x) or x <= 0:
        return 1.0
    power = 10.0 ** np.floor(np.log10(x))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * power >= x * (1 - 1e-12):
            return float(m * power)
    return float(10 * power)


def stable_range(
    current: tuple[float, float] | None, lo: float, hi: float, pad: float = 0.08, fill: float = 0.4,
) -> tuple[float, float] | None:
    """A plot range that changes rarely: a new one only when the data leave it or shrink well inside it.

    Every change of a pyqtgraph view range repaints its axes, which in software rendering costs
    several ms of the GUI thread; autoranging on every redraw of a live plot does that 10 times a
    second. This keeps ``current`` while it holds the data [lo, hi] and the data fill at least
    ``fill`` of it.

    Returns
    -------
    (low, high) or None
        The new range (the data padded by ``pad`` of their span on each side), or None to keep ``current``.
    """
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return None
    if hi - lo <= 0:
        span = abs(hi) * 0.1 or 1.0
        lo, hi = lo - span, hi + span
    if current is not None:
        c_lo, c_hi = current
        if c_lo <= lo and hi <= c_hi and (hi - lo) >= fill * (c_hi - c_lo):
            return None
    span = hi - lo
    return (lo - pad * span, hi + pad * span)


#: A latent is labelled by a factor when its mutual information with it is at least this (nats) ...
FACTOR_MIN_MI = 0.1
#: ... and this many times its MI with the next most informative factor.
FACTOR_MARGIN = 1.5


def factor_of(mi_row: np.ndarray) -> int | None:
    """The factor one latent dimension captures, or None when no factor clearly dominates.

    Parameters
    ----------
    mi_row : (K,) float array
        Mutual information in nats between the latent and each ground-truth factor.

    Returns
    -------
    int or None
        argmax k when ``mi_row[k] >= FACTOR_MIN_MI`` and ``mi_row[k] > FACTOR_MARGIN`` times the
        second largest value; None otherwise (or when ``mi_row`` is empty or not finite).
    """
    row = np.nan_to_num(np.asarray(mi_row, np.float64).reshape(-1), nan=0.0)
    if row.size == 0:
        return None
    order = np.argsort(row)[::-1]
    top = row[order[0]]
    second = row[order[1]] if row.size > 1 else 0.0
    return int(order[0]) if top >= FACTOR_MIN_MI and top > FACTOR_MARGIN * max(second, 0.0) else None


#: The parts of an image a completion can keep: the rest is drawn (Pixels) or sampled (Energy) given them.
COMPLETION_MASKS = ("top half kept", "left half kept", "top-left quarter kept", "nothing kept")


def known_mask(kind: str, height: int, width: int) -> np.ndarray:
    """The (H, W) bool mask of the pixels kept for completion mask ``kind`` (one of :data:`COMPLETION_MASKS`).

    Raises
    ------
    ValueError
        For an unknown kind.
    """
    known = np.zeros((height, width), bool)
    if kind == "top half kept":
        known[: height // 2] = True
    elif kind == "left half kept":
        known[:, : width // 2] = True
    elif kind == "top-left quarter kept":
        known[: height // 2, : width // 2] = True
    elif kind != "nothing kept":
        raise ValueError(f"unknown completion mask {kind!r}; one of {', '.join(COMPLETION_MASKS)}")
    return known
