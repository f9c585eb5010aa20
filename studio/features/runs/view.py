"""The Runs dock: every run in the studio's home, and the ones picked side by side.

Left, the list of runs (sortable; pick several with Ctrl or Shift). Middle, the chosen loss term of
every comparable run on shared axes. Right, their fixed-z samples side by side above the table of
their final metrics (sortable; the best comparable value of each metric in bold). Export CSV and
Export PNG save the table and the comparison.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QPushButton, QSplitter, QTableWidget,
    QTableWidgetItem, QVBoxLayout, QWidget,
)

from engines.shared.runs import RunRecord
from studio.features.runs.state import Comparison, run_summary, when
from studio.widgets.basic import BACKGROUND, PALETTE, ImageView

#: Sample pictures shown side by side at most.
MAX_SAMPLES = 6


class _Number(QTableWidgetItem):
    """A table cell that sorts by its number (empty cells last)."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        def key(item: QTableWidgetItem) -> float:
            try:
                return float(item.text())
            except ValueError:
                return float("inf")

        return key(self) < key(other)


class RunsPanel(QWidget):
    """The runs list and the comparison of the picked runs.

    Signals
    -------
    refresh_requested()
    add_folder_requested()
    selection_changed()
        The picked runs changed (read :meth:`picked`).
    export_requested(str)
        "csv" or "png".
    """

    refresh_requested = Signal()
    add_folder_requested = Signal()
    selection_changed = Signal()
    export_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.records: list[RunRecord] = []
        self.comparison = Comparison([])
        self.list = QTableWidget(0, 6)
        self.list.setHorizontalHeaderLabels(["run", "model", "data", "steps", "saved", "latest"])
        self.list.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.verticalHeader().setVisible(False)
        self.list.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.list.horizontalHeader().setStretchLastSection(True)
        self.list.setSortingEnabled(True)
        self.list.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self._user_sorted = False
        self.list.horizontalHeader().sectionClicked.connect(lambda _c: setattr(self, "_user_sorted", True))
        self.list.setMinimumWidth(220)
        self.list.itemSelectionChanged.connect(self.selection_changed)
        self.refresh_button = QPushButton("Refresh")
        self.add_button = QPushButton("Add folder...")
        self.status = QLabel("")
        self.status.setStyleSheet("color: #a0a0a0")
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(self.refresh_button)
        row.addWidget(self.add_button)
        row.addStretch(1)
        lv.addLayout(row)
        lv.addWidget(self.list, 1)
        lv.addWidget(self.status)

        self.term_combo = QComboBox()
        self.term_combo.setMinimumContentsLength(10)
        self.term_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.term_combo.currentIndexChanged.connect(lambda _i: self._draw_curves())
        self.plot = pg.PlotWidget(background=BACKGROUND)
        self.plot.setMinimumSize(200, 120)
        self.plot.setLabel("bottom", "step")
        self.legend = self.plot.addLegend(offset=(5, 5))
        middle = QWidget()
        mv = QVBoxLayout(middle)
        mv.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Term"))
        row.addWidget(self.term_combo, 1)
        mv.addLayout(row)
        mv.addWidget(self.plot, 1)

        self.samples_row = QHBoxLayout()
        self.sample_views: list[ImageView] = []
        self.table = QTableWidget(0, 0)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setSortingEnabled(True)
        self.table.setMinimumWidth(200)
        self.csv_button = QPushButton("Export CSV...")
        self.png_button = QPushButton("Export PNG...")
        for b in (self.csv_button, self.png_button):
            b.setEnabled(False)
        self.note = QLabel("Pick runs on the left (Ctrl or Shift for several) to compare them.")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #a0a0a0")
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.note)
        rv.addLayout(self.samples_row, 2)
        rv.addWidget(self.table, 3)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.csv_button)
        row.addWidget(self.png_button)
        rv.addLayout(row)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        for w in (left, middle, right):
            self.splitter.addWidget(w)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setStretchFactor(2, 4)
        self.splitter.setSizes([260, 380, 500])
        right.setMinimumWidth(300)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.splitter)
        self.refresh_button.clicked.connect(self.refresh_requested)
        self.add_button.clicked.connect(self.add_folder_requested)
        self.csv_button.clicked.connect(lambda: self.export_requested.emit("csv"))
        self.png_button.clicked.connect(lambda: self.export_requested.emit("png"))

    # -- the list ----------------------------------------------------------------------------------
    def set_runs(self, records: list[RunRecord]) -> None:
        """List ``records`` (newest first), keeping the runs picked before where they are still there."""
        keep = {r.path for r in self.picked()}
        self.records = list(records)
        self.list.blockSignals(True)
        self.list.setSortingEnabled(False)
        header = self.list.horizontalHeader()
        if header.sortIndicatorSection() >= self.list.columnCount() or not self._user_sorted:
            header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # newest first until a header is clicked
        self.list.setRowCount(len(records))
        for i, rec in enumerate(records):
            cells = [QTableWidgetItem(rec.name), QTableWidgetItem(rec.engine),
                     QTableWidgetItem(rec.data_spec), _Number(str(rec.step)), QTableWidgetItem(when(rec)),
                     QTableWidgetItem(run_summary(rec))]
            cells[0].setData(Qt.ItemDataRole.UserRole, i)
            cells[0].setToolTip(f"{rec.path}\nlast saved {when(rec)}" + "".join(f"\n{p}" for p in rec.problems))
            for col, item in enumerate(cells):
                self.list.setItem(i, col, item)
        self.list.setSortingEnabled(True)
        for row in range(self.list.rowCount()):
            if self._record_at(row).path in keep:
                self._add_row(row)
        self.list.blockSignals(False)
        self.status.setText(f"{len(records)} run{'s' * (len(records) != 1)}")
        self.selection_changed.emit()

    def _add_row(self, row: int) -> None:
        model = self.list.selectionModel()
        model.select(self.list.model().index(row, 0),
                     model.SelectionFlag.Select | model.SelectionFlag.Rows)

    def _record_at(self, row: int) -> RunRecord:
        return self.records[int(self.list.item(row, 0).data(Qt.ItemDataRole.UserRole))]

    def picked(self) -> list[RunRecord]:
        """The selected runs, top to bottom."""
        rows = sorted({i.row() for i in self.list.selectedIndexes()})
        return [self._record_at(r) for r in rows if self.list.item(r, 0) is not None]

    def select_paths(self, paths: list) -> None:  # noqa: ANN001 - Path or str
        """Pick the runs in these folders (a test's or a script's shortcut for Ctrl-clicks)."""
        want = {str(p) for p in paths}
        self.list.clearSelection()
        for row in range(self.list.rowCount()):
            if str(self._record_at(row).path) in want:
                self._add_row(row)

    # -- the comparison --------------------------------------------------------------------------------
    def show_comparison(self, comparison: Comparison, samples: dict) -> None:  # noqa: ANN001 - path -> array
        """Draw ``comparison``: the shared terms in the combo, the curves, the samples and the table."""
        self.comparison = comparison
        n = len(comparison.records)
        others = n - len(comparison.shown)
        self.note.setText("Pick runs on the left (Ctrl or Shift for several) to compare them." if not n else
                          f"{len(comparison.shown)} run{'s' * (len(comparison.shown) != 1)} compared"
                          + (f"; {others} on other data, not comparable (listed, not drawn)" if others else ""))
        for b in (self.csv_button, self.png_button):
            b.setEnabled(n > 0)
        current = self.term_combo.currentData()
        counts = comparison.terms()
        shown = len(comparison.shown)
        self.term_combo.blockSignals(True)
        self.term_combo.clear()
        for term, k in counts:  # the most shared first; a term only some runs logged says how many
            self.term_combo.addItem(term if k == shown else f"{term} ({k} of {shown} runs)", term)
        names = [t for t, _ in counts]
        if current in names:
            self.term_combo.setCurrentIndex(names.index(current))
        self.term_combo.blockSignals(False)
        self._draw_curves()
        self._show_samples(samples)
        self._fill_table()

    def _draw_curves(self) -> None:
        self.plot.clear()
        self.legend.clear()
        term = self.term_combo.currentData() or ""
        self.plot.setLabel("left", term)
        for i, rec in enumerate(self.comparison.shown):
            if term not in rec.curves:
                continue
            steps, values = rec.curves[term]
            self.plot.plot(np.asarray(steps, float), np.asarray(values, float), name=rec.name,
                           pen=pg.mkPen(PALETTE[i % len(PALETTE)], width=1))

    def _show_samples(self, samples: dict) -> None:  # noqa: ANN001
        while self.sample_views:
            view = self.sample_views.pop()
            self.samples_row.removeWidget(view)
            view.hide()  # at once: deleteLater waits for the event loop, and the old picture would show
            view.deleteLater()
        for i, rec in enumerate(self.comparison.shown[:MAX_SAMPLES]):
            view = ImageView(rec.name)
            view.setMinimumSize(60, 60)
            view.title.setStyleSheet(f"color: {PALETTE[i % len(PALETTE)]}")
            picture = samples.get(str(rec.path))
            if picture is not None:
                view.set_image(picture)
            else:
                view.set_title(f"{rec.name}: no samples.png")
            self.samples_row.addWidget(view, 1)
            self.sample_views.append(view)

    def _fill_table(self) -> None:
        rows = self.comparison.rows()
        best = self.comparison.best()
        keys = [k for k, _ in self.comparison.columns()]
        self.table.setSortingEnabled(False)
        self.table.clear()
        self.table.setColumnCount(len(rows[0]))
        self.table.setRowCount(len(rows) - 1)
        self.table.setHorizontalHeaderLabels(rows[0])
        bold = QFont()
        bold.setBold(True)
        for r, cells in enumerate(rows[1:]):
            for c, text in enumerate(cells):
                item = _Number(text) if c >= 3 and c != 4 else QTableWidgetItem(text)
                if c >= 5 and best.get(keys[c - 5]) == r:
                    item.setFont(bold)
                    item.setToolTip("best of the compared runs")
                if not self.comparison.comparable[r]:
                    item.setForeground(Qt.GlobalColor.gray)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.table.setSortingEnabled(True)
