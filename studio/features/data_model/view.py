"""The Data & Model panel: pick a data set and a model, set its size, and build it (a Configure command)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QVBoxLayout,
    QWidget,
)

from engines.shared import protocol
from studio.widgets.scrolling import MiddleElidedCombo
from engines.shared.datainfo import split_binarized
from engines.shared.registry import MODELS
from studio.features.data_model.state import (
    ARCHS, IMAGE_DEFAULTS, NATIVE_SIZE, POINT_DEFAULTS, POINT_SPECS, BuildForm, builtin_specs, image_size_value,
    latent_width_applies, ready_summary, settings_help, spec_for_file, spec_label, suggest_defaults, suggests_binarized,
)

TOOLTIP = Qt.ItemDataRole.ToolTipRole

__all__ = ["DataModelPanel", "IMAGE_DEFAULTS", "NATIVE_SIZE", "POINT_DEFAULTS", "POINT_SPECS", "builtin_specs",
           "spec_for_file"]


class DataModelPanel(QWidget):
    """Data set, model, architecture and sizes; "Build model" emits the :class:`Configure` to send.

    Signals
    -------
    build_requested(Configure)
        The user pressed "Build model".
    """

    build_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.data_combo = MiddleElidedCombo()
        for spec, description in builtin_specs():
            self.data_combo.addItem(spec, spec)
            self.data_combo.setItemData(self.data_combo.count() - 1, description, TOOLTIP)
        self.data_combo.setToolTip(f"Data set: {self.data_combo.currentData()}")
        self.open_file_button = QPushButton("Open file...")
        self.open_file_button.setToolTip("An MNIST-style IDX file (raw or .gz) or an .npz with x (and y)")
        self.open_folder_button = QPushButton("Open folder...")
        self.open_folder_button.setToolTip("A folder of PNG/JPEG images (grey or RGB, resized)")
        self.binarize_check = QCheckBox("Binarise (static, seed 0)")
        self.binarize_check.setToolTip(
            "Each pixel 1 with probability its grey level, drawn once per image with a fixed seed "
            "(the binarized: data spec): the Bernoulli models' likelihood is then that of binary images"
        )
        self.model_combo = QComboBox()
        for name, entry in MODELS.items():
            self.model_combo.addItem(name, name)
            self.model_combo.setItemData(self.model_combo.count() - 1, entry.description, TOOLTIP)
        self.arch_combo = QComboBox()
        self.arch_combo.addItems(list(ARCHS))
        self.arch_combo.setToolTip(
            "Encoder/decoder networks: convolutional or fully connected (auto: conv for images, mlp for 2-D points)"
        )
        self.latent_spin = QSpinBox()
        self.latent_spin.setRange(1, 256)
        self.latent_spin.setValue(IMAGE_DEFAULTS[0])
        self.latent_spin.setToolTip("Width of z (latent dimensions)")
        self.size_spin = QSpinBox()
        self.size_spin.setRange(NATIVE_SIZE, 64)
        self.size_spin.setSpecialValueText("native")
        self.size_spin.setSuffix(" px")
        self.size_spin.setToolTip("Side images are resized to (8-64 px), or the data set's own size")
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 4096)
        self.batch_spin.setValue(IMAGE_DEFAULTS[1])
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.settings_edit = QLineEdit()
        self.settings_edit.setPlaceholderText("e.g. estimator=nvil")
        self.settings_edit.setToolTip(settings_help())
        self.build_button = QPushButton("Build model")
        self.build_button.setToolTip("Load the data set and build a fresh model in the worker")
        self.summary = QLabel("No model yet.")
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("color: #a0a0a0")

        files = QHBoxLayout()
        files.addWidget(self.open_file_button)
        files.addWidget(self.open_folder_button)
        form = QFormLayout()
        form.addRow("Data", self.data_combo)
        form.addRow("", files)
        form.addRow("", self.binarize_check)
        form.addRow("Model", self.model_combo)
        form.addRow("Architecture", self.arch_combo)
        form.addRow("Latent dims", self.latent_spin)
        form.addRow("Image size", self.size_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Seed", self.seed_spin)
        form.addRow("Settings", self.settings_edit)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.build_button)
        layout.addWidget(self.summary)
        layout.addStretch(1)

        self.open_file_button.clicked.connect(self.open_file_dialog)
        self.open_folder_button.clicked.connect(self.open_folder_dialog)
        self.model_combo.currentIndexChanged.connect(self._model_changed)
        self.data_combo.currentIndexChanged.connect(self._data_changed)
        self.build_button.clicked.connect(self._build_clicked)
        self._model_changed()

    def _data_changed(self, _index: int = 0) -> None:
        """Suggest the setup of PacGAN's 2-D experiments for the point mixtures (z of width 2, batch 100),
        and the image defaults back when leaving them, unless the user changed the values."""
        suggested = suggest_defaults(self.data_spec(), (self.latent_spin.value(), self.batch_spin.value()))
        if suggested is not None:
            self.set_values(latent_dim=suggested[0], batch_size=suggested[1])
        self.binarize_check.setEnabled(self.data_spec() not in POINT_SPECS)
        self.data_combo.setToolTip(f"Data set: {self.data_spec()}")  # whole, however the box shortens it

    # -- values ----------------------------------------------------------------------------------
    def data_spec(self) -> str:
        """The selected data spec (e.g. ``"digits"`` or ``"idx:/data/train-images.gz"``)."""
        return str(self.data_combo.currentData())

    def set_data_spec(self, spec: str) -> None:
        """Select a data spec, adding it to the list if new (what "Open file..." does after its dialog);
        a ``binarized:`` spec selects its images and ticks "Binarise"."""
        spec, binary = split_binarized(spec)
        if binary:
            self.binarize_check.setChecked(True)
        index = self.data_combo.findData(spec)
        if index < 0:
            self.data_combo.addItem(spec_label(spec), spec)
            index = self.data_combo.count() - 1
            self.data_combo.setItemData(index, spec, TOOLTIP)
        self.data_combo.setCurrentIndex(index)

    def set_model(self, name: str) -> None:
        """Select a registry model by name.

        Raises
        ------
        KeyError
            If the registry has no such model.
        """
        index = self.model_combo.findData(name)
        if index < 0:
            raise KeyError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
        self.model_combo.setCurrentIndex(index)

    def set_values(
        self, *, latent_dim: int | None = None, image_size: int | None = None, batch_size: int | None = None,
        seed: int | None = None, arch: str | None = None,
    ) -> None:
        """Set the build options (None leaves one unchanged; ``image_size`` 0 means native)."""
        if latent_dim is not None:
            self.latent_spin.setValue(latent_dim)
        if image_size is not None:
            self.size_spin.setValue(image_size_value(image_size))
        if batch_size is not None:
            self.batch_spin.setValue(batch_size)
        if seed is not None:
            self.seed_spin.setValue(seed)
        if arch is not None:
            self.arch_combo.setCurrentText(arch)

    def form(self) -> BuildForm:
        """The values of these controls, Qt-free."""
        return BuildForm(
            data=self.data_spec(), model=str(self.model_combo.currentData()), arch=self.arch_combo.currentText(),
            arch_enabled=self.arch_combo.isEnabled(), latent_dim=self.latent_spin.value(),
            image_size=self.size_spin.value(), batch_size=self.batch_spin.value(), seed=self.seed_spin.value(),
            binarize=self.binarize_check.isChecked() and self.binarize_check.isEnabled(),
            settings=self.settings_edit.text(),
        )

    def _build_clicked(self) -> None:
        try:
            command = self.configure_command()
        except ValueError as exc:
            self.summary.setText(f"<span style='color:#e57373'>{exc}</span>")
            return
        self.build_requested.emit(command)

    def configure_command(self) -> protocol.Configure:
        """The :class:`Configure` these controls describe."""
        return self.form().command()

    # -- worker state ----------------------------------------------------------------------------
    def set_can_build(self, can: bool, why: str = "") -> None:
        """Enable "Build model"; ``why`` is the tooltip that explains a disabled button."""
        self.build_button.setEnabled(can)
        self.build_button.setToolTip(why or "Load the data set and build a fresh model in the worker")

    def set_ready(self, ready: protocol.Ready) -> None:
        """Show the data summary and the model of a :class:`Ready`."""
        self.summary.setText(ready_summary(ready))
        self.settings_edit.setToolTip(settings_help(ready.config))
        if self.model_combo.findData(ready.model) >= 0:
            self.model_combo.blockSignals(True)
            self.model_combo.setCurrentIndex(self.model_combo.findData(ready.model))
            self.model_combo.blockSignals(False)

    def _model_changed(self) -> None:
        entry = MODELS.get(str(self.model_combo.currentData()))
        self.settings_edit.clear()  # another model's settings would not apply
        self.settings_edit.setToolTip(settings_help())
        self.arch_combo.setEnabled(entry is not None and "arch" in entry.capabilities.options)
        self.model_combo.setToolTip(entry.description if entry else "")
        if entry is None:
            return
        width = latent_width_applies(entry.capabilities)
        self.latent_spin.setEnabled(width)
        self.latent_spin.setToolTip("Width of z (latent dimensions)" if width else
                                    "This model's z has the data's own shape, or it has no latent")
        if suggests_binarized(entry.capabilities) and self.binarize_check.isEnabled():
            self.binarize_check.setChecked(True)

    # -- dialogs ---------------------------------------------------------------------------------
    def open_file_dialog(self) -> None:
        """Ask for an IDX (raw or .gz) or .npz file and select it as the data spec."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a data file", "", "Data files (*.gz *.idx *ubyte* *.npz);;All files (*)"
        )
        if path:
            self.set_data_spec(spec_for_file(path))

    def open_folder_dialog(self) -> None:
        """Ask for a folder of images and select it as the data spec."""
        path = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if path:
            self.set_data_spec(f"folder:{path}")
