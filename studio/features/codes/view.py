"""The Codes tab: a VQ-VAE's codebook usage (dead codes flagged), two encoded images' code grids where a click
paints one position's code and a dragged region swaps between them, and a categorical VAE's gradient estimators'
variance on one plot."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QCheckBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QTableWidget, QTableWidgetItem,
    QVBoxLayout, QWidget,
)

from studio.features.codes.state import VarianceHistory
from studio.widgets.basic import BACKGROUND, ImageView, off_note

#: Colours of the estimators' variance curves.
ESTIMATOR_PENS = {"gumbel": (90, 160, 240), "st-gumbel": (120, 200, 120), "reinforce": (240, 110, 90),
                  "nvil": (240, 190, 70)}


class CodeGrid(QTableWidget):
    """A G x G grid of code indices, each cell coloured by its code. A click on a cell emits ``clicked_cell``;
    a drag selects a rectangle (:meth:`selected_cells`)."""

    clicked_cell = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.horizontalHeader().setVisible(False)
        self.verticalHeader().setVisible(False)
        self.setSelectionMode(QTableWidget.SelectionMode.ContiguousSelection)
        self.cellClicked.connect(self.clicked_cell)
        self._k = 1

    def set_codes(self, codes: np.ndarray, k: int) -> None:
        """Show a grid (G, G) of codes in [0, k)."""
        self._k = max(1, int(k))
        g = codes.shape[0]
        if self.rowCount() != g:
            self.setRowCount(g)
            self.setColumnCount(g)
            for i in range(g):
                self.setRowHeight(i, 24)
                self.setColumnWidth(i, 30)
            self.setFixedSize(30 * g + 4, 24 * g + 4)
        for r in range(g):
            for c in range(g):
                code = int(codes[r, c])
                item = self.item(r, c)
                if item is None:
                    item = QTableWidgetItem()
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                    self.setItem(r, c, item)
                item.setText(str(code))
                hue = int(360 * code / self._k) % 360
                item.setBackground(QBrush(QColor.fromHsv(hue, 90, 235)))
                item.setForeground(QBrush(QColor(20, 20, 20)))

    def codes(self) -> np.ndarray | None:
        """The grid on screen (G, G) int64, or None when empty."""
        g = self.rowCount()
        if not g or self.item(0, 0) is None:
            return None
        return np.array([[int(self.item(r, c).text()) for c in range(g)] for r in range(g)], np.int64)

    def selected_cells(self) -> list[tuple[int, int]]:
        """(row, col) of every selected cell, in reading order."""
        return sorted({(i.row(), i.column()) for i in self.selectedIndexes()})


class CodesView(QWidget):
    """Codebook usage, code grids A and B, the estimators' variance.

    Signals
    -------
    usage_requested()
    encode_requested(str slot, int index)
        Encode held-out example ``index`` into slot "A" or "B".
    paint_requested(str slot, int row, int col)
        Set that position of the slot's grid to the code in the Paint spin box.
    swap_requested()
        Swap the region selected in A (the same positions in B).
    """

    usage_requested = Signal()
    encode_requested = Signal(str, int)
    paint_requested = Signal(str, int, int)
    swap_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.note = off_note("")
        # codebook usage
        self.usage_plot = pg.PlotWidget(background=BACKGROUND)
        self.usage_plot.setLabel("bottom", "code")
        self.usage_plot.setLabel("left", "share of grid positions")
        self.usage_plot.setTitle("Usage (red: dead codes)")
        self.usage_bars: pg.BarGraphItem | None = None
        self.usage_label = QLabel("")
        self.usage_label.setWordWrap(True)
        self.refresh_button = QPushButton("Refresh usage")
        self.refresh_button.setToolTip("Encode the held-out images by the latest weights and count each code's share")
        self.live_check = QCheckBox("Live")
        self.live_check.setChecked(True)
        self.live_check.setToolTip("Refresh the usage every two seconds while the tab is shown")
        usage_box = QGroupBox("Codebook")
        ub = QVBoxLayout(usage_box)
        row = QHBoxLayout()
        row.addWidget(self.refresh_button)
        row.addWidget(self.live_check)
        row.addStretch(1)
        ub.addLayout(row)
        ub.addWidget(self.usage_plot, 1)
        ub.addWidget(self.usage_label)
        # code grids
        self.index_spins, self.encode_buttons, self.grids, self.images = {}, {}, {}, {}
        grids_box = QGroupBox("Code grids: a click paints the code below, a drag in A selects a region to swap")
        gl = QGridLayout(grids_box)
        for col, slot in enumerate(("A", "B")):
            spin = QSpinBox()
            spin.setToolTip(f"A held-out example to encode into {slot}")
            button = QPushButton(f"Encode {slot}")
            button.setToolTip(f"Encode the held-out example into {slot}: its code grid, and the image decoded from it")
            grid = CodeGrid()
            grid.setToolTip("Each position's code; click to paint it with the code below")
            image = ImageView(f"{slot}: not encoded yet")
            self.index_spins[slot], self.encode_buttons[slot], self.grids[slot], self.images[slot] = (
                spin, button, grid, image)
            head = QHBoxLayout()
            head.addWidget(QLabel(f"{slot}: held-out"))
            head.addWidget(spin)
            head.addWidget(button)
            head.addStretch(1)
            gl.addLayout(head, 0, col)
            gl.addWidget(grid, 1, col, Qt.AlignmentFlag.AlignCenter)
            gl.addWidget(image, 2, col)
            button.clicked.connect(lambda _=False, s=slot: self.encode_requested.emit(s, self.index_spins[s].value()))
            grid.clicked_cell.connect(lambda r, c, s=slot: self.paint_requested.emit(s, r, c))
        self.paint_spin = QSpinBox()
        self.paint_spin.setToolTip("The code a click paints")
        self.swap_button = QPushButton("Swap region A <-> B")
        self.swap_button.setToolTip("Exchange the codes of the region dragged out in A with the same positions of B")
        tools = QHBoxLayout()
        tools.addWidget(QLabel("Paint code"))
        tools.addWidget(self.paint_spin)
        tools.addWidget(self.swap_button)
        tools.addStretch(1)
        gl.addLayout(tools, 3, 0, 1, 2)
        gl.setRowStretch(2, 1)
        # gradient variance
        self.variance_plot = pg.PlotWidget(background=BACKGROUND)
        self.variance_plot.setLogMode(y=True)
        self.variance_plot.setLabel("bottom", "step")
        self.variance_plot.setLabel("left", "gradient variance per logit (log scale)")
        self.variance_plot.setTitle("Variance on a fixed batch")
        self.variance_plot.addLegend(offset=(5, 5))
        self.variance_curves: dict[str, pg.PlotDataItem] = {}
        self.variance_label = QLabel("")
        self.variance_label.setWordWrap(True)
        self.history = VarianceHistory()
        self.variance_box = QGroupBox("Gradient estimators")
        vb = QVBoxLayout(self.variance_box)
        vb.addWidget(self.variance_plot, 1)
        vb.addWidget(self.variance_label)
        self.codebook_box, self.grids_box = usage_box, grids_box

        right = QVBoxLayout()
        right.addWidget(usage_box, 1)
        right.addWidget(self.variance_box, 1)
        body = QHBoxLayout()
        body.addWidget(grids_box, 3)
        body.addLayout(right, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addLayout(body, 1)
        self.refresh_button.clicked.connect(self.usage_requested)
        self.swap_button.clicked.connect(self.swap_requested)
        self.set_enabled("Build a model first", codebook=False, n_test=0, k=1)

    def set_enabled(self, reason: str, codebook: bool, n_test: int, k: int) -> None:
        """Enable the tab (``reason`` "") or say why it is off; ``codebook``: the usage and grids apply (vq-vae);
        ``k`` codes in the book."""
        on = not reason
        self.note.setText(reason)
        self.note.setVisible(bool(reason))
        self.codebook_box.setEnabled(on and codebook)
        self.grids_box.setEnabled(on and codebook)
        self.codebook_box.setVisible(codebook or not on)
        self.grids_box.setVisible(codebook or not on)
        self.variance_box.setVisible(not codebook)  # a VQ-VAE has no gradient estimator to compare
        for slot in ("A", "B"):
            self.index_spins[slot].setRange(0, max(0, n_test - 1))
            self.index_spins[slot].setValue(0 if slot == "A" else min(1, max(0, n_test - 1)))
            self.grids[slot].setRowCount(0)
            self.grids[slot].setColumnCount(0)
            self.images[slot].clear()
            self.images[slot].set_title(f"{slot}: not encoded yet")
        self.paint_spin.setRange(0, max(0, k - 1))
        if self.usage_bars is not None:
            self.usage_plot.removeItem(self.usage_bars)
            self.usage_bars = None
        self.usage_label.setText("")
        self.history.clear()
        for curve in self.variance_curves.values():
            self.variance_plot.removeItem(curve)
        self.variance_curves.clear()
        legend = self.variance_plot.plotItem.legend
        if legend is not None:
            legend.clear()
        self.variance_label.setText("The categorical VAE measures its estimators' variance every 50 steps")

    def show_usage(self, usage: np.ndarray, dead: np.ndarray, text: str) -> None:
        """Bars of each code's share, dead ones red."""
        if self.usage_bars is not None:
            self.usage_plot.removeItem(self.usage_bars)
        dead = np.asarray(dead, bool)
        brushes = [pg.mkBrush(230, 80, 70) if d else pg.mkBrush(90, 160, 240) for d in dead]
        heights = np.asarray(usage, float)
        heights = np.where(dead, 0.04 * max(float(heights.max(initial=0.0)), 1e-6), heights)  # a red stub: unused
        self.usage_bars = pg.BarGraphItem(x=np.arange(len(usage)), height=heights, width=0.8, brushes=brushes)
        self.usage_plot.addItem(self.usage_bars)
        self.usage_label.setText(text)

    def show_variance(self) -> None:
        """Redraw one curve per estimator from :attr:`history`."""
        for est, steps in self.history.steps.items():
            curve = self.variance_curves.get(est)
            if curve is None:
                pen = pg.mkPen(ESTIMATOR_PENS.get(est, (200, 200, 200)), width=2)
                curve = self.variance_plot.plot([], [], pen=pen, name=est)
                self.variance_curves[est] = curve
            curve.setData(steps, self.history.values[est])
        self.variance_label.setText(self.history.summary())
