"""The Flow tab: invert a real image exactly, edit its z along directions, sample at a temperature, interpolate."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QDoubleSpinBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSlider, QSpinBox,
    QVBoxLayout, QWidget,
)

from studio.features.flows.state import NOTCHES, SIGMAS, STRIP
from studio.widgets.basic import ImageView, off_note
from studio.widgets.images import grid
from studio.widgets.scrolling import TwoColumns


class FlowView(QWidget):
    """Invert, directions, temperature and interpolation for a flow's image-shaped z.

    Signals
    -------
    invert_requested(int index)
    directions_requested(str method, int k, int from_class, int to_class)
    coefficient_changed(int i, float value)
        A direction's slider moved (value in standard deviations).
    reset_requested()
    sample_requested(float temperature, int seed)
    interpolate_requested(int a, int b, int frames)
    """

    invert_requested = Signal(int)
    directions_requested = Signal(str, int, int, int)
    coefficient_changed = Signal(int, float)
    reset_requested = Signal()
    sample_requested = Signal(float, int)
    interpolate_requested = Signal(int, int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.note = off_note("")
        self.sliders: list[QSlider] = []
        self.slider_labels: list[QLabel] = []

        # invert
        self.index_spin = QSpinBox()
        self.index_spin.setToolTip("A held-out example of the data set")
        self.invert_button = QPushButton("Invert")
        self.invert_button.setToolTip("z = f(x) exactly, and back: x = f^-1(z)")
        self.original = ImageView("x")
        self.recon = ImageView("f^-1(f(x))")
        self.edited = ImageView("Edited")
        # directions
        self.method_combo = QComboBox()
        self.method_combo.addItem("principal components", "pca")
        self.method_combo.addItem("class difference", "class")
        self.method_combo.setToolTip("Principal components of the encoded held-out images, or the difference "
                                     "of two classes' mean encodings")
        self.k_spin = QSpinBox()
        self.k_spin.setRange(1, 12)
        self.k_spin.setValue(6)
        self.k_spin.setToolTip("Principal components found")
        self.from_combo, self.to_combo = QComboBox(), QComboBox()
        self.find_button = QPushButton("Find directions")
        self.find_button.setToolTip("Encode held-out images in the worker and find directions in z")
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Every direction back to 0: the inverted image itself")
        self.sliders_box = QGridLayout()
        # temperature
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 1.5)
        self.temperature.setSingleStep(0.05)
        self.temperature.setValue(0.7)
        self.temperature.setToolTip("Standard deviation of the prior when sampling (Kingma & Dhariwal 2018): "
                                    "1 samples the model itself, lower is smoother and more typical")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.sample_button = QPushButton(f"Sample {STRIP}")
        self.samples = ImageView("Samples")
        # interpolation
        self.a_spin, self.b_spin = QSpinBox(), QSpinBox()
        self.b_spin.setValue(1)
        self.frames_spin = QSpinBox()
        self.frames_spin.setRange(2, 16)
        self.frames_spin.setValue(8)
        self.interp_button = QPushButton("Interpolate")
        self.interp_button.setToolTip("A straight line in z between two held-out images; its ends are the images exactly")
        self.path = ImageView("Interpolation")

        invert = QGroupBox("A real image, exactly")
        row = QHBoxLayout()
        for w in (QLabel("Held-out example"), self.index_spin, self.invert_button):
            row.addWidget(w)
        row.addStretch(1)
        pics = QHBoxLayout()
        for w in (self.original, self.recon, self.edited):
            pics.addWidget(w, 1)
        box = QVBoxLayout(invert)
        box.addLayout(row)
        box.addLayout(pics, 1)

        directions = QGroupBox("Directions (in standard deviations of the encodings)")
        row = QHBoxLayout()
        for w in (self.method_combo, self.k_spin, QLabel("from"), self.from_combo, QLabel("to"), self.to_combo,
                  self.find_button, self.reset_button):
            row.addWidget(w)
        row.addStretch(1)
        box = QVBoxLayout(directions)
        box.addLayout(row)
        box.addLayout(self.sliders_box)
        box.addStretch(1)

        sampling = QGroupBox("Samples at a temperature")
        row = QHBoxLayout()
        for w in (QLabel("T"), self.temperature, QLabel("Seed"), self.seed_spin, self.sample_button):
            row.addWidget(w)
        row.addStretch(1)
        box = QVBoxLayout(sampling)
        box.addLayout(row)
        box.addWidget(self.samples, 1)

        interp = QGroupBox("Between two real images")
        row = QHBoxLayout()
        for w in (QLabel("From"), self.a_spin, QLabel("to"), self.b_spin, QLabel("Frames"), self.frames_spin,
                  self.interp_button):
            row.addWidget(w)
        row.addStretch(1)
        box = QVBoxLayout(interp)
        box.addLayout(row)
        box.addWidget(self.path, 1)

        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        self.boxes = TwoColumns([invert, directions, sampling, interp])  # two by two, or one column on a laptop
        layout.addWidget(self.boxes, 1)

        self.invert_button.clicked.connect(lambda: self.invert_requested.emit(self.index_spin.value()))
        self.find_button.clicked.connect(lambda: self.directions_requested.emit(
            str(self.method_combo.currentData()), self.k_spin.value(), self.from_combo.currentIndex(),
            self.to_combo.currentIndex()))
        self.reset_button.clicked.connect(self._reset)
        self.sample_button.clicked.connect(lambda: self.sample_requested.emit(self.temperature.value(),
                                                                              self.seed_spin.value()))
        self.interp_button.clicked.connect(lambda: self.interpolate_requested.emit(
            self.a_spin.value(), self.b_spin.value(), self.frames_spin.value()))
        self.method_combo.currentIndexChanged.connect(self._method_changed)
        self.set_enabled("Build a model first", 0, ())

    # -- state -----------------------------------------------------------------------------------
    @property
    def columns(self) -> int:
        """How many columns the four boxes are in now (2, or 1 in a narrow window)."""
        return self.boxes.columns

    def set_enabled(self, reason: str, n_test: int, class_names: tuple[str, ...]) -> None:
        """Enable the tab for a flow on images (``reason`` "") or say why it is off."""
        on = not reason
        self.note.setText(reason)
        self.note.setVisible(bool(reason))
        for spin in (self.index_spin, self.a_spin, self.b_spin):
            spin.setRange(0, max(0, n_test - 1))
        for combo in (self.from_combo, self.to_combo):
            combo.clear()
            combo.addItems(list(class_names))
        self.to_combo.setCurrentIndex(min(1, len(class_names) - 1))
        self.method_combo.model().item(1).setEnabled(len(class_names) >= 2)
        if len(class_names) < 2:
            self.method_combo.setCurrentIndex(0)
        for w in (self.index_spin, self.invert_button, self.method_combo, self.find_button, self.temperature,
                  self.seed_spin, self.sample_button, self.a_spin, self.b_spin, self.frames_spin, self.interp_button):
            w.setEnabled(on and (n_test > 0 or w in (self.temperature, self.seed_spin, self.sample_button)))
        self._method_changed()
        self.set_directions([])
        for view in (self.original, self.recon, self.edited, self.samples, self.path):
            view.clear()

    def _method_changed(self) -> None:
        pca = self.method_combo.currentData() == "pca"
        self.k_spin.setEnabled(pca and self.find_button.isEnabled())
        self.from_combo.setEnabled(not pca and self.find_button.isEnabled())
        self.to_combo.setEnabled(not pca and self.find_button.isEnabled())

    def set_directions(self, names: list[str]) -> None:
        """One slider per direction, from -SIGMAS to +SIGMAS standard deviations, at 0."""
        while self.sliders_box.count():
            item = self.sliders_box.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.sliders, self.slider_labels = [], []
        for i, name in enumerate(names):
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(int(-SIGMAS * NOTCHES), int(SIGMAS * NOTCHES))
            slider.setToolTip(f"{name}: move z along it, in standard deviations of the encodings")
            value = QLabel("+0.0")
            value.setMinimumWidth(36)
            slider.valueChanged.connect(lambda v, i=i, label=value: self._slid(i, v, label))
            self.sliders_box.addWidget(QLabel(name), i, 0)
            self.sliders_box.addWidget(slider, i, 1)
            self.sliders_box.addWidget(value, i, 2)
            self.sliders.append(slider)
            self.slider_labels.append(value)
        self.reset_button.setEnabled(bool(names))

    def _slid(self, i: int, notch: int, label: QLabel) -> None:
        label.setText(f"{notch / NOTCHES:+.1f}")
        self.coefficient_changed.emit(i, notch / NOTCHES)

    def _reset(self) -> None:
        for s in self.sliders:
            s.blockSignals(True)
            s.setValue(0)
            s.blockSignals(False)
        for label in self.slider_labels:
            label.setText("+0.0")
        self.reset_requested.emit()

    # -- pictures --------------------------------------------------------------------------------
    @staticmethod
    def put(view: ImageView, images: np.ndarray, caption: str, ncols: int | None = None) -> None:
        """(N, C, H, W) images in [0, 1] into ``view`` as a grid, with a caption."""
        x = np.asarray(images, np.float32)
        view.set_image(x[0] if len(x) == 1 else grid(x, ncols))
        view.set_title(caption)
