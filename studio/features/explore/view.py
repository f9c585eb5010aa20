"""The Explore panel: a control per latent variable as its kind says (:data:`~engines.shared.spec.LATENT_KINDS`),
ordered by a measure (KL per dimension; for binary units, how much flipping each changes the image: see
:mod:`studio.features.explore.state`), labelled by the factor it captures, plus random, reset and encode.

A slider per continuous (Gaussian, uniform) dimension, a toggle (0 or 1) per binary unit, a picker per
categorical code; an image-shaped z (a flow) and no latent (autoregressive) get no per-dimension
controls, only a line saying how they are explored (directions and temperature; conditional completion).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSizePolicy, QSpinBox, QVBoxLayout, QWidget,
)
from superqt import QLabeledDoubleSlider

from engines.shared.latent_np import prior_centre, prior_draw
from engines.shared.spec import LATENT_KINDS, LatentDim, LatentSpec
from studio.features.explore.state import EFFECT, KL, Measure, measure_order
from studio.state import factor_of
from studio.widgets import BACKGROUND

#: Seconds between re-orderings of the sliders (rows never jump while one is dragged).
REORDER_INTERVAL_MS = 1500
#: Milliseconds between redraws of the bar chart (KL or effect per dimension).
BARS_INTERVAL_MS = 400
#: What the panel says for a latent explored without per-dimension controls, by the kind's control.
NOTES = {
    "directions": "z has the image's shape: explore it with directions and temperature",
    "completion": "no latent: explored by conditional completion",
}


class LatentRow(QWidget):
    """One latent dimension: its name, its control and its measure (KL, or a binary unit's effect).

    The control follows the kind's entry in :data:`LATENT_KINDS`: a toggle (a checkable button, value
    0 or 1) for a ``"toggle"`` kind (binary units), else a labelled slider over the dimension's range
    (a categorical dimension's row is hidden: its slider holds the value its code's picker writes).

    Signals
    -------
    changed()
        The user moved the slider or flipped the toggle.
    """

    changed = Signal()

    def __init__(self, index: int, dim: LatentDim, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.index, self.dim = index, dim
        self.name = QLabel(dim.name)
        self.name.setMinimumWidth(34)
        self.slider: QLabeledDoubleSlider | None = None
        self.toggle: QPushButton | None = None
        if LATENT_KINDS[dim.kind].control == "toggle":
            self.toggle = QPushButton("0")
            self.toggle.setCheckable(True)
            self.toggle.setToolTip(f"{dim.name}: a binary unit; click to flip it between 0 and 1")
            self.toggle.toggled.connect(lambda on: self.toggle.setText("1" if on else "0"))
            self.toggle.toggled.connect(lambda _on: self.changed.emit())
            control: QWidget = self.toggle
        else:
            self.slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
            self.slider.setDecimals(2)
            self.slider.setRange(dim.low, dim.high)
            self.slider.setSingleStep((dim.high - dim.low) / 100)
            self.slider.valueChanged.connect(lambda _v: self.changed.emit())
            control = self.slider
        control.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.factor: str | None = None
        self.factor_mi = 0.0
        self._factor_tip = ""
        self.measure: Measure = KL
        self.kl = QLabel("")  # the measure's value (KL or effect), whichever the panel shows
        self.kl.setMinimumWidth(62)
        self.kl.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.name)
        layout.addWidget(control, 1)
        layout.addWidget(self.kl)
        self.collapsed = False

    def value(self) -> float:
        """The dimension's value: the slider's, or 0.0 / 1.0 for a toggle."""
        if self.toggle is not None:
            return float(self.toggle.isChecked())
        return float(self.slider.value())

    def set_value(self, value: float, quiet: bool = True) -> None:
        """Show ``value``: clipped to [low, high] on a slider, 1 from 0.5 up on a toggle.

        ``quiet``: without emitting :attr:`changed` (z set from elsewhere); else as a user's move would.
        """
        control = self.toggle if self.toggle is not None else self.slider
        control.blockSignals(quiet)
        if self.toggle is not None:
            self.toggle.setChecked(bool(value >= 0.5))
            self.toggle.setText("1" if self.toggle.isChecked() else "0")
        else:
            self.slider.setValue(float(np.clip(value, self.dim.low, self.dim.high)))
        control.blockSignals(False)

    def held(self) -> bool:
        """Whether the user is dragging the slider now (a toggle is never held)."""
        return self.slider is not None and self.slider.isSliderDown()

    def set_factor(self, factor: str | None, mi: float = 0.0, tooltip: str = "") -> None:
        """Label the row by the factor it captures: ``"z3 · x (0.71)"`` (MI in nats), or just the name.

        A collapsed row (see :meth:`set_measure`) keeps its factor but shows no label: its posterior mean
        can still follow a factor (MIG's histograms see any variation, however small) while the
        decoder ignores it, so moving it changes nothing.
        """
        self.factor, self.factor_mi, self._factor_tip = factor, float(mi), tooltip
        self._show_name()

    @property
    def shown_factor(self) -> str | None:
        """The factor the row is labelled with: ``factor`` unless the row is collapsed."""
        return None if self.collapsed else self.factor

    def _show_name(self) -> None:
        f = self.shown_factor
        self.name.setText(self.dim.name if f is None else f"{self.dim.name} \u00b7 {f} ({self.factor_mi:.2f})")
        tip = self._factor_tip
        if self.collapsed and self.factor is not None:
            tip += "\n" + self.measure.unlabelled(self.factor)
        self.name.setToolTip(tip)

    def label(self) -> str:
        """The row's label for a traversal: ``"z3"`` or ``"z3: x (MI 0.71)"`` (no factor while collapsed)."""
        f = self.shown_factor
        return self.dim.name if f is None else f"{self.dim.name}: {f} (MI {self.factor_mi:.2f})"

    def set_measure(self, value: float | None, measure: Measure = KL) -> None:
        """Show the dimension's ``measure`` (KL in nats, effect in pixels); grey the row out below its threshold."""
        self.measure = measure
        if value is None or not np.isfinite(value):
            self.kl.setText("")
            self.collapsed = False
        else:
            self.collapsed = value < measure.threshold
            self.kl.setText(f"{value:.2f}" + (" \u2715" if self.collapsed else ""))
        tip = "" if value is None else measure.describe(value)
        grey = "color: #707070" if self.collapsed else ""
        self.name.setStyleSheet(grey)
        self.kl.setStyleSheet(grey)
        self.setToolTip(tip)
        self._show_name()


class CategoryRow(QWidget):
    """A categorical code (a cGAN's class, an InfoGAN code): one combo box over its one-hot block of z.

    The block's dimensions keep their (hidden) :class:`LatentRow` sliders, which hold the values;
    this row writes a one-hot vector into them and shows the block's argmax.
    """

    changed = Signal()

    def __init__(self, group: str, rows: list[LatentRow], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.group, self.rows = group, rows
        self.name = QLabel(group)
        self.name.setMinimumWidth(34)
        self.combo = QComboBox()
        prefix = f"{group}="
        self.combo.addItems([r.dim.name.removeprefix(prefix) for r in rows])
        self.combo.setToolTip(f"The categorical code {group!r}: which one-hot value z holds")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.name)
        layout.addWidget(self.combo, 1)
        self.combo.currentIndexChanged.connect(self._picked)

    def _picked(self, index: int) -> None:
        for k, row in enumerate(self.rows):
            row.set_value(1.0 if k == index else 0.0)
        self.changed.emit()

    def sync(self) -> None:
        """Show the class with the largest value in the block (after z was set from elsewhere)."""
        values = [row.value() for row in self.rows]
        self.combo.blockSignals(True)
        self.combo.setCurrentIndex(int(np.argmax(values)))
        self.combo.blockSignals(False)


class ExplorePanel(QWidget):
    """Controls over the latent space, most informative dimension first.

    Built from the kinds table (:data:`LATENT_KINDS`): a :class:`LatentRow` per dimension, with a
    slider (Gaussian, uniform) or a toggle (binary unit), and a :class:`CategoryRow` picker per
    categorical code above them. An image-shaped z or no latent has no rows: the header says how it
    is explored (:data:`NOTES`) and :meth:`z` is held whole (reset, random and encode still set it).

    Rows show and are sorted by a :class:`~studio.features.explore.state.Measure`, largest first: the KL
    per dimension in nats (``StepMetrics.latent_kl``, :data:`~studio.features.explore.state.KL`) or, for
    binary units, how many pixels flipping each changes (``StepMetrics.unit_effect``,
    :data:`~studio.features.explore.state.EFFECT`). Updated at most every :data:`REORDER_INTERVAL_MS` and
    never while a slider is held; the bar chart below them follows every :data:`BARS_INTERVAL_MS`.
    Dimensions below the measure's threshold are greyed and marked with a cross. The column label, the
    chart's axis, the tooltips and the header follow the measure; none is shown until one arrives.

    Signals
    -------
    z_changed(ndarray)
        The latent vector, (D,) float32, after any change (slider, random, reset, encode).
    encode_requested(int)
        "Set from image" pressed: the held-out example index to encode.
    order_changed()
        The rows were re-sorted or relabelled by a new measurement (their order and labels are new).
    """

    z_changed = Signal(object)
    encode_requested = Signal(int)
    order_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = LatentSpec(())
        self.rows: list[LatentRow] = []
        self.categories: list[CategoryRow] = []
        self._held = np.zeros(0, np.float32)  # z where there are no rows (image-shaped z, no latent)
        self._built = False  # set_latent has run
        self.order = np.zeros(0, np.int64)
        self.values: np.ndarray | None = None  # the measure per dimension, (D,)
        self.measure: Measure | None = None  # which one the rows show (None: none reported yet)
        self._about = ""  # the header without the order's clause
        self._ordered_once = False
        self._rng = np.random.default_rng()
        self.header = QLabel("Build a model to explore its latent space.")
        self.header.setWordWrap(True)
        self.header.setStyleSheet("color: #a0a0a0")
        self.rows_widget = QWidget()
        self.rows_layout = QVBoxLayout(self.rows_widget)
        self.rows_layout.setContentsMargins(0, 0, 0, 0)
        self.rows_layout.setSpacing(2)
        self.rows_layout.addStretch(1)
        self.columns = QLabel()
        self.columns.setStyleSheet("color: #8a8a8a")
        self.kl_plot = pg.PlotWidget(background=BACKGROUND)  # the measure's bar chart (KL or effect)
        self.kl_plot.setFixedHeight(120)
        self.kl_plot.setMouseEnabled(False, False)
        self.kl_plot.setMenuEnabled(False)
        self.kl_plot.hideButtons()
        self.kl_plot.getAxis("left").enableAutoSIPrefix(False)  # no "(x0.001)" on an empty plot
        self.kl_plot.showGrid(y=True, alpha=0.15)
        self.kl_plot.setYRange(0.0, 1.0, padding=0.0)  # until a measure arrives: not the line's -200..400
        self.kl_plot.enableAutoRange(axis="y", enable=False)
        self.kl_bars = pg.BarGraphItem(x=[], height=[], width=0.7)
        self.kl_plot.addItem(self.kl_bars)
        self._threshold_line = pg.InfiniteLine(pos=KL.threshold, angle=0,
                                               pen=pg.mkPen("#9e9e9e", style=Qt.PenStyle.DashLine))
        self.kl_plot.addItem(self._threshold_line)
        self._label_measure(KL)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.rows_widget)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.random_button = QPushButton("Random z")
        self.reset_button = QPushButton("Reset")
        self.index_spin = QSpinBox()
        self.index_spin.setPrefix("held-out #")
        self.index_spin.setToolTip("Index of an example in the held-out split")
        self.encode_button = QPushButton("Set from image")
        self.encode_button.setToolTip("Encode the held-out example and move the sliders to its posterior mean")
        buttons = QHBoxLayout()
        buttons.addWidget(self.random_button)
        buttons.addWidget(self.reset_button)
        encode = QHBoxLayout()
        encode.addWidget(self.index_spin, 1)
        encode.addWidget(self.encode_button)
        layout = QVBoxLayout(self)
        self.codes_layout = QVBoxLayout()  # one combo per categorical code, above the sliders
        layout.addWidget(self.header)
        layout.addLayout(self.codes_layout)
        layout.addWidget(self.columns)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.kl_plot)
        layout.addLayout(buttons)
        layout.addLayout(encode)
        self.random_button.clicked.connect(lambda: self.random_z())
        self.reset_button.clicked.connect(self.reset)
        self.encode_button.clicked.connect(lambda: self.encode_requested.emit(self.index_spin.value()))
        self._reorder_timer = QTimer(self)
        self._reorder_timer.setSingleShot(True)
        self._reorder_timer.timeout.connect(self._apply_order)
        self._bars_timer = QTimer(self)  # the bar chart redraws at most this often
        self._bars_timer.setSingleShot(True)
        self._bars_timer.setInterval(BARS_INTERVAL_MS)
        self._bars_timer.timeout.connect(self._update_bars)
        self.set_encoder(False, 0)

    # -- latent space ----------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """D, the number of latent dimensions (sliders)."""
        return self.spec.dim

    def set_latent(self, spec: LatentSpec) -> None:
        """Build the controls of ``spec`` from :data:`LATENT_KINDS` (kept, with their values, if the spec is unchanged).

        z starts at the prior centre (:func:`~engines.shared.latent_np.prior_centre`), without emitting.
        """
        if spec == self.spec and self._built:
            return
        for row in self.rows:
            self.rows_layout.removeWidget(row)
            row.deleteLater()
        for cat in self.categories:
            self.codes_layout.removeWidget(cat)
            cat.deleteLater()
        self.spec, self.values, self._ordered_once, self._built = spec, None, False, True
        self.rows = [LatentRow(i, d) for i, d in enumerate(spec.dims)]
        self.categories = []
        for kind, name, idx in spec.groups():
            if LATENT_KINDS[kind].control == "picker":
                for i in idx:
                    self.rows[i].hide()  # shown as its code's picker
                self.categories.append(CategoryRow(name, [self.rows[i] for i in idx]))
        for i, row in enumerate(self.rows):
            self.rows_layout.insertWidget(i, row)
            row.changed.connect(self._slider_moved)
        for cat in self.categories:
            self.codes_layout.addWidget(cat)
            cat.changed.connect(lambda: self.z_changed.emit(self.z()))
        self.order = np.arange(len(self.rows), dtype=np.int64)
        self._about = self._describe(spec)
        for button in (self.random_button, self.reset_button):
            button.setEnabled(spec.dim > 0)
        self._show_measure(None)  # until the model reports a measure per dimension (VAEs, binary units; not GANs)
        self.kl_bars.setOpts(x=np.arange(len(self.rows)), height=np.zeros(len(self.rows)), brushes=None)
        ticks = [(i, d.name) for i, d in enumerate(spec.dims)]
        step = max(1, len(ticks) // 12)
        self.kl_plot.getAxis("bottom").setTicks([ticks[::step]])
        self.kl_plot.setXRange(-0.5, max(1, len(self.rows)) - 0.5, padding=0.02)
        self.kl_plot.setYRange(0.0, 1.0, padding=0.0)
        self._held = np.zeros(0 if self.rows else spec.dim, np.float32)
        self.set_z(prior_centre(spec)[0], emit=False)

    def _describe(self, spec: LatentSpec) -> str:
        """The header: what the controls are (``"3 continuous latent dimensions and 1 categorical code"``),
        or, for a latent without per-dimension controls, how it is explored (:data:`NOTES`)."""
        if not spec.dims:
            return NOTES[LATENT_KINDS[spec.kinds[0]].control]
        counts = ((len(spec.continuous), "continuous latent dimension"), (len(spec.indices("binary")), "binary unit"),
                  (len(spec.categorical), "categorical code"))
        parts = [f"{n} {word}{'s' * (n != 1)}" for n, word in counts if n]
        return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]

    @property
    def latent_kl(self) -> np.ndarray | None:
        """The latest KL per dimension (D,) in nats, or None (none yet, or the rows show another measure)."""
        return self.values if self.measure == KL else None

    def set_latent_kl(self, latent_kl: np.ndarray | None) -> None:
        """Update each row's KL (nats) and schedule a re-ordering by decreasing KL."""
        self.set_measure(latent_kl, KL)

    def set_unit_effect(self, effect: np.ndarray | None) -> None:
        """Update each binary unit's effect on the image (pixels) and schedule a re-ordering by it."""
        self.set_measure(effect, EFFECT)

    def set_measure(self, values: np.ndarray | None, measure: Measure) -> None:
        """Update each row's ``measure`` (D,) and schedule a re-ordering by decreasing value.

        Ignored when ``values`` is None or does not have D values.
        """
        if values is None or not self.rows or len(values) != self.dim:
            return
        self.values = np.asarray(values, np.float64)
        if measure != self.measure:
            self._show_measure(measure)
        if not self._bars_timer.isActive():
            self._bars_timer.start()
        if not self._reorder_timer.isActive():
            self._reorder_timer.start(REORDER_INTERVAL_MS if self._ordered_once else 0)

    def _show_measure(self, measure: Measure | None) -> None:
        """Show the measure's column, bar chart and order only for models that report one (None: hide them)."""
        self.measure = measure
        self.kl_plot.setVisible(measure is not None)
        self.columns.setVisible(measure is not None)
        self.header.setText(self._about if measure is None else f"{self._about}, {measure.first}")
        if measure is not None:
            self._label_measure(measure)

    def _label_measure(self, measure: Measure) -> None:
        self.columns.setText(f"<small>dimension &nbsp;&middot;&nbsp; value &nbsp;&middot;&nbsp; {measure.label}</small>")
        self.kl_plot.setLabel("left", measure.label)
        self.kl_plot.setToolTip(measure.bars_tip())
        self._threshold_line.setPos(measure.threshold)

    def _update_bars(self) -> None:
        if self.values is None or self.measure is None or len(self.values) != self.dim:
            return
        _, collapsed = measure_order(self.values, self.dim, self.measure.threshold)
        brushes = [pg.mkBrush("#6b6b6b" if c else "#4fc3f7") for c in collapsed]
        heights = np.nan_to_num(self.values)
        self.kl_bars.setOpts(x=np.arange(self.dim), height=heights, brushes=brushes)
        self.kl_plot.setYRange(0.0, max(1.0, float(heights.max(initial=0.0)) * 1.1), padding=0.0)

    def apply_order(self) -> None:
        """Show the latest measure per row and sort the rows by it now (normally done on a timer)."""
        self._reorder_timer.stop()
        self._bars_timer.stop()
        self._update_bars()
        self._apply_order()

    def _apply_order(self) -> None:
        if any(row.held() for row in self.rows):
            self._reorder_timer.start(REORDER_INTERVAL_MS)
            return
        if self.values is None or self.measure is None:
            return
        for row, v in zip(self.rows, self.values):  # labels change with the order, so they always agree
            row.set_measure(float(v), self.measure)
        order, _ = measure_order(self.values, self.dim, self.measure.threshold)
        self._ordered_once = True
        if not np.array_equal(order, self.order):
            self.order = order
            for position, index in enumerate(order):
                row = self.rows[int(index)]
                self.rows_layout.removeWidget(row)
                self.rows_layout.insertWidget(position, row)
        self.order_changed.emit()

    def set_factor_labels(self, mi: np.ndarray | None, factor_names: list[str]) -> list[str | None]:
        """Label each row by the ground-truth factor it captures most (see :func:`factor_of`).

        Parameters
        ----------
        mi : (D, K) float array or None
            Mutual information in nats between latent d and factor k
            (``DisentanglementMeasured.mi_matrix``). None, or a shape that does not match D rows and
            ``len(factor_names)`` columns, clears the labels.
        factor_names : list of str
            K factor names.

        Returns
        -------
        list of (str or None)
            The factor name given to each dimension (None: unlabelled, or collapsed). Each name
            label's tooltip lists the dimension's whole MI row. The measure's column and the order are left as they are.
        """
        m = None if mi is None else np.asarray(mi, np.float64)
        if m is None or not self.rows or m.ndim != 2 or m.shape != (self.dim, len(factor_names)):
            for row in self.rows:
                row.set_factor(None)
            return [None] * self.dim
        given: list[str | None] = []
        for row, mi_row in zip(self.rows, m):
            k = factor_of(mi_row)
            ranked = np.argsort(np.nan_to_num(mi_row, nan=-1.0))[::-1]
            tip = f"{row.dim.name}: mutual information with each factor (nats)\n" + "\n".join(
                f"  {factor_names[j]}: {mi_row[j]:.3f}" for j in ranked)
            name = None if k is None else str(factor_names[k])
            row.set_factor(name, 0.0 if k is None else float(mi_row[k]), tip)
            given.append(row.shown_factor)
        return given

    def row_label(self, index: int) -> str:
        """Label of dimension ``index`` for a traversal row: ``"z3"`` or ``"z3: x (MI 0.71)"`` (``"z3"`` if no row)."""
        return self.rows[index].label() if index < len(self.rows) else f"z{index}"

    def collapsed(self) -> np.ndarray:
        """(D,) bool: which dimensions are currently marked collapsed."""
        return np.array([row.collapsed for row in self.rows], bool)

    # -- z ---------------------------------------------------------------------------------------
    def z(self) -> np.ndarray:
        """The latent the controls show (binary units 0 or 1), or the one held where there are none: (D,) float32."""
        if not self.rows:
            return self._held.copy()
        return np.array([row.value() for row in self.rows], np.float32)

    def set_z(self, z: np.ndarray, emit: bool = True) -> None:
        """Move every control (a slider clipped to its range, a toggle to 1 from 0.5 up) and emit ``z_changed`` once.

        Raises
        ------
        ValueError
            If ``z`` does not have D values.
        """
        z = np.asarray(z, np.float64).reshape(-1)
        if len(z) != self.dim:
            raise ValueError(f"z has {len(z)} values but the latent space has {self.dim} dimensions")
        if not self.rows:
            self._held = z.astype(np.float32)
        for row, v in zip(self.rows, z):
            row.set_value(float(v))
        for cat in self.categories:
            cat.sync()
        if emit:
            self.z_changed.emit(self.z())

    def set_value(self, index: int, value: float) -> None:
        """Move the control of dimension ``index`` as a user would (emits ``z_changed`` if it changed)."""
        self.rows[index].set_value(float(value), quiet=False)

    def random_z(self, seed: int | None = None) -> np.ndarray:
        """Draw z from the prior (:func:`~engines.shared.latent_np.prior_draw`: Gaussian clipped to the slider
        range, uniform, 0 or 1 per binary unit, one-hot per categorical code) and show it."""
        rng = self._rng if seed is None else np.random.default_rng(seed)
        self.set_z(prior_draw(self.spec, rng))
        return self.z()

    def reset(self) -> None:
        """Every control back to the prior centre (:func:`~engines.shared.latent_np.prior_centre`: 0, the
        middle of a uniform range, binary units 0, the first class of each categorical code)."""
        self.set_z(prior_centre(self.spec)[0])

    def _slider_moved(self) -> None:
        self.z_changed.emit(self.z())

    # -- encoder ---------------------------------------------------------------------------------
    def set_encoder(self, has_encoder: bool, n_test: int) -> None:
        """Enable "Set from image" for a model with an encoder and a held-out split of ``n_test`` examples."""
        ok = has_encoder and n_test > 0
        self.index_spin.setRange(0, max(0, n_test - 1))
        self.index_spin.setEnabled(ok)
        self.encode_button.setEnabled(ok)
        if not has_encoder:
            self.encode_button.setToolTip("This model has no encoder")
