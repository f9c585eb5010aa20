"""The main window: docked panels over the sample grid and the decoded image, wired to a WorkerClient.

Every user action becomes a :mod:`engines.shared.protocol` command sent through the client; every event
comes back as a client signal and updates a panel. Nothing here waits on the worker.
"""

from __future__ import annotations

import html
import itertools
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget, QFileDialog, QLabel, QMainWindow, QSplitter, QTabWidget, QVBoxLayout, QWidget,
)

from engines.shared import protocol
from engines.shared.datainfo import DataInfo
from studio.client import MODEL_STATES, WorkerClient
from studio.widgets.images import write_png
from studio.features.browser.controller import BrowserController
from studio.interpolation import InterpolateController
from studio.morph import MorphController
from studio.features.coverage.view import CoveragePanel
from studio.features.data_model.view import DataModelPanel
from studio.features.disentanglement.view import DisentanglementPanel
from studio.panels.explore import ExplorePanel
from studio.features.losses.view import LossPlotPanel
from studio.features.train.view import TrainPanel
from studio.features.traversal.view import TraversalView, write_traversal_csv, write_traversal_png
from studio.features.samples.view import DecodedView, SamplesView
from studio.state import LossHistory
from studio.widgets.basic import Banner, FpsCounter, MessageLog

#: Points drawn for the sample view of 2-D data.
POINT_SAMPLES = 1000

#: Seconds between automatic traversal refreshes while training (a new sample grid also triggers one).
TRAVERSAL_REFRESH_S = 3.0


_STATE_TEXT = {
    "stopped": "no worker", "starting": "starting worker...", "idle": "worker up, no model",
    "configuring": "building model...", "ready": "ready", "training": "training", "paused": "paused",
    "died": "worker died",
}


class MainWindow(QMainWindow):
    """Latent Studio's window.

    Parameters
    ----------
    client : WorkerClient, optional
        The worker to drive; a new, not yet started one by default (see :meth:`start_worker`).

    Signals
    -------
    exported(str)
        A PNG was written (its path).
    export_failed(str)
        A PNG could not be written (the reason).
    """

    exported = Signal(str)
    export_failed = Signal(str)
    _export_done = Signal(str, str)  # (path, error message or "") from the export thread

    def __init__(self, client: WorkerClient | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        pg.setConfigOptions(imageAxisOrder="row-major")
        self.setWindowTitle("Latent Studio")
        self.client = client if client is not None else WorkerClient(parent=self)
        self.fps = FpsCounter(parent=self)
        self.history = LossHistory()
        self.info: DataInfo | None = None
        self.ready_event: protocol.Ready | None = None
        self._ids = itertools.count(1)
        self._encode_index: dict[int, int] = {}
        self._sample_request, self._points_shown = 0, False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export")
        defaults = protocol.SetMetricSchedule()
        self._default_schedule = (defaults.coverage_every, defaults.disentanglement_every)

        # central: banner over two tabs: the sample grid beside the decoded image, and the traversal
        self.samples_view = SamplesView(fps=self.fps)
        self.decoded_view = DecodedView(fps=self.fps)
        self.banner = Banner("Restart worker")
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.samples_view)
        splitter.addWidget(self.decoded_view)
        splitter.setSizes([500, 500])
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.banner)
        self.traversal_view = TraversalView()
        self.central_tabs = QTabWidget()
        self.central_tabs.setDocumentMode(True)
        self.central_tabs.addTab(splitter, "Samples && decode")
        self.central_tabs.addTab(self.traversal_view, "Traversal")
        self.interpolation = InterpolateController(self)  # the Interpolate tab: keyframes, path, exports
        from studio.features.timelapse.controller import TimeLapse
        self.timelapse = TimeLapse(self)  # the fixed-z grids seen while training, for File > Export time-lapse
        from studio.features.traversal.view import TraversalExportController
        self.traversal_exports = TraversalExportController(self)  # GIF/MP4 of the sweep, rendered by the worker
        self.interpolate_view = self.interpolation.view
        self.central_tabs.addTab(self.interpolate_view, "Interpolate")
        self.morph = MorphController(self)  # the Morph tab: A, B, per-dimension strengths, style grid
        self.central_tabs.addTab(self.morph.view, "Morph")
        layout.addWidget(self.central_tabs, 1)
        self.setCentralWidget(central)
        self._traverse_id = self._traverse_shown = 0
        self._traverse_labels: dict[int, list[str]] = {}
        self._traverse_at = 0.0
        self._traverse_timer = QTimer(self)  # refreshes the traversal while training
        self._traverse_timer.setInterval(int(TRAVERSAL_REFRESH_S * 1000))
        self._traverse_timer.timeout.connect(lambda: self._refresh_traversal(force=False))

        # docks
        self.data_panel = DataModelPanel()
        self.train_panel = TrainPanel()
        self.explore_panel = ExplorePanel()
        self.loss_panel = LossPlotPanel(self.history, fps=self.fps)
        self.messages = MessageLog()
        self.coverage_panel = CoveragePanel()
        self.disentangle_panel = DisentanglementPanel()
        self.docks: dict[str, QDockWidget] = {}
        self._dock("Data & Model", self.data_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock("Train", self.train_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock("Explore", self.explore_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("Losses", self.loss_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("Messages", self.messages, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("Coverage", self.coverage_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("Disentanglement", self.disentangle_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.browser = BrowserController(self)  # the Data set browser, and drops of image files on the window
        self._dock("Data set", self.browser.view, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.tabifyDockWidget(self.docks["Data & Model"], self.docks["Data set"])
        self.docks["Data & Model"].raise_()
        for title in ("Coverage", "Disentanglement", "Messages"):
            self.tabifyDockWidget(self.docks["Losses"], self.docks[title])
        self.docks["Losses"].raise_()
        self.resizeDocks([self.docks["Data & Model"], self.docks["Explore"]], [290, 330], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["Losses"]], [270], Qt.Orientation.Vertical)

        self._build_status_bar()
        self._build_menus()
        self._connect()
        self._on_state(self.client.state)

    # -- construction ----------------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> None:
        dock = QDockWidget(title.replace("&", "&&"), self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        self.docks[title] = dock

    def _build_status_bar(self) -> None:
        self.status_labels = {k: QLabel() for k in ("state", "device", "step", "speed", "fps")}
        for key in ("state", "device", "step", "speed", "fps"):
            self.status_labels[key].setContentsMargins(8, 0, 8, 0)
            self.statusBar().addPermanentWidget(self.status_labels[key])
        self.status_labels["device"].setText("device: -")
        self.status_labels["step"].setText("step 0")
        self.status_labels["speed"].setText("0.0 steps/s")
        self.status_labels["fps"].setText("0 fps")

    def _build_menus(self) -> None:
        def action(menu, text: str, slot, shortcut: QKeySequence | str | None = None) -> QAction:
            act = QAction(text, self)
            if shortcut is not None:
                act.setShortcut(shortcut)
            act.triggered.connect(slot)
            menu.addAction(act)
            return act

        file_menu = self.menuBar().addMenu("&File")
        action(file_menu, "Open data file...", self.data_panel.open_file_dialog, QKeySequence.StandardKey.Open)
        action(file_menu, "Open data folder...", self.data_panel.open_folder_dialog)
        file_menu.addSeparator()
        action(file_menu, "Load checkpoint...", self._ask_load_checkpoint)
        action(file_menu, "Save checkpoint...", self._ask_save_checkpoint, QKeySequence.StandardKey.Save)
        file_menu.addSeparator()
        action(file_menu, "Export image...", lambda: self._ask_export("image"))
        action(file_menu, "Export grid...", lambda: self._ask_export("grid"))
        action(file_menu, "Export traversal...", lambda: self._ask_export("traversal"))
        action(file_menu, "Export interpolation GIF...", lambda: self.interpolation.ask_export("gif"))
        action(file_menu, "Export interpolation MP4...", lambda: self.interpolation.ask_export("mp4"))
        action(file_menu, "Export training time-lapse...", self.timelapse.ask_export)
        file_menu.addSeparator()
        action(file_menu, "Quit", self.close, QKeySequence.StandardKey.Quit)
        worker_menu = self.menuBar().addMenu("&Worker")
        action(worker_menu, "Restart worker", self.restart_worker)
        view_menu = self.menuBar().addMenu("&View")
        for dock in self.docks.values():
            view_menu.addAction(dock.toggleViewAction())

    def _connect(self) -> None:
        c = self.client
        c.state_changed.connect(self._on_state)
        c.started.connect(self._on_started)
        c.ready.connect(self._on_ready)
        c.metrics.connect(self._on_metrics)
        c.samples.connect(self._on_samples)
        c.decoded.connect(self._on_decoded)
        c.encoded.connect(self._on_encoded)
        c.hyper_changed.connect(self._on_hyper_changed)
        c.checkpoint_saved.connect(self._on_checkpoint_saved)
        c.progress.connect(self._on_progress)
        c.stopped.connect(self._on_stopped)
        c.error.connect(self._on_error)
        c.worker_died.connect(self._on_died)
        c.coverage.connect(self.coverage_panel.add_coverage)
        c.coverage.connect(self.samples_view.set_coverage)
        c.disentanglement.connect(self.disentangle_panel.add_disentanglement)
        c.disentanglement.connect(self._on_disentanglement)
        c.traversed.connect(self._on_traversed)
        self.traversal_view.controls_changed.connect(self.request_traversal)
        self.traversal_view.export_requested.connect(lambda: self._ask_export("traversal"))
        self.central_tabs.currentChanged.connect(lambda _i: self._refresh_traversal(force=False, min_age=0.5))
        self.coverage_panel.warning.connect(self._on_metric_warning)
        self.coverage_panel.schedule_changed.connect(self.send_metric_schedule)
        self.disentangle_panel.schedule_changed.connect(self.send_metric_schedule)
        self.data_panel.build_requested.connect(self.configure)
        self.train_panel.command.connect(self._send)
        self.explore_panel.z_changed.connect(self._request_decode)
        self.explore_panel.z_changed.connect(
            lambda _z: self.traversal_view.base() == "sliders" and self._refresh_traversal(min_age=0.0))
        self.explore_panel.encode_requested.connect(self.encode_example)
        self.banner.button.clicked.connect(self.restart_worker)
        self.fps.fps_updated.connect(lambda f: self.status_labels["fps"].setText(f"{f:.0f} fps"))
        self._export_done.connect(self._on_export_done)

    # -- commands --------------------------------------------------------------------------------
    def start_worker(self) -> None:
        """Start the worker (in the background; the status bar says "starting worker...")."""
        self.client.start()

    def restart_worker(self) -> None:
        """Start a fresh worker and restore the last checkpoint (or rebuild the last configuration)."""
        self.banner.hide()
        where = self.client.last_checkpoint or ("the last configuration" if self.client.last_configure else None)
        self.messages.log("Restarting the worker" + (f"; restoring {where}" if where else ""))
        self.client.restart()

    def configure(self, command: protocol.Configure | None = None, **overrides) -> protocol.Configure:
        """Build a model: send ``command`` (default: the Data & Model panel's), with field ``overrides``."""
        command = command if command is not None else self.data_panel.configure_command()
        if overrides:
            command = replace(command, **overrides)
        self.messages.log(f"Building {command.model} on {command.data} (latent {command.latent_dim}, "
                          f"image size {command.image_size or 'native'}, batch {command.batch_size})")
        self._send(command)
        return command

    def set_data_spec(self, spec: str) -> None:
        """Choose the data set by spec (what the file dialogs do); takes effect at the next Build."""
        self.data_panel.set_data_spec(spec)

    def train(self, steps: int | None = None) -> None:
        """Start (or extend) training for ``steps`` steps; None trains until Stop."""
        self._send(protocol.Train(steps=steps))

    def encode_example(self, index: int) -> None:
        """Encode held-out example ``index``; the sliders move to its posterior mean when it arrives."""
        if self.client.state not in MODEL_STATES:
            return
        rid = self.client.request_encode([index], view="explore", split="test")
        self._encode_index[rid] = index

    def save_checkpoint(self, path: str | Path) -> bool:
        """Ask the worker to save weights to ``path`` (``.safetensors`` is appended if missing)."""
        path = str(path)
        if not path.endswith(".safetensors"):
            path += ".safetensors"
        return self._send(protocol.SaveCheckpoint(path=path))

    def load_checkpoint(self, path: str | Path) -> bool:
        """Ask the worker to load a checkpoint file or run folder (answered by Ready or Error)."""
        return self._send(protocol.LoadCheckpoint(path=str(path)))

    def send_metric_schedule(self, *_args: object) -> bool:
        """Send the two panels' metric schedules (seconds, 0 = off) as one :class:`SetMetricSchedule`."""
        return self._send(protocol.SetMetricSchedule(
            coverage_every=self.coverage_panel.schedule(), disentanglement_every=self.disentangle_panel.schedule()))

    def _send(self, command: protocol.Command) -> bool:
        if not self.client.send(command):
            self.statusBar().showMessage(f"No worker to send {type(command).__name__} to", 5000)
            return False
        return True

    def _request_decode(self, z: np.ndarray) -> None:
        if self.client.state in MODEL_STATES and len(z):
            self.client.request_decode(np.asarray(z, np.float32)[None], view="explore")

    # -- traversal -------------------------------------------------------------------------------
    def traversal_dims(self) -> list[int]:
        """Rows of the traversal: the continuous dimensions in the Explore panel's order (most informative first)."""
        spec = self.explore_panel.spec
        return [int(i) for i in self.explore_panel.order if spec.dims[int(i)].kind != "categorical"]

    def request_traversal(self) -> int:
        """Ask the worker for a traversal grid as the Traversal tab's controls describe; the request id (0: none sent).

        Rows follow :meth:`traversal_dims`; the base is the prior mean, the Explore sliders, or the
        posterior mean of a held-out example. The newest answer wins (older ones are not shown).
        """
        dims = self.traversal_dims()
        if self.client.state not in MODEL_STATES or not dims:
            return 0
        p = self.traversal_view.params()
        z = self.explore_panel.z()[None] if p["base"] == "sliders" else None
        index = p["index"] if p["base"] == "example" else None
        rid = next(self._ids)
        command = protocol.Traverse(request_id=rid, z=z, index=index, dims=dims, steps=p["steps"],
                                    low=p["low"], high=p["high"])
        if not self._send(command):
            return 0
        self._traverse_id, self._traverse_at = rid, time.monotonic()
        self._traverse_labels = {rid: [self.explore_panel.row_label(d) for d in dims]}  # labels as asked
        return rid

    def _refresh_traversal(self, force: bool = False, min_age: float = TRAVERSAL_REFRESH_S) -> None:
        """Re-request the traversal when its tab is shown and the last request is ``min_age`` s old."""
        visible = self.central_tabs.currentWidget() is self.traversal_view
        if force or (visible and time.monotonic() - self._traverse_at >= min_age):
            self.request_traversal()

    def _on_traversed(self, event: protocol.Traversed) -> None:
        if event.request_id < self._traverse_shown or event.images is None:
            return  # an older answer than the one shown
        labels = self._traverse_labels.get(event.request_id)
        if labels is None or len(labels) != len(event.dims):
            labels = [self.explore_panel.row_label(int(d)) if int(d) < self.explore_panel.dim else f"z{d}"
                      for d in event.dims]
        try:
            self.traversal_view.set_traversal(event, labels)
        except ValueError as exc:
            self.messages.log(f"Traversal: {exc}", "error")
            return
        self._traverse_shown = event.request_id

    def _on_disentanglement(self, event: protocol.DisentanglementMeasured) -> None:
        if event.mi_matrix is not None:
            self.explore_panel.set_factor_labels(event.mi_matrix, list(event.factor_names))

    # -- interpolation (see studio.interpolation) -------------------------------------------------
    def add_keyframe(self, z: np.ndarray, label: str) -> int:
        """Append keyframe ``z`` (D,) to the Interpolate tab; its position. ValueError if z does not fit."""
        return self.interpolation.add_keyframe(z, label)

    def request_interpolation(self) -> int:
        """Send an Interpolate for the tab's keyframes and settings; the request id (0: none sent)."""
        return self.interpolation.request_interpolation()

    # -- exports ---------------------------------------------------------------------------------
    def export_image(self, path: str | Path) -> Future:
        """Write the decoded image to a PNG (nearest upscaling) on a background thread.

        Raises
        ------
        ValueError
            If nothing has been decoded yet.
        """
        picture = self.decoded_view.picture()
        if picture is None:
            raise ValueError("no decoded image to export yet")
        return self._write_png(picture, path)

    def export_grid(self, path: str | Path) -> Future:
        """Write the sample grid to a PNG on a background thread.

        Raises
        ------
        ValueError
            If no samples have arrived yet.
        """
        picture = self.samples_view.picture()
        if picture is None:
            raise ValueError("no sample grid to export yet")
        return self._write_png(picture, path)

    def export_traversal(self, path: str | Path) -> Future:
        """Write the traversal grid shown, with its row labels and column values, to a PNG on a background thread,
        and beside it (same name, ``.csv``) every cell's latent (:func:`~studio.features.traversal.view.write_traversal_csv`).

        Raises
        ------
        ValueError
            If no traversal has arrived yet.
        """
        view = self.traversal_view
        images = view.picture()
        if images is None or view.shown is None:
            raise ValueError("no traversal to export yet")
        event, labels = view.shown, list(view.labels)
        values = np.asarray(event.values, np.float32)

        def write(x: np.ndarray, p: str) -> None:
            write_traversal_png(x, labels, values, p)
            write_traversal_csv(event, labels, Path(p).with_suffix(".csv"))

        return self._write_png(images, path, writer=write)

    def _write_png(self, picture: np.ndarray, path: str | Path, writer=write_png) -> Future:
        path = str(path)
        future = self._executor.submit(writer, np.array(picture, np.float32), path)

        def done(f: Future) -> None:
            exc = f.exception()
            self._export_done.emit(path, "" if exc is None else f"{path}: {exc}")

        future.add_done_callback(done)
        return future

    def _on_export_done(self, path: str, error: str) -> None:
        if error:
            self.messages.log(f"Export failed: {error}", "error")
            self.statusBar().showMessage(f"Export failed: {error}", 8000)
            self.export_failed.emit(error)
        else:
            self.messages.log(f"Wrote {path}")
            self.statusBar().showMessage(f"Wrote {path}", 5000)
            self.exported.emit(path)

    def _ask_export(self, what: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self, f"Export {what}", f"{what}.png", "PNG images (*.png)")
        if not path:
            return
        try:
            {"image": self.export_image, "grid": self.export_grid, "traversal": self.export_traversal}[what](path)
        except ValueError as exc:
            self.statusBar().showMessage(str(exc), 5000)

    def _ask_save_checkpoint(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save checkpoint", "model.safetensors", "Checkpoints (*.safetensors)")
        if path:
            self.save_checkpoint(path)

    def _ask_load_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load checkpoint", "", "Checkpoints (*.safetensors *.json);;All files (*)")
        if path:
            self.load_checkpoint(path)

    # -- events ----------------------------------------------------------------------------------
    def _on_state(self, state: str) -> None:
        self.status_labels["state"].setText(_STATE_TEXT.get(state, state))
        colour = {"training": "#81c784", "died": "#ff7b7b", "paused": "#ffcc66"}.get(state, "")
        self.status_labels["state"].setStyleSheet(f"color: {colour}; font-weight: bold" if colour else "font-weight: bold")
        self.train_panel.set_state(state)
        can_build = state in ("idle", "ready")
        self.data_panel.set_can_build(can_build, "" if can_build else "Stop training (or start the worker) to rebuild")
        if state == "training":
            self._traverse_timer.start()
        else:
            self._traverse_timer.stop()
        if state == "starting":
            self.statusBar().showMessage("starting worker... (it loads torch first)")
        elif state == "died":
            self.statusBar().showMessage("the worker died; use Worker > Restart worker")

    def _on_started(self, event: protocol.Started) -> None:
        self.status_labels["device"].setText(f"device: {event.device}")
        self.train_panel.set_device(f"{event.device} ({event.threads} threads)" if event.device == "cpu" else event.device)
        self.messages.log(f"Worker {event.pid} up on {event.device}, torch {event.torch_version}")
        self.statusBar().showMessage("worker ready", 3000)

    def _on_ready(self, ready: protocol.Ready) -> None:
        info, spec, caps = ready.data, ready.latent, ready.capabilities
        previous = self.ready_event
        same = previous is not None and previous.model == ready.model and previous.data == ready.data \
            and previous.latent == ready.latent
        if ready.step == 0 or not same:
            self.loss_panel.clear()
            self.coverage_panel.clear()
            self.disentangle_panel.clear()
        else:
            self.loss_panel.truncate(ready.step)
        self.ready_event, self.info = ready, info
        self.data_panel.set_ready(ready)
        self.train_panel.set_hyper(list(ready.hyper))
        self.train_panel.set_progress(ready.step)
        self.status_labels["device"].setText(f"device: {ready.device}")
        self.status_labels["step"].setText(f"step {ready.step:,}")
        self.samples_view.set_data(info)
        self.decoded_view.set_data(info)
        self.coverage_panel.set_data(info, caps)
        self.disentangle_panel.set_data(info, spec.names)
        if (self.coverage_panel.schedule(), self.disentangle_panel.schedule()) != self._default_schedule:
            self.send_metric_schedule()
        self.explore_panel.set_latent(spec)
        self.explore_panel.set_encoder(caps.has_encoder, info.n_test)
        self.traversal_view.set_encoder(caps.has_encoder, info.n_test)
        self.traversal_view.clear()
        self._traverse_shown, self._traverse_at = 0, 0.0
        where = f" from {ready.checkpoint} (step {ready.step:,})" if ready.checkpoint else ""
        self.messages.log(f"Ready: {ready.model} on {ready.data_summary}{where}")
        self._sample_request, self._points_shown = 0, False  # the worker sends a first grid after Ready
        self._request_decode(self.explore_panel.z())
        self._refresh_traversal(min_age=0.0)

    def _on_metrics(self, event: protocol.StepMetrics) -> None:
        self.loss_panel.add_metrics(event)
        self.coverage_panel.check_losses(self.history)
        if event.latent_kl is not None:
            self.explore_panel.set_latent_kl(event.latent_kl)
        step = int(event.steps[-1]) + 1 if event.steps is not None and len(event.steps) else self.client.step
        self.train_panel.set_progress(step, event.steps_per_sec, event.images_per_sec)
        self.status_labels["step"].setText(f"step {step:,}")
        self.status_labels["speed"].setText(f"{event.steps_per_sec:.1f} steps/s")

    def _on_metric_warning(self, message: str) -> None:
        self.messages.log(message, "warning")
        self.statusBar().showMessage(message, 8000)

    def _on_samples(self, event: protocol.Samples) -> None:
        if event.images is None:
            return
        points = event.images.ndim == 2
        if event.request_id == -1:  # the fixed-z grid: the model moved on
            if points and not self._sample_request:  # 64 points are too few to see a density: ask for more
                self._sample_request = next(self._ids)
                self._send(protocol.Sample(request_id=self._sample_request, n=POINT_SAMPLES, seed=0))
            if not (points and self._points_shown):
                self._show_samples(event)
            self._request_decode(self.explore_panel.z())  # redraw the explored z with the new weights
            self._refresh_traversal()  # and the traversal, every few seconds
        elif self._sample_request and event.request_id == self._sample_request:
            self._sample_request, self._points_shown = 0, True
            self._show_samples(event)

    def _show_samples(self, event: protocol.Samples) -> None:
        self.samples_view.set_samples(event.images, event.step)
        if event.images.ndim == 2:
            self.decoded_view.set_samples_backdrop(event.images)

    def _on_decoded(self, event: protocol.Decoded) -> None:
        if event.view == "explore" and event.images is not None and len(event.images):
            self.decoded_view.set_decoded(event.images, event.step)

    def _on_encoded(self, event: protocol.Encoded) -> None:
        index = self._encode_index.pop(event.request_id, None)
        if event.view != "explore" or event.z is None or not len(event.z):
            return
        if event.images is not None and len(event.images):
            title = "Input" if index is None else f"Input: held-out #{index}"
            self.decoded_view.set_input(event.images[0], title)
        self.explore_panel.set_z(event.z[0])

    def _on_hyper_changed(self, event: protocol.HyperparameterChanged) -> None:
        self.train_panel.hyper_changed(event)
        self.loss_panel.add_marker(event.step, f"{event.name}={event.value:.3g}")
        self.messages.log(f"{event.name} = {event.value:g} from step {event.step:,}")

    def _on_checkpoint_saved(self, event: protocol.CheckpointSaved) -> None:
        kind = "Autosaved" if event.autosave else "Saved checkpoint"
        self.statusBar().showMessage(f"{kind} {event.path} (step {event.step:,})", 4000)
        if not event.autosave:
            self.messages.log(f"{kind} {event.path} at step {event.step:,}")

    def _on_progress(self, event: protocol.Progress) -> None:
        total = f"/{event.total}" if event.total else ""
        self.statusBar().showMessage(f"{event.task}: {event.done}{total} {event.message}".strip(), 3000)

    def _on_stopped(self, event: protocol.Stopped) -> None:
        self.messages.log(f"Training {event.reason} at step {event.step:,}", "error" if event.reason == "error" else "info")

    def _on_error(self, event: protocol.Error) -> None:
        where = f"{event.command}: " if event.command else ""
        self.messages.log(f"{where}{event.message}", "error")
        self.statusBar().showMessage(f"Error: {where}{event.message}", 10000)

    def _on_died(self, message: str) -> None:
        restore = self.client.last_checkpoint
        hint = f" Restart to continue from {Path(restore).name}." if restore else " Restart to get a fresh worker."
        self.banner.show_message(f"<b>The worker stopped:</b> {html.escape(message)}.{html.escape(hint)}")
        self.messages.log(f"The worker died: {message}", "error")

    # -- shutdown --------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """Shut the worker down (at most a few seconds) and finish pending exports."""
        self.loss_panel.timer.stop()
        self.client.shutdown(timeout=3.0)
        self._executor.shutdown(wait=True)
        super().closeEvent(event)
