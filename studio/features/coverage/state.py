"""The Coverage panel's Qt-free part: the collapse and discriminator warnings over the measurements and losses."""

from __future__ import annotations


import numpy as np

from studio.state import LossHistory


def grid_polyline(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A warped grid (L, P, 2) as one polyline: x, y (L*P,) and the ``connect`` mask that breaks it between lines."""
    lines = np.asarray(lines, np.float64)
    n_lines, n_points = lines.shape[:2]
    connect = np.ones((n_lines, n_points), bool)
    connect[:, -1] = False
    return lines[..., 0].ravel(), lines[..., 1].ravel(), connect.ravel()


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
