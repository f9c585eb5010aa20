"""The Pixels tab: an autoregressive model drawing pixel by pixel, completing images, and where it is surprised."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QGridLayout, QHBoxLayout, QLabel, QPushButton, QSlider, QSpinBox, QVBoxLayout, QWidget,
)

from studio.features.pixels.state import MASKS, SPEED_DELAYS_MS, surprise_picture
from studio.widgets.basic import ImageView, off_note
from studio.widgets.images import grid

#: The heat map's colours (perceptually uniform, dark = expected, bright = surprising).
SURPRISE_MAP = pg.colormap.get("inferno")


class PixelsView(QWidget):
    """Draw / Pause / Continue with a speed dial; completion of a held-out image; its surprise map.

    Signals
    -------
    draw_requested(int n, int seed)
    pause_requested()
    continue_requested()
    complete_requested(int index, str mask, int n, int seed)
    surprise_requested(int index)
    """

    draw_requested = Signal(int, int)
    pause_requested = Signal()
    continue_requested = Signal()
    complete_requested = Signal(int, str, int, int)
    surprise_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.note = off_note("")
        self.n_spin = QSpinBox()
        self.n_spin.setRange(1, 16)
        self.n_spin.setValue(8)
        self.n_spin.setToolTip("Images drawn at once (one image for Pause / Continue)")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setToolTip("Seed of the draws: the same seed draws the same images")
        self.draw_button = QPushButton("Draw")
        self.draw_button.setToolTip("Sample fresh images pixel by pixel, in the model's order")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Stop drawing and keep what is drawn so far")
        self.continue_button = QPushButton("Continue")
        self.continue_button.setToolTip("Go on drawing a paused single image from where it stopped (exact: "
                                         "the pixels drawn come first in the model's order)")
        self.speed = QSlider(Qt.Orientation.Horizontal)
        self.speed.setRange(0, len(SPEED_DELAYS_MS) - 1)
        self.speed.setValue(2)
        self.speed.setToolTip("How fast the drawing is shown: left as fast as the model draws, right slow")
        self.index_spin = QSpinBox()
        self.index_spin.setRange(0, 0)
        self.index_spin.setToolTip("A held-out example of the data set")
        self.mask_combo = QComboBox()
        self.mask_combo.addItems(list(MASKS))
        self.mask_combo.setToolTip("Which part of the example is kept; the model draws the rest")
        self.complete_button = QPushButton("Complete")
        self.complete_button.setToolTip("Keep part of the held-out example and draw the rest, several times")
        self.surprise_button = QPushButton("Surprise map")
        self.surprise_button.setToolTip("Each pixel's -log p(x_d | x_<d) for the held-out example: "
                                        "where the model did not expect what it saw")
        self.frames = ImageView("Nothing drawn yet")
        self.example = ImageView("Held-out example")
        self.surprise = ImageView("Surprise")
        self.progress = QLabel("")

        top = QHBoxLayout()
        for w in (QLabel("Images"), self.n_spin, QLabel("Seed"), self.seed_spin, self.draw_button,
                  self.pause_button, self.continue_button, QLabel("Speed"), self.speed):
            top.addWidget(w)
        top.addStretch(1)
        second = QHBoxLayout()
        for w in (QLabel("Held-out example"), self.index_spin, self.mask_combo, self.complete_button,
                  self.surprise_button):
            second.addWidget(w)
        second.addStretch(1)
        pictures = QGridLayout()
        pictures.addWidget(self.frames, 0, 0, 2, 1)
        pictures.addWidget(self.example, 0, 1)
        pictures.addWidget(self.surprise, 1, 1)
        pictures.setColumnStretch(0, 3)
        pictures.setColumnStretch(1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addLayout(top)
        layout.addLayout(second)
        layout.addWidget(self.progress)
        layout.addLayout(pictures, 1)

        self.draw_button.clicked.connect(lambda: self.draw_requested.emit(self.n_spin.value(), self.seed_spin.value()))
        self.pause_button.clicked.connect(self.pause_requested)
        self.continue_button.clicked.connect(self.continue_requested)
        self.complete_button.clicked.connect(lambda: self.complete_requested.emit(
            self.index_spin.value(), self.mask_combo.currentText(), self.n_spin.value(), self.seed_spin.value()))
        self.surprise_button.clicked.connect(lambda: self.surprise_requested.emit(self.index_spin.value()))
        self.set_enabled("Build a model first", 0)

    # -- state -----------------------------------------------------------------------------------
    def set_enabled(self, reason: str, n_test: int) -> None:
        """Enable the tab for a model that samples pixel by pixel (``reason`` "") or say why it is off."""
        on = not reason
        self.note.setText(reason)
        self.note.setVisible(bool(reason))
        for w in (self.draw_button, self.complete_button, self.surprise_button, self.n_spin, self.seed_spin,
                  self.speed, self.mask_combo):
            w.setEnabled(on)
        self.index_spin.setRange(0, max(0, n_test - 1))
        self.index_spin.setEnabled(on and n_test > 0)
        self.complete_button.setEnabled(on and n_test > 0)
        self.surprise_button.setEnabled(on and n_test > 0)
        self.set_running(False, False)

    def set_running(self, running: bool, can_continue: bool) -> None:
        """Pause while drawing; Continue for a paused single image."""
        self.pause_button.setEnabled(running)
        self.continue_button.setEnabled(can_continue and not running)
        self.draw_button.setEnabled(not running and self.note.isHidden())  # not isVisible(): the tab may be hidden

    def delay_notch(self) -> int:
        """The speed dial's notch (0: fastest)."""
        return self.speed.value()

    # -- pictures --------------------------------------------------------------------------------
    def show_frame(self, images: np.ndarray, caption: str) -> None:
        """A frame of the drawing: (n, C, H, W) in [0, 1]."""
        self.frames.set_image(grid(np.asarray(images, np.float32)))
        self.frames.set_title(caption)

    def show_example(self, image: np.ndarray, known: np.ndarray | None = None) -> None:
        """The held-out example (C, H, W), dimmed where it will be drawn when ``known`` (H, W) is given."""
        x = np.asarray(image, np.float32).copy()
        if known is not None:
            x = np.where(known[None], x, 0.25 + 0.5 * x)
        self.example.set_image(x)

    def show_surprise(self, log_probs: np.ndarray, caption: str) -> float:
        """The surprise heat map of (C, H, W) log-probabilities; returns the colour ceiling (nats)."""
        scaled, top = surprise_picture(log_probs)
        rgb = SURPRISE_MAP.map(scaled.ravel(), mode="float")[:, :3].reshape(*scaled.shape, 3)
        self.surprise.set_image(np.moveaxis(rgb, -1, 0).astype(np.float32))
        self.surprise.set_title(caption)
        return top
