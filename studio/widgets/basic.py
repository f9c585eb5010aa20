"""Small reusable widgets: image and point views, a log-scale spin box, an FPS counter, a banner, a log.

None of them knows about the worker; panels compose them.
"""

from __future__ import annotations

import html
import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPainter, QPixmap, QValidator
from PySide6.QtWidgets import (
    QDoubleSpinBox, QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar, QPushButton, QVBoxLayout, QWidget,
)
from superqt import QElidingLabel

from engines.shared.imaging import to_uint8
from studio.widgets.images import to_display

BACKGROUND = "#1e1f22"
#: Curve colours in order of first appearance (Tableau 10, brightened for a dark background).
PALETTE = ["#4fc3f7", "#ffb74d", "#e57373", "#81c784", "#ba68c8", "#a1887f", "#f06292", "#bdbdbd", "#dce775", "#4dd0e1"]


class ImageView(QWidget):
    """A titled image shown large with square, nearest-neighbour pixels (pyqtgraph ``ImageItem``, row-major).

    Parameters
    ----------
    title : str
        Caption above the image.
    """

    def __init__(self, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # A long caption (the bits/dim of a strip) is elided, its whole text in the tooltip, rather than
        # widening the tab; a wrapped label would make scroll areas size it by its preferred height.
        self.title = QElidingLabel(title)
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title.setToolTip(title)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground(BACKGROUND)
        self.graphics.ci.setContentsMargins(2, 2, 2, 2)
        self.graphics.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)  # square pixels
        self.graphics.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        self.view = self.graphics.addViewBox(lockAspect=True, invertY=True, enableMouse=False, enableMenu=False)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.item)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.graphics, 1)
        self._shape: tuple[int, ...] | None = None
        self._image: np.ndarray | None = None

    def set_title(self, text: str) -> None:
        """Set the caption above the image (elided where it does not fit; whole in the tooltip)."""
        self.title.setText(text)
        self.title.setToolTip(text)

    def set_image(self, image: np.ndarray) -> None:
        """Show one image: (C, H, W) or (H, W) float in [0, 1] (fixed levels, never auto-levelled)."""
        disp = to_display(image)
        self._image = disp
        self.item.setImage(disp, autoLevels=False, levels=(0.0, 1.0))
        if disp.shape[:2] != self._shape:
            self._shape = disp.shape[:2]
            self.view.setRange(xRange=(0, disp.shape[1]), yRange=(0, disp.shape[0]), padding=0.01)

    def clear(self) -> None:
        """Show nothing."""
        self._image, self._shape = None, None
        self.item.clear()

    def image(self) -> np.ndarray | None:
        """The array on screen: (H, W) or (H, W, 3) float32 in [0, 1], or None."""
        return self._image


#: Diverging map of the critic's output over the plane: purple where it says fake, green where real (GAN Lab).
CRITIC_MAP = pg.ColorMap(pos=[0.0, 0.5, 1.0], color=[(140, 80, 190), (58, 60, 66), (60, 170, 90)])


#: Sequential map of a model's log-density over the plane: dark where unlikely, bright where likely.
DENSITY_MAP = pg.colormap.get("inferno")
#: Nats of log-density coloured below a density map's maximum (lower is drawn as the darkest colour).
DENSITY_RANGE_NATS = 10.0


def density_levels(log_density: np.ndarray, span: float = DENSITY_RANGE_NATS) -> tuple[float, float]:
    """Colour levels of a log-density map (nats): from ``span`` below its finite maximum to the maximum."""
    finite = log_density[np.isfinite(log_density)]
    if not len(finite):
        return -1.0, 0.0
    hi = float(finite.max())
    lo = max(float(finite.min()), hi - span)
    return (lo, hi) if hi > lo else (hi - 1.0, hi)


def critic_levels(critic: np.ndarray) -> tuple[float, float]:
    """Colour levels of one critic map: [0, 1] for probabilities, else its finite min and max."""
    finite = critic[np.isfinite(critic)]
    if not len(finite):
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


class PointsView(QWidget):
    """A titled scatter plot of 2-D points, with the data's known mode centres as red crosses and,
    for a GAN, the critic's output over the plane as a heat map underneath (as in GAN Lab: Kahng
    et al. 2019)."""

    def __init__(self, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel(title)
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.plot = pg.PlotWidget(background=BACKGROUND)
        self.plot.setAspectLocked(True)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.scatter = pg.ScatterPlotItem(size=4, pen=None, brush=pg.mkBrush(120, 200, 255, 160))
        self.modes = pg.ScatterPlotItem(size=12, symbol="x", pen=None, brush=pg.mkBrush(255, 80, 80, 220))
        self.highlight = pg.ScatterPlotItem(size=14, symbol="o", pen=pg.mkPen("#ffd24d", width=2), brush=None)
        self.critic = pg.ImageItem(axisOrder="row-major")
        self.critic.setColorMap(CRITIC_MAP)
        self.critic.setOpacity(0.85)
        self.critic.setZValue(-10)
        for item in (self.critic, self.scatter, self.modes, self.highlight):
            self.plot.addItem(item)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.plot, 1)
        self._points: np.ndarray | None = None

    def set_title(self, text: str) -> None:
        """Set the caption above the plot."""
        self.title.setText(text)

    def set_points(self, points: np.ndarray) -> None:
        """Show (N, 2) points."""
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        self._points = pts
        self.scatter.setData(pos=pts)

    def set_modes(self, modes: np.ndarray | None) -> None:
        """Show (M, 2) mode centres, or none."""
        self.modes.setData(pos=np.zeros((0, 2)) if modes is None else np.asarray(modes, np.float64).reshape(-1, 2))

    def set_critic(self, critic: np.ndarray | None, extent: tuple[float, float, float, float] = (0, 1, 0, 1),
                   units: str = "") -> None:
        """Show the critic's output (H, W) over ``extent`` = (x0, x1, y0, y1) in data units, row 0 at y0; None clears it.

        Probabilities (all in [0, 1]) are coloured on [0, 1] and other critics on their own range, purple
        to green; a ``units="log-density"`` map (a model's log p(x), nats) dark to bright over its top
        :data:`DENSITY_RANGE_NATS` nats.
        """
        if critic is None:
            self.critic.clear()
            return
        critic = np.asarray(critic, np.float32)
        x0, x1, y0, y1 = (float(e) for e in extent)
        density = units == "log-density"
        levels = density_levels(critic) if density else critic_levels(critic)
        self.critic.setColorMap(DENSITY_MAP if density else CRITIC_MAP)
        self.critic.setImage(np.nan_to_num(critic, nan=levels[0], neginf=levels[0], posinf=levels[1]),
                             autoLevels=False, levels=levels)
        self.critic.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))

    def set_highlight(self, points: np.ndarray | None) -> None:
        """Ring (K, 2) points (the decoded point of the Explore view)."""
        self.highlight.setData(pos=np.zeros((0, 2)) if points is None else np.asarray(points, np.float64).reshape(-1, 2))

    def points(self) -> np.ndarray | None:
        """The (N, 2) points shown, or None."""
        return self._points


class LogSpinBox(QDoubleSpinBox):
    """A spin box for positive values on a log scale (learning rates): arrows multiply by 10^(1/4).

    Shows values in compact scientific form (``3e-04``); typing any float is accepted.
    """

    STEPS_PER_DECADE = 4

    def __init__(self, low: float, high: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDecimals(12)
        self.setRange(max(low, 1e-12), high)
        self.setKeyboardTracking(False)

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt override
        return f"{value:.3g}" if 1e-3 <= value < 1e3 else f"{value:.2e}".replace("e-0", "e-").replace("e+0", "e")

    def valueFromText(self, text: str) -> float:  # noqa: N802 - Qt override
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:  # Qt override
        t = text.strip()
        try:
            v = float(t)
        except ValueError:
            ok = t == "" or all(ch in "0123456789.eE+-" for ch in t)
            return (QValidator.State.Intermediate if ok else QValidator.State.Invalid), text, pos
        state = QValidator.State.Acceptable if self.minimum() <= v <= self.maximum() else QValidator.State.Intermediate
        return state, text, pos

    def stepBy(self, steps: int) -> None:  # noqa: N802 - Qt override
        v = max(self.value(), self.minimum())
        self.setValue(10 ** (math.log10(v) + steps / self.STEPS_PER_DECADE))


class FpsCounter(QObject):
    """Frames per second of the window's own drawing (after pyqtgraph's ``examples/utils.FrameCounter``).

    Call :meth:`tick` whenever a view redraws; ``fps_updated(float)`` fires once a second.
    """

    fps_updated = Signal(float)

    def __init__(self, interval_ms: int = 1000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.count = 0
        self.fps = 0.0
        self._t0 = time.perf_counter()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._update)
        self._timer.start(interval_ms)

    def tick(self) -> None:
        """Count one redraw."""
        self.count += 1

    def _update(self) -> None:
        now = time.perf_counter()
        self.fps = self.count / max(now - self._t0, 1e-6)
        self.count, self._t0 = 0, now
        self.fps_updated.emit(self.fps)


class Banner(QFrame):
    """A dialog-free warning strip with an action button (e.g. "Worker died ... [Restart worker]")."""

    def __init__(self, action_text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.setStyleSheet("#banner { background: #5c1d1d; border-radius: 4px; } #banner QLabel { color: #ffdede; }")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.button = QPushButton(action_text)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.button)
        self.hide()

    def show_message(self, text: str) -> None:
        """Show the banner with ``text`` (rich text: escape user strings)."""
        self.label.setText(text)
        self.show()


class MessageLog(QPlainTextEdit):
    """A read-only, time-stamped log of the worker's messages and errors (never a modal dialog)."""

    COLOURS = {"info": "#c8c8c8", "warning": "#ffcc66", "error": "#ff7b7b"}

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(2000)
        self.lines: list[tuple[str, str]] = []

    def log(self, text: str, level: str = "info") -> None:
        """Append one message; ``level`` is "info", "warning" or "error"."""
        self.lines.append((level, text))
        stamp = time.strftime("%H:%M:%S")
        colour = self.COLOURS.get(level, self.COLOURS["info"])
        body = html.escape(text).replace("\n", "<br>")
        self.appendHtml(f'<span style="color:#808080">{stamp}</span> <span style="color:{colour}">{body}</span>')


class TimeCursor:
    """A solid vertical line at a step on a plot over steps, hidden until :meth:`set` is given one (the timeline's
    scrubbed step shown on every such plot)."""

    def __init__(self, plot: pg.PlotWidget) -> None:
        self.line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#ffd54f", width=2))
        self.line.setZValue(50)
        self.line.hide()
        plot.addItem(self.line, ignoreBounds=True)

    def set(self, step: int | None) -> None:
        """Show the line at ``step``; None hides it (the plots are live again)."""
        if step is None:
            self.line.hide()
        else:
            self.line.setPos(float(step))
            self.line.show()

    @property
    def step(self) -> float | None:
        return float(self.line.value()) if self.line.isVisible() else None


def off_note(text: str = "") -> QLabel:
    """The amber, word-wrapped line a tab shows when it does not apply to the model (and why)."""
    note = QLabel(text)
    note.setWordWrap(True)
    note.setStyleSheet("color: #d0a040")
    return note


def schedule_spin(default: float, tip: str) -> QDoubleSpinBox:
    """A spin box "every N s" for a metric schedule; 0 shows "off"."""
    spin = QDoubleSpinBox()
    spin.setRange(0.0, 3600.0)
    spin.setDecimals(0)
    spin.setSingleStep(5.0)
    spin.setSuffix(" s")
    spin.setSpecialValueText("off")
    spin.setKeyboardTracking(False)
    spin.setValue(default)
    spin.setToolTip(tip)
    return spin


class JobProgress(QWidget):
    """A small non-modal progress bar with a Cancel button for one worker job (an Export).

    Signals
    -------
    cancel_requested(int)
        The request id of the job shown, when Cancel is pressed.

    Attributes
    ----------
    request_id : int
        The job shown (0: none; the widget is then hidden).
    """

    cancel_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.request_id = 0
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setMaximumHeight(14)
        self.cancel_button = QPushButton("Cancel")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.cancel_button)
        self.cancel_button.clicked.connect(self._cancel)
        self.hide()

    def start(self, request_id: int, text: str) -> None:
        """Show job ``request_id`` as ``text``, busy until its first Progress."""
        self.request_id = int(request_id)
        self.label.setText(text)
        self.bar.setRange(0, 0)
        self.cancel_button.setEnabled(True)
        self.show()

    def update_progress(self, event) -> bool:  # noqa: ANN001 - a protocol.Progress
        """Show ``event`` if it belongs to the job shown; True if it did. A "cancelled" one ends the job."""
        if not self.request_id or getattr(event, "request_id", 0) != self.request_id:
            return False
        if event.message == "cancelled":
            self.finish()
            return True
        if event.total > 0:
            self.bar.setRange(0, int(event.total))
            self.bar.setValue(min(int(event.done), int(event.total)))
        return True

    def finish(self) -> None:
        """Forget the job and hide."""
        self.request_id = 0
        self.hide()

    def _cancel(self) -> None:
        if self.request_id:
            self.cancel_button.setEnabled(False)
            self.label.setText("Cancelling...")
            self.cancel_requested.emit(self.request_id)


def to_pixmap(image: np.ndarray, side: int) -> QPixmap:
    """One (C, H, W) image in [0, 1] (C in {1, 3}) as a pixmap whose longest side is ``side`` px (nearest).

    Raises
    ------
    ValueError
        If the image is not (1|3, H, W).
    """
    x = np.asarray(image, np.float32)
    if x.ndim != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"expected a (1|3, H, W) image, got shape {x.shape}")
    arr = np.ascontiguousarray(to_uint8(x))
    h, w, c = arr.shape
    if c == 1:
        qimg = QImage(np.ascontiguousarray(arr[..., 0]).data, w, h, w, QImage.Format.Format_Grayscale8)
    else:
        qimg = QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(qimg.copy()).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                                 Qt.TransformationMode.FastTransformation)
