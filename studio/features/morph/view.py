"""The Morph view: image A, image B, one checkbox and strength slider per latent dimension, the result, a style grid.

The maths and the worker round trips live in :mod:`studio.features.morph`; this widget only shows and
collects. A continuous dimension is one row labelled like the Explore sliders (``"z3: x"`` once the
disentanglement metrics name the factor it captures); a categorical code (a cGAN's class, an
InfoGAN code) is one row for its whole one-hot block, so taking it from B changes the class and
keeps the rest of z.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox, QGridLayout, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSizePolicy, QVBoxLayout, QWidget,
)
from superqt import QLabeledDoubleSlider

from engines.shared.spec import LatentSpec
from studio.widgets.basic import JobProgress, to_pixmap

#: Side of the A, B and result pictures, px.
PICTURE = 132


class FitLabel(QLabel):
    """A label that shows one (C, H, W) picture as large as it fits, keeping its aspect (nearest upscaling)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.picture: np.ndarray | None = None
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)

    def set_picture(self, picture: np.ndarray | None) -> None:
        """Show ``picture`` (C, H, W) in [0, 1], or nothing for None."""
        self.picture = None if picture is None else np.asarray(picture, np.float32)
        self._fit()

    def resizeEvent(self, event) -> None:  # noqa: N802, ANN001 - Qt override
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if self.picture is None:
            self.clear()
            return
        h, w = self.picture.shape[-2:]
        scale = max(1.0, min((self.width() - 4) / w, (self.height() - 4) / h))
        self.setPixmap(to_pixmap(self.picture, int(max(h, w) * scale)))


class MorphRow(QWidget):
    """One row: a checkbox "take from B" named after the dimension (or code) and a strength slider in [0, 1]."""

    changed = Signal()

    def __init__(self, name: str, indices: list[int], categorical: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name, self.indices, self.categorical = name, list(indices), categorical
        self.check = QCheckBox(name)
        self.check.setMinimumWidth(150)
        self.check.setToolTip(f"Take {'the code ' + repr(name) if categorical else name} from image B")
        self.slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.slider.setDecimals(2)
        self.slider.setRange(0.0, 1.0)
        self.slider.setSingleStep(0.05)
        self.slider.setValue(1.0)
        self.slider.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.slider.setToolTip("Strength: 0 keeps A, 1 takes B")
        self.block = QLabel("")
        self.block.setStyleSheet("color: #a0a0a0")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.check)
        layout.addWidget(self.slider, 1)
        if categorical:
            layout.addWidget(self.block)
        self.check.toggled.connect(lambda _on: self._changed())
        self.slider.valueChanged.connect(lambda _v: self._changed())
        self._changed(emit=False)

    def _changed(self, emit: bool = True) -> None:
        self.slider.setEnabled(self.check.isChecked())
        if emit:
            self.changed.emit()

    def strength(self) -> float:
        """Checkbox (0 or 1) times slider value, in [0, 1]."""
        return float(self.slider.value()) if self.check.isChecked() else 0.0

    def set_factor(self, factor: str | None) -> None:
        """Label the row ``"z3: x"`` when the dimension captures a known factor, else ``"z3"``."""
        self.check.setText(self.name if factor is None else f"{self.name}: {factor}")


class MorphView(QWidget):
    """Image A, image B and the morph result, the per-dimension rows, the style grid and export buttons.

    Signals
    -------
    changed()
        A checkbox or strength slider moved (also after all/none).
    swap_requested()
        "Swap A and B".
    set_requested(str, str)
        (slot "A"|"B", source "sliders"|"random").
    grid_requested(str)
        "row" (add A as a content row), "col" (add B as a style column) or "clear".
    export_requested(str)
        "result" or "grid".
    """

    changed = Signal()
    swap_requested = Signal()
    set_requested = Signal(str, str)
    grid_requested = Signal(str)
    export_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = LatentSpec(())
        self.rows: list[MorphRow] = []
        self._result: np.ndarray | None = None
        self._grid: np.ndarray | None = None
        self.pictures: dict[str, QLabel] = {}
        self._inputs = {"A": False, "B": False}
        self.captions: dict[str, QLabel] = {}
        pics = QGridLayout()
        for col, key in enumerate(("A", "B", "result")):
            pic = QLabel()
            pic.setFixedSize(PICTURE, PICTURE)
            pic.setAlignment(Qt.AlignmentFlag.AlignCenter)
            pic.setStyleSheet("background: #101010; border: 1px solid #404040")
            cap = QLabel("not set" if key != "result" else "")
            cap.setAlignment(Qt.AlignmentFlag.AlignCenter)
            cap.setWordWrap(True)
            title = QLabel(f"<b>{'Image ' + key if key != 'result' else 'Result'}</b>")
            title.setAlignment(Qt.AlignmentFlag.AlignCenter)
            pics.addWidget(title, 0, col)
            pics.addWidget(pic, 1, col)
            pics.addWidget(cap, 2, col)
            self.pictures[key], self.captions[key] = pic, cap
        self.slot_buttons: dict[tuple[str, str], QPushButton] = {}
        for col, slot in enumerate(("A", "B")):
            row = QHBoxLayout()
            for source, text in (("sliders", "sliders"), ("random", "random")):
                b = QPushButton(text)
                b.setToolTip(f"Set image {slot} from the {'Explore sliders' if source == 'sliders' else 'prior'}")
                b.clicked.connect(lambda _c=False, s=slot, src=source: self.set_requested.emit(s, src))
                row.addWidget(b)
                self.slot_buttons[(slot, source)] = b
            pics.addLayout(row, 3, col)
        self.swap_button = QPushButton("Swap A \u2194 B")
        pics.addWidget(self.swap_button, 3, 2)
        self.hint = QLabel("Pick A and B in the Data set browser (right-click a thumbnail), "
                           "or from the sliders or the prior.")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #a0a0a0")

        self.all_button = QPushButton("All")
        self.none_button = QPushButton("None")
        head = QHBoxLayout()
        head.addWidget(QLabel("Take from B (strength 0 = A, 1 = B):"), 1)
        head.addWidget(self.all_button)
        head.addWidget(self.none_button)
        self.rows_widget = QWidget()
        self.rows_layout = QVBoxLayout(self.rows_widget)
        self.rows_layout.setContentsMargins(0, 0, 0, 0)
        self.rows_layout.setSpacing(2)
        self.rows_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.rows_widget)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.result_export = QPushButton("Export result PNG...")
        self.gif_export = QPushButton("Export GIF...")
        self.mp4_export = QPushButton("Export MP4...")
        for b in (self.gif_export, self.mp4_export):
            b.setToolTip("An animation from image A to the result: the strengths ramp from 0 to the values shown")
        self.job = JobProgress()
        exports = QHBoxLayout()
        for b in (self.result_export, self.gif_export, self.mp4_export):
            exports.addWidget(b)
        left = QVBoxLayout()
        left.addLayout(pics)
        left.addWidget(self.hint)
        left.addLayout(head)
        left.addWidget(scroll, 1)
        left.addLayout(exports)
        left.addWidget(self.job)

        self.grid_label = FitLabel()
        self.grid_label.setMinimumSize(200, 200)
        self.grid_label.setStyleSheet("background: #101010")
        self.grid_caption = QLabel("Style grid: rows keep their content (A, extra rows), columns give the checked "
                                   "dimensions (B, extra columns).")
        self.grid_caption.setWordWrap(True)
        self.row_button = QPushButton("Add A as a row")
        self.col_button = QPushButton("Add B as a column")
        self.clear_button = QPushButton("Clear grid")
        self.grid_export = QPushButton("Export grid PNG...")
        gb = QGridLayout()  # one under another, so the tab fits a laptop beside the docks
        self.grid_buttons = gb
        for i, b in enumerate((self.row_button, self.col_button, self.clear_button, self.grid_export)):
            gb.addWidget(b, i, 0)
        right = QVBoxLayout()
        right.addWidget(self.grid_caption)
        right.addWidget(self.grid_label, 1)
        right.addLayout(gb)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 3)
        layout.addLayout(right, 2)

        self.swap_button.clicked.connect(self.swap_requested)
        self.all_button.clicked.connect(lambda: self.set_all(True))
        self.none_button.clicked.connect(lambda: self.set_all(False))
        self.row_button.clicked.connect(lambda: self.grid_requested.emit("row"))
        self.col_button.clicked.connect(lambda: self.grid_requested.emit("col"))
        self.clear_button.clicked.connect(lambda: self.grid_requested.emit("clear"))
        self.result_export.clicked.connect(lambda: self.export_requested.emit("result"))
        self.grid_export.clicked.connect(lambda: self.export_requested.emit("grid"))
        self.gif_export.clicked.connect(lambda: self.export_requested.emit("gif"))
        self.mp4_export.clicked.connect(lambda: self.export_requested.emit("mp4"))

    # -- model -----------------------------------------------------------------------------------
    def set_latent(self, spec: LatentSpec) -> None:
        """One :class:`MorphRow` per group of ``spec`` (:meth:`LatentSpec.groups`: a dimension, or a
        categorical code's whole one-hot block); kept if the spec is unchanged."""
        if spec == self.spec and self.rows:
            return
        for row in self.rows:
            self.rows_layout.removeWidget(row)
            row.deleteLater()
        self.spec = spec
        self.rows = []
        for kind, name, idx in spec.groups():
            row = MorphRow(name, idx, kind == "categorical")
            row.changed.connect(self.changed)
            self.rows_layout.insertWidget(len(self.rows), row)
            self.rows.append(row)
        self._result = self._grid = None
        for key in ("A", "B", "result"):
            self.pictures[key].clear()
        self.grid_label.set_picture(None)

    def set_points(self, points: bool) -> None:
        """2-D point data: no style grid (the result shows A, B and the morph as points)."""
        for w in (self.grid_label, self.row_button, self.col_button, self.clear_button, self.grid_export):
            w.setEnabled(not points)
        self.grid_caption.setText("2-D points: no style grid; the result shows A, B and the morph as points."
                                  if points else "Style grid: rows keep their content (A, extra rows), columns "
                                  "give the checked dimensions (B, extra columns).")

    def set_factors(self, factors: list[str | None]) -> None:
        """Label each single-dimension row by the factor (one entry per latent dimension) it captures."""
        for row in self.rows:
            if not row.categorical and row.indices[0] < len(factors):
                row.set_factor(factors[row.indices[0]])

    def set_block_text(self, name: str, text: str) -> None:
        """The text beside categorical block ``name`` (which value A and B hold)."""
        for row in self.rows:
            if row.name == name and row.categorical:
                row.block.setText(text)

    def row(self, name: str) -> MorphRow:
        """The row named ``name`` ("z3", "class"); KeyError if there is none."""
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    # -- controls --------------------------------------------------------------------------------
    def strengths(self) -> np.ndarray:
        """(D,) float32 in [0, 1]: each row's strength on each of its dimensions."""
        s = np.zeros(self.spec.dim, np.float32)
        for row in self.rows:
            s[row.indices] = row.strength()
        return s

    def set_all(self, on: bool) -> None:
        """Check (or uncheck) every row; emits ``changed`` once."""
        for row in self.rows:
            row.check.blockSignals(True)
            row.check.setChecked(bool(on))
            row.check.blockSignals(False)
            row._changed(emit=False)
        self.changed.emit()

    # -- pictures --------------------------------------------------------------------------------
    def set_slot(self, slot: str, label: str, image: np.ndarray | None) -> None:
        """Caption (and, when it came from an image, the picture) of image A or B."""
        self.captions[slot].setText(label)
        self._inputs[slot] = image is not None
        if image is not None:
            self.pictures[slot].setPixmap(to_pixmap(image, PICTURE - 4))
        else:
            self.pictures[slot].clear()  # until the decode of its latent arrives

    def set_result_z(self, z: np.ndarray) -> None:
        """Show the morphed latent's first values under the result."""
        vals = ", ".join(f"{v:+.2f}" for v in np.asarray(z)[:4])
        self.captions["result"].setText(f"z = [{vals}{', ...' if len(z) > 4 else ''}]")

    def set_result(self, result: np.ndarray, a: np.ndarray | None = None, b: np.ndarray | None = None) -> None:
        """Show the decoded result (C, H, W) in [0, 1]; ``a`` and ``b`` (decodes of A and B) show where A or B
        has no input image of its own."""
        self._result = np.asarray(result, np.float32)
        self.pictures["result"].setPixmap(to_pixmap(self._result, PICTURE - 4))
        for key, img in (("A", a), ("B", b)):
            if img is not None and not self._inputs[key]:
                self.pictures[key].setPixmap(to_pixmap(img, PICTURE - 4))

    def set_grid(self, picture: np.ndarray, rows: int, cols: int) -> None:
        """Show the style grid picture (C, H, W) of ``rows`` contents by ``cols`` styles."""
        self._grid = np.asarray(picture, np.float32)
        self.grid_label.set_picture(self._grid)
        self.grid_label.setToolTip(f"{rows} content row(s) x {cols} style column(s)")

    def result_picture(self) -> np.ndarray | None:
        """The result shown, (C, H, W) float32 in [0, 1], or None."""
        return self._result

    def grid_picture(self) -> np.ndarray | None:
        """The style grid shown, (C, H', W') float32 in [0, 1], or None."""
        return self._grid
