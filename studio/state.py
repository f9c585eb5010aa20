"""Qt-free models behind the window's views: the loss history and the latent ordering by KL.

Like napari's ``components`` these hold data and know nothing of widgets; the Qt panels read them
(on a timer) and tests drive them directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engines.shared.latent_np import prior_draw  # noqa: F401 - the window's prior draws, re-exported

#: KL (nats) below which a latent dimension counts as collapsed: the decoder ignores it.
COLLAPSED_KL = 0.05


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


def kl_order(latent_kl: np.ndarray | None, dim: int, threshold: float = COLLAPSED_KL) -> tuple[np.ndarray, np.ndarray]:
    """Order latent dimensions by information, most informative first.

    Parameters
    ----------
    latent_kl : (D,) float array or None
        KL per dimension in nats; None (no measurement yet) keeps the natural order.
    dim : int
        D, the width of z.
    threshold : float
        KL in nats below which a dimension counts as collapsed.

    Returns
    -------
    order : (D,) int64
        Dimension indices by decreasing KL (ties keep their natural order).
    collapsed : (D,) bool
        Per dimension (in natural order), whether its KL is below ``threshold``.
    """
    if latent_kl is None or len(latent_kl) != dim:
        return np.arange(dim, dtype=np.int64), np.zeros(dim, bool)
    kl = np.nan_to_num(np.asarray(latent_kl, np.float64), nan=0.0)
    order = np.argsort(-kl, kind="stable").astype(np.int64)
    return order, kl < threshold


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


def _finite_mean(y: np.ndarray) -> float:
    """Mean of the finite entries of ``y``; NaN when there are none."""
    y = y[np.isfinite(y)]
    return float(y.mean()) if len(y) else float("nan")


class CollapseDetector:
    """Watches a GAN for mode collapse and for a discriminator that wins outright (Qt-free).

    Two checks, each latched: it reports once when its condition starts and again only after the
    condition cleared and came back.

    - Coverage (:meth:`check_coverage`): the modes captured (or classes covered) drop to at most
      ``collapse_share`` of the best count seen so far, or to 1 (Srivastava et al., 2017, VEEGAN,
      count a mode as captured when enough samples land near it; the worker measures that).
    - Losses (:meth:`check_losses`): over the last ``window`` steps the mean D(x) stays above
      ``d_real_min`` and the mean D(G(z)) below ``d_fake_max`` (probabilities, the ``loss="gan"``
      objective of Goodfellow et al., 2014), or the generator loss explodes: its recent mean exceeds
      ``explode_factor`` times the median of the steps before and ``explode_min`` nats, or is not finite.

    Parameters
    ----------
    window : int
        Number of recent steps the loss checks average over.
    d_real_min, d_fake_max : float
        Probabilities in [0, 1] bounding a discriminator that wins outright.
    collapse_share : float
        Share in (0, 1) of the best count seen at or below which coverage counts as collapsed.
    explode_factor : float
        Ratio of the recent mean g_loss to the earlier median that counts as exploding.
    explode_min : float
        The recent mean g_loss (nats) must also exceed this to count as exploding.
    """

    def __init__(
        self, window: int = 50, d_real_min: float = 0.98, d_fake_max: float = 0.02, collapse_share: float = 0.25,
        explode_factor: float = 10.0, explode_min: float = 5.0,
    ) -> None:
        self.window, self.d_real_min, self.d_fake_max = int(window), float(d_real_min), float(d_fake_max)
        self.collapse_share, self.explode_factor, self.explode_min = float(collapse_share), float(explode_factor), float(explode_min)
        self.reset()

    def reset(self) -> None:
        """Forget the best coverage seen and re-arm both checks (a new model was built)."""
        self.best = 0
        self.collapsed = False
        self.d_wins = False

    def check_coverage(self, step: int, captured: int, total: int, unit: str = "modes captured") -> str | None:
        """Feed one coverage measurement; a warning message when coverage has just collapsed.

        Parameters
        ----------
        step : int
            Training step of the measurement.
        captured, total : int
            Modes captured (classes covered) and how many there are.
        unit : str
            Words after the count in the message, e.g. "modes captured" or "classes covered".

        Returns
        -------
        str or None
            "Mode collapse at step N: c / t modes captured", or None. Fires once the model has
            captured at least 2 modes and then drops to ``collapse_share`` of its best or to 1.
        """
        captured, total = int(captured), int(total)
        self.best = max(self.best, captured)
        # Only a model that had spread over several modes can collapse; early training, when
        # the best seen is one mode, is not a collapse.
        low = (total > 1 and self.best >= 2 and captured < self.best
               and (captured <= self.collapse_share * self.best or captured <= 1))
        if low and not self.collapsed:
            self.collapsed = True
            return f"Mode collapse at step {int(step):,}: {captured} / {total} {unit}"
        if not low:
            self.collapsed = False
        return None

    def check_losses(self, history: LossHistory, probabilities: bool = True) -> str | None:
        """Check the latest ``window`` steps of a GAN's loss history; a message when D has just won.

        Parameters
        ----------
        history : LossHistory
            With terms ``d_real``, ``d_fake`` (mean D outputs) and ``g_loss`` (nats) where the model logs them.
        probabilities : bool
            Whether ``d_real`` / ``d_fake`` are probabilities (False for Wasserstein critics, whose raw
            scores have no fixed scale: then only the g_loss check runs).

        Returns
        -------
        str or None
            "Discriminator wins at step N: ..." or "Generator loss exploding at step N: ...", or None.
        """
        n = len(history)
        if n < self.window:
            return None
        step = history.last_step
        message = None
        if probabilities and "d_real" in history.names and "d_fake" in history.names:
            real, fake = (_finite_mean(history.series(k)[1][-self.window:]) for k in ("d_real", "d_fake"))
            if real > self.d_real_min and fake < self.d_fake_max:
                message = (f"Discriminator wins at step {step:,}: D(x) = {real:.3f}, D(G(z)) = {fake:.3f} "
                           f"over the last {self.window} steps")
        if message is None and "g_loss" in history.names:
            g = history.series("g_loss")[1]
            recent, before = g[-self.window:], g[:-self.window]
            before = before[np.isfinite(before)]
            logged = recent[~np.isnan(recent)]
            if len(logged) and not np.isfinite(logged).all():
                message = f"Generator loss exploding at step {step:,}: g_loss is not finite"
            elif len(logged) and len(before) >= self.window:
                mean, base = float(logged.mean()), float(np.median(np.abs(before)))
                if mean > self.explode_min and mean > self.explode_factor * max(base, 1e-6):
                    message = (f"Generator loss exploding at step {step:,}: g_loss {mean:.3g} nats over the last "
                               f"{self.window} steps against {base:.3g} before")
        if message is not None and not self.d_wins:
            self.d_wins = True
            return message
        if message is None:
            self.d_wins = False
        return None


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
