"""The Directions tab: find directions in z, move the Explore point along them, look around it, do a - b + c."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSlider, QSpinBox,
    QVBoxLayout, QWidget,
)

from studio.features.directions.state import LOCAL_COLUMNS, LOCAL_SPAN, METHOD_NAMES, NOTCHES, SIGMAS, SLOTS
from studio.widgets.basic import ImageView, JobProgress, off_note
from studio.widgets.images import grid
from studio.widgets.scrolling import TwoColumns


class DirectionsView(QWidget):
    """Find, slide, save / load / export, local directions and latent arithmetic.

    Signals
    -------
    find_requested(dict)
        The request: ``method``, ``k``, ``n``, ``factor``, ``from_class``, ``to_class``, ``estimator``.
    coefficient_changed(int, float)
        Direction i's slider moved (standard deviations).
    reset_requested()
    save_requested(), load_requested(), export_requested(str)
        File actions (the shell asks for the path); export's kind is "png" or "gif".
    local_requested()
        Find local directions now.
    slot_from_point(str), slot_from_example(str, int)
        Fill arithmetic slot "a", "b" or "c" from the current point or a held-out example.
    arithmetic_requested()
        Move the Explore point to a - b + c.
    clear_groups_requested()
        Empty the two groups.
    """

    find_requested = Signal(dict)
    coefficient_changed = Signal(int, float)
    reset_requested = Signal()
    save_requested = Signal()
    load_requested = Signal()
    export_requested = Signal(str)
    local_requested = Signal()
    slot_from_point = Signal(str)
    slot_from_example = Signal(str, int)
    arithmetic_requested = Signal()
    clear_groups_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.note = off_note("Build or open a model with a latent to find directions in it")
        self.sliders: list[QSlider] = []
        self.slider_labels: list[QLabel] = []
        self.names: list[str] = []

        # find
        self.method_combo = QComboBox()
        for key, text in METHOD_NAMES.items():
            self.method_combo.addItem(text, key)
        self.method_combo.setToolTip("PCA / ICA of the latents (GANSpace, Harkonen et al. 2020); an attribute's "
                                     "direction from labels or ground-truth factors (White 2016); two groups of "
                                     "images lassoed on the Map")
        self.k_spin = QSpinBox()
        self.k_spin.setRange(1, 16)
        self.k_spin.setValue(6)
        self.k_spin.setToolTip("Directions to find (PCA, ICA)")
        self.n_spin = QSpinBox()
        self.n_spin.setRange(50, 20000)
        self.n_spin.setSingleStep(100)
        self.n_spin.setValue(1000)
        self.n_spin.setToolTip("Held-out images encoded, or prior draws for a model without an encoder")
        self.factor_combo = QComboBox()
        self.factor_combo.setToolTip("The factor (or class) whose direction to find")
        self.from_combo, self.to_combo = QComboBox(), QComboBox()
        self.from_combo.setToolTip("The class the direction starts from")
        self.to_combo.setToolTip("The class the direction points to")
        self.estimator_combo = QComboBox()
        self.estimator_combo.addItem("mean difference", "mean")
        self.estimator_combo.addItem("linear model's normal", "linear")
        self.estimator_combo.setToolTip("Mean difference of the two groups' latents, or the normal of a logistic "
                                        "regression (a ridge regression for a real-valued factor)")
        self.find_button = QPushButton("Find directions")
        self.job = JobProgress()
        self.source = QLabel("")
        self.source.setWordWrap(True)
        self.groups_label = QLabel("groups: none yet (lasso them on the Map, or add images from the data set browser)")
        self.groups_label.setWordWrap(True)
        self.clear_groups_button = QPushButton("Clear groups")
        self.clear_groups_button.setToolTip("Empty group A and group B")
        find = QGroupBox("Find")
        form = QGridLayout(find)
        form.addWidget(QLabel("method"), 0, 0)
        form.addWidget(self.method_combo, 0, 1, 1, 3)
        form.addWidget(QLabel("directions"), 1, 0)
        form.addWidget(self.k_spin, 1, 1)
        form.addWidget(QLabel("latents"), 1, 2)
        form.addWidget(self.n_spin, 1, 3)
        self.factor_label = QLabel("factor")
        form.addWidget(self.factor_label, 2, 0)
        form.addWidget(self.factor_combo, 2, 1)
        form.addWidget(self.estimator_combo, 2, 2, 1, 2)
        self.class_label = QLabel("from / to")
        form.addWidget(self.class_label, 3, 0)
        form.addWidget(self.from_combo, 3, 1)
        form.addWidget(self.to_combo, 3, 2)
        form.addWidget(self.groups_label, 4, 0, 1, 3)
        form.addWidget(self.clear_groups_button, 4, 3)
        form.addWidget(self.find_button, 5, 0, 1, 4)
        form.addWidget(self.job, 6, 0, 1, 4)
        form.addWidget(self.source, 7, 0, 1, 4)

        # sliders
        self.slider_box = QGroupBox("Move the Explore point along them")
        self.slider_grid = QGridLayout(self.slider_box)
        self.moved = QLabel("the point itself")
        self.moved.setWordWrap(True)
        buttons = QHBoxLayout()
        self.reset_button = QPushButton("Reset")
        self.save_button = QPushButton("Save...")
        self.load_button = QPushButton("Load...")
        self.export_png_button = QPushButton("Traversal PNG...")
        self.export_gif_button = QPushButton("Traversal GIF...")
        exports = QHBoxLayout()
        for b in (self.reset_button, self.save_button, self.load_button):
            buttons.addWidget(b)
        for b in (self.export_png_button, self.export_gif_button):
            exports.addWidget(b)
        self.save_button.setToolTip("Save the directions as JSON (directions.json beside the checkpoint)")
        self.export_png_button.setToolTip("A traversal along each direction from the moved point, with a sidecar "
                                          "that latent-studio render re-renders")

        # local
        local = QGroupBox("Local directions around the point")
        self.local_k = QSpinBox()
        self.local_k.setRange(1, 8)
        self.local_k.setValue(3)
        self.follow = QCheckBox("follow the point")
        self.follow.setToolTip("Find them again (PCA of the point's neighbourhood) whenever the Explore point moves")
        self.local_button = QPushButton("Find local")
        self.local_view = ImageView(f"rows: local PCs, columns {-LOCAL_SPAN:+.0f} ... {LOCAL_SPAN:+.0f} sigma")
        lrow = QHBoxLayout()
        lrow.addWidget(QLabel("directions"))
        lrow.addWidget(self.local_k)
        lrow.addWidget(self.follow)
        lrow.addWidget(self.local_button)
        lrow.addStretch(1)
        lcol = QVBoxLayout(local)
        lcol.addLayout(lrow)
        lcol.addWidget(self.local_view)

        # arithmetic
        arith = QGroupBox("Arithmetic: a - b + c")
        agrid = QGridLayout(arith)
        self.slot_views: dict[str, ImageView] = {}
        self.slot_spins: dict[str, QSpinBox] = {}
        for col, slot in enumerate(SLOTS):
            view = ImageView(slot)
            point = QPushButton(f"{slot} = point")
            point.setToolTip(f"{slot}: the current Explore point")
            spin = QSpinBox()
            spin.setToolTip(f"{slot}: a held-out example (or use the data set browser's buttons)")
            example = QPushButton("held-out")
            example.setToolTip(f"{slot}: the held-out example numbered on the left, encoded")
            point.clicked.connect(lambda _=False, s=slot: self.slot_from_point.emit(s))
            example.clicked.connect(lambda _=False, s=slot, sp=spin: self.slot_from_example.emit(s, sp.value()))
            agrid.addWidget(view, 0, col)
            agrid.addWidget(point, 1, col)
            row = QHBoxLayout()
            row.addWidget(spin, 1)
            row.addWidget(example)
            agrid.addLayout(row, 2, col)
            self.slot_views[slot], self.slot_spins[slot] = view, spin
        self.result_view = ImageView("a - b + c")
        self.go_button = QPushButton("Go to a - b + c")
        self.go_button.setEnabled(False)
        agrid.addWidget(self.result_view, 0, 3)
        agrid.addWidget(self.go_button, 1, 3)

        moving = QWidget()
        right = QVBoxLayout(moving)
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self.slider_box)
        right.addWidget(self.moved)
        right.addLayout(buttons)
        right.addLayout(exports)
        right.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        self.columns = TwoColumns([find, moving, local, arith])
        layout.addWidget(self.columns)
        layout.addStretch(1)

        self.method_combo.currentIndexChanged.connect(self._method_changed)
        self.find_button.clicked.connect(self._find)
        self.reset_button.clicked.connect(self._reset)
        self.save_button.clicked.connect(self.save_requested)
        self.load_button.clicked.connect(self.load_requested)
        self.export_png_button.clicked.connect(lambda: self.export_requested.emit("png"))
        self.export_gif_button.clicked.connect(lambda: self.export_requested.emit("gif"))
        self.local_button.clicked.connect(self.local_requested)
        self.go_button.clicked.connect(self.arithmetic_requested)
        self.clear_groups_button.clicked.connect(self.clear_groups_requested)
        self.set_enabled("Build or open a model with a latent to find directions in it", 0, (), (), False)
        self.set_directions([])

    # -- state shown -------------------------------------------------------------------------------
    def set_enabled(self, reason: str, n_test: int, class_names: tuple[str, ...], factor_names: tuple[str, ...],
                    has_encoder: bool) -> None:
        """Turn the tab on ("" reason) or off; fill the factor and class pickers."""
        on = not reason
        self.note.setText(reason)
        self.note.setVisible(bool(reason))
        self.has_encoder = has_encoder
        for w in (self.find_button, self.local_button, self.method_combo, self.follow):
            w.setEnabled(on)
        model = self.method_combo.model()
        for i in range(self.method_combo.count()):  # groups and factors come from encoded images; classes
            key = self.method_combo.itemData(i)      # also from draws, as the studio's classifier sees them
            usable = has_encoder or key in ("pca", "ica") or (key in ("attribute", "class") and bool(class_names))
            model.item(i).setEnabled(on and usable)
            model.item(i).setToolTip("" if usable else "needs an encoder (or, for classes, labelled images)")
        if not model.item(self.method_combo.currentIndex()).isEnabled():
            self.method_combo.setCurrentIndex(0)
        self.factor_combo.clear()
        for f in factor_names if has_encoder else ():
            self.factor_combo.addItem(f, f)
        if class_names:
            self.factor_combo.addItem("class (to: below)", "class")
        for combo in (self.from_combo, self.to_combo):
            combo.clear()
            for i, name in enumerate(class_names):
                combo.addItem(name, i)
        if len(class_names) > 1:
            self.to_combo.setCurrentIndex(1)
        for spin in self.slot_spins.values():
            spin.setRange(0, max(0, n_test - 1))
        self._method_changed()

    def _method_changed(self) -> None:
        m = self.method_combo.currentData()
        self.k_spin.setEnabled(m in ("pca", "ica"))
        for w in (self.factor_label, self.factor_combo):
            w.setVisible(m == "attribute")
        self.estimator_combo.setVisible(m in ("attribute", "groups", "class"))
        for w in (self.class_label, self.from_combo, self.to_combo):
            w.setVisible(m == "class" or (m == "attribute" and self.factor_combo.currentData() == "class"))
        self.groups_label.setVisible(m == "groups")
        self.clear_groups_button.setVisible(m == "groups")

    def request(self) -> dict:
        """The request the controls describe."""
        return {"method": self.method_combo.currentData(), "k": self.k_spin.value(), "n": self.n_spin.value(),
                "factor": self.factor_combo.currentData() or "", "estimator": self.estimator_combo.currentData(),
                "from_class": self.from_combo.currentData() or 0, "to_class": self.to_combo.currentData() or 0}

    def _find(self) -> None:
        self.find_requested.emit(self.request())

    def set_directions(self, names: list[str]) -> None:
        """One slider per direction (range +-SIGMAS standard deviations), all at 0."""
        for w in self.sliders + self.slider_labels:
            w.setParent(None)
        self.sliders, self.slider_labels, self.names = [], [], list(names)
        for i, name in enumerate(names):
            label = QLabel(f"{name}: 0.0")
            label.setToolTip(name)
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(-int(SIGMAS * NOTCHES), int(SIGMAS * NOTCHES))
            slider.valueChanged.connect(lambda v, i=i, lab=label: self._slid(i, v, lab))
            self.slider_grid.addWidget(label, i, 0)
            self.slider_grid.addWidget(slider, i, 1)
            self.sliders.append(slider)
            self.slider_labels.append(label)
        for b in (self.reset_button, self.save_button, self.export_png_button, self.export_gif_button):
            b.setEnabled(bool(names))
        if not names:
            empty = QLabel("no directions yet: press Find directions, or Load...")
            self.slider_grid.addWidget(empty, 0, 0)
            self.slider_labels.append(empty)

    def _slid(self, i: int, notch: int, label: QLabel) -> None:
        value = notch / NOTCHES
        label.setText(f"{self.names[i]}: {value:+.1f}")
        self.coefficient_changed.emit(i, value)

    def zero_sliders(self) -> None:
        """Every direction slider back to 0, without emitting."""
        for s in self.sliders:
            s.blockSignals(True)
            s.setValue(0)
            s.blockSignals(False)
        for lab, name in zip(self.slider_labels, self.names):
            lab.setText(f"{name}: 0.0")
        self.moved.setText("the point itself")

    def _reset(self) -> None:
        self.zero_sliders()
        self.reset_requested.emit()

    def set_local(self, images: np.ndarray, names: list[str]) -> None:
        """The local grid: (k * LOCAL_COLUMNS, C, H, W), one row per local direction."""
        self.local_view.set_image(grid(np.asarray(images, np.float32), ncols=LOCAL_COLUMNS))
        self.local_view.set_title(", ".join(names) + f"; columns {-LOCAL_SPAN:+.0f} ... {LOCAL_SPAN:+.0f} sigma")

    def set_slot(self, slot: str, image: np.ndarray | None, label: str) -> None:
        """Show arithmetic slot ``slot``'s image (C, H, W) and label."""
        view = self.result_view if slot == "result" else self.slot_views[slot]
        if image is not None:
            view.set_image(np.asarray(image, np.float32))
        view.set_title(label)
