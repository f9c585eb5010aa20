"""The shell: docks, tabs, menus and the status bar over the features, and the signals that tie them.

Every feature (:mod:`studio.features`) is built here from the shared :class:`~studio.services.Services`
and knows nothing of the others; a cross-feature action ("use this image as a keyframe", "the slider
point moved") is a signal this module connects. Nothing here waits on the worker.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QVBoxLayout, QWidget

from engines.shared import protocol
from engines.shared.runs import write_metrics_csv
from studio.client import WorkerClient
from studio.features.browser.controller import BrowserController
from studio.features.coverage.controller import CoverageController
from studio.features.data_model.controller import DataModelController
from studio.features.directions.controller import DirectionsController
from studio.features.codes.controller import CodesController
from studio.features.energy.controller import EnergyController
from studio.features.disentanglement.controller import DisentanglementController
from studio.features.explore.controller import ExploreController
from studio.features.interpolate.controller import InterpolateController
from studio.features.latent_map.controller import MapController
from studio.features.losses.controller import LossesController
from studio.features.morph.controller import MorphController
from studio.features.flows.controller import FlowController
from studio.features.pixels.controller import PixelsController
from studio.features.runs.controller import RunsController
from studio.features.samples.controller import SamplesController
from studio.features.timelapse.controller import TimeLapse
from studio.features.train.controller import TrainController
from studio.features.timeline.controller import TimelineController
from studio.features.traversal.controller import TraversalController
from studio.features.watchdog.controller import WatchdogController
from studio.services import Services
from studio.shell.layout import DockLayout
from studio.shell.menus import ask_directions_file, ask_run_folder, ask_runs_export, build_menus
from studio.shell.tooltips import apply_tooltips
from studio.state import LossHistory
from studio.widgets.basic import Banner, FpsCounter, MessageLog
from studio.widgets.scrolling import ScrollingTabs, scrollable

_STATE_TEXT = {
    "stopped": "no worker", "starting": "starting worker...", "idle": "worker up, no model",
    "configuring": "building model...", "ready": "ready", "training": "training", "paused": "paused",
    "died": "worker died",
}
#: Status-bar milliseconds a notice stays, by level.
_NOTICE_MS = {"info": 5000, "warning": 8000, "error": 10000}


def _stacked(top: QWidget, bottom: QWidget) -> QWidget:
    """``top`` over ``bottom`` in one page (the loss plot over the timeline bar), ``top`` taking the height."""
    page = QWidget()
    layout = QVBoxLayout(page)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(top, 1)
    layout.addWidget(bottom)
    return page


class MainWindow(QMainWindow):
    """Latent Studio's window.

    Parameters
    ----------
    client : WorkerClient, optional
        The worker to drive; a new, not yet started one by default (see :meth:`start_worker`).

    Attributes
    ----------
    services : Services
        What the features share. Each feature's controller and view are attributes too
        (``explore`` and ``explore_panel``, ``traversal`` and ``traversal_view``, ...).
    exported, export_failed : Signal(str)
        The services' signals: a file was written (its path) / could not be (the reason).
    """

    def __init__(self, client: WorkerClient | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        pg.setConfigOptions(imageAxisOrder="row-major")
        self.setWindowTitle("Latent Studio")
        self.client = client if client is not None else WorkerClient(parent=self)
        self.services = s = Services(self.client, parent=self)
        self.exported, self.export_failed = s.exported, s.export_failed
        self.fps = FpsCounter(parent=self)
        self.history = LossHistory()
        self.messages = MessageLog()
        self.banner = Banner("Restart worker")

        # features, in the order their slots run for a shared event (losses before coverage reads them)
        self.data_model = DataModelController(s)
        self.trainer = TrainController(s)
        self.losses = LossesController(s, self.history, fps=self.fps)
        self.coverage = CoverageController(s, self.history)
        self.runs = RunsController(s)
        self.disentanglement = DisentanglementController(s)
        self.samples = SamplesController(s, fps=self.fps)
        self.explore = ExploreController(s)
        self.traversal = TraversalController(s)
        self.interpolation = InterpolateController(s)
        self.morph = MorphController(s)
        self.pixels = PixelsController(s)
        self.flow = FlowController(s)
        self.browser = BrowserController(s)
        self.directions = DirectionsController(s)
        self.latent_map = MapController(s)
        self.energy = EnergyController(s)
        self.codes = CodesController(s)
        self.timelapse = TimeLapse(s)
        self.watchdog = WatchdogController(s)
        self.timeline = TimelineController(s)
        # the views, by the names the rest of the studio knows them
        self.data_panel, self.train_panel, self.loss_panel = self.data_model.view, self.trainer.view, self.losses.view
        self.coverage_panel, self.disentangle_panel = self.coverage.view, self.disentanglement.view
        self.samples_view, self.decoded_view = self.samples.samples_view, self.samples.decoded_view
        self.explore_panel, self.traversal_view = self.explore.view, self.traversal.view
        self.interpolate_view = self.interpolation.view
        self.directions_view, self.map_view = self.directions.view, self.latent_map.view

        self._build_central()
        self.docks: dict[str, QDockWidget] = {}
        self._build_docks()
        self._build_status_bar()
        self.dock_layout = DockLayout(self, self.docks, raised=("Data & Model", "Losses"))
        self.shortcut_actions = build_menus(self)
        apply_tooltips(self)
        self._connect()
        self._on_state(self.client.state)

    # -- construction ----------------------------------------------------------------------------
    def _build_central(self) -> None:
        self.central_tabs = ScrollingTabs()
        self.central_tabs.setDocumentMode(True)
        for widget, title in ((self.samples.view, "Samples && decode"), (self.traversal_view, "Traversal"),
                              (self.interpolate_view, "Interpolate"), (self.morph.view, "Morph"),
                              (self.pixels.view, "Pixels"), (self.flow.view, "Flow"),
                              (self.directions.view, "Directions"), (self.latent_map.view, "Map"),
                              (self.energy.view, "Energy"), (self.codes.view, "Codes")):
            self.central_tabs.addTab(widget, title)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.banner)
        layout.addWidget(self.watchdog.view)
        layout.addWidget(self.central_tabs, 1)
        self.setCentralWidget(central)

    def _build_docks(self) -> None:
        left, right, bottom = (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea,
                               Qt.DockWidgetArea.BottomDockWidgetArea)
        # the side docks run the full height; the bottom ones sit under the central tabs only
        self.setCorner(Qt.Corner.BottomLeftCorner, left)
        self.setCorner(Qt.Corner.BottomRightCorner, right)
        for title, widget, area in (
            ("Data & Model", self.data_panel, left), ("Train", self.train_panel, left),
            ("Explore", self.explore_panel, right), ("Losses", _stacked(self.loss_panel, self.timeline.view), bottom),
            ("Messages", self.messages, bottom), ("Coverage", self.coverage_panel, bottom),
            ("Disentanglement", self.disentangle_panel, bottom), ("Data set", self.browser.view, left),
            ("Runs", self.runs.view, bottom),
        ):
            dock = QDockWidget(title.replace("&", "&&"), self)
            dock.setObjectName(title)
            dock.setWidget(scrollable(widget))
            dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable  # closable: View can toggle it
                             | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                             | QDockWidget.DockWidgetFeature.DockWidgetClosable)
            self.addDockWidget(area, dock)
            self.docks[title] = dock
        self.tabifyDockWidget(self.docks["Data & Model"], self.docks["Data set"])
        self.docks["Data & Model"].raise_()
        for title in ("Coverage", "Disentanglement", "Runs", "Messages"):
            self.tabifyDockWidget(self.docks["Losses"], self.docks[title])
        self.docks["Losses"].raise_()
        self.resizeDocks([self.docks["Data & Model"], self.docks["Explore"]], [290, 330], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["Losses"]], [270], Qt.Orientation.Vertical)

    def _build_status_bar(self) -> None:
        self.status_labels = {k: QLabel() for k in ("state", "device", "step", "speed", "fps")}
        for label in self.status_labels.values():
            label.setContentsMargins(8, 0, 8, 0)
            self.statusBar().addPermanentWidget(label)
        for key, text in (("device", "device: -"), ("step", "step 0"), ("speed", "0.0 steps/s"), ("fps", "0 fps")):
            self.status_labels[key].setText(text)

    def toggle_training(self) -> None:
        """Space: Start when ready, Pause while training, Resume when paused (what the Train dock enables)."""
        for name in ("start", "pause", "resume"):
            button = self.trainer.view.buttons[name]
            if button.isEnabled():
                button.click()
                return

    def _connect(self) -> None:
        c, s = self.client, self.services
        c.state_changed.connect(self._on_state)
        c.started.connect(self._on_started)
        c.ready.connect(self._on_ready)
        c.metrics.connect(self._on_metrics)
        c.checkpoint_saved.connect(self._on_checkpoint_saved)
        c.progress.connect(self._on_progress)
        c.stopped.connect(self._on_stopped)
        c.error.connect(self._on_error)
        c.warned.connect(lambda e: self.messages.log(f"Worker warning ({e.category}, {e.where}): {e.message}", "warning"))
        c.worker_died.connect(self._on_died)
        s.notice.connect(self._on_notice)
        # the timeline: the past model's samples and Explore image, a cursor on every plot over steps
        cursors = (self.loss_panel.time_cursor, self.coverage_panel.time_cursor, self.disentangle_panel.time_cursor)
        self.timeline.shown.connect(self.samples.show_past)
        self.timeline.shown.connect(lambda step, *_: [c.set(step) for c in cursors])
        self.timeline.live.connect(self.samples.show_live)
        self.timeline.live.connect(lambda: [c.set(None) for c in cursors])
        self.explore.point_changed.connect(self.timeline.set_point)
        # a rollback: marked on the loss plot, logged
        self.watchdog.marker.connect(self.loss_panel.add_marker)
        self.watchdog.tripped.connect(self._on_rollback)
        # the slider point and the rows follow Explore
        self.explore.point_changed.connect(self.traversal.set_point)
        self.explore.point_changed.connect(self.interpolation.set_point)
        self.explore.point_changed.connect(self.morph.set_point)
        self.explore.point_changed.connect(self.directions.set_point)
        self.explore.point_changed.connect(self.latent_map.set_point)
        # directions and the map move the Explore point; a drawn path becomes keyframes, a lasso a group
        self.directions.point_requested.connect(self.go_to_point)
        self.latent_map.point_requested.connect(self.go_to_point)
        self.latent_map.path_drawn.connect(self._use_path)
        self.latent_map.group_selected.connect(self.directions.set_group)
        self.interpolate_view.keyframes_changed.connect(
            lambda: self.latent_map.set_path(self.interpolate_view.keyframes()))
        self.directions.view.save_requested.connect(lambda: ask_directions_file(self, "save"))
        self.directions.view.load_requested.connect(lambda: ask_directions_file(self, "load"))
        self.directions.view.export_requested.connect(lambda kind: ask_directions_file(self, kind))
        self.explore.rows_changed.connect(self.traversal.set_rows)
        self.explore.input_shown.connect(self.samples.show_input)
        # new weights: decode the slider point again, refresh the traversal
        self.samples.weights_changed.connect(self.explore.decode)
        self.samples.weights_changed.connect(lambda: self.traversal.refresh())
        self.samples.weights_changed.connect(self.latent_map.on_weights)
        self.central_tabs.currentChanged.connect(
            lambda _i: self.traversal.set_visible(self.central_tabs.currentWidget() is self.traversal_view))
        # the browser's thumbnail actions go to the feature that does them
        self.browser.example_chosen.connect(self._use_example)
        self.browser.image_chosen.connect(self._use_image)
        self.browser.drop_received.connect(lambda: self.docks["Data set"].raise_())
        self.browser.accept_drops_on(self)
        self.coverage_panel.schedule_changed.connect(self.send_metric_schedule)
        self.runs.view.add_folder_requested.connect(lambda: ask_run_folder(self))
        self.runs.view.export_requested.connect(lambda kind: ask_runs_export(self, kind))
        self.runs.refresh()
        self.disentangle_panel.schedule_changed.connect(self.send_metric_schedule)
        self.banner.button.clicked.connect(self.restart_worker)
        self.fps.fps_updated.connect(lambda f: self.status_labels["fps"].setText(f"{f:.0f} fps"))

    def go_to_point(self, z) -> None:  # noqa: ANN001 - (D,) float32
        """Move the Explore point to ``z`` (its sliders and image follow, and every feature that tracks it)."""
        if len(np.asarray(z).reshape(-1)) == self.explore_panel.dim:
            self.explore_panel.set_z(np.asarray(z, np.float32).reshape(-1))

    def _use_path(self, keyframes) -> None:  # noqa: ANN001 - (K, D) float32
        """A path drawn on the map: the Interpolate tab's keyframes, rendered."""
        self.interpolate_view.clear_keyframes()
        for i, z in enumerate(np.asarray(keyframes, np.float32)):
            self.interpolation.add_keyframe(z, f"map path {i + 1}")
        self.central_tabs.setCurrentWidget(self.interpolate_view)
        self.interpolation.request_interpolation()

    def _use_example(self, action: str, index: int) -> None:
        targets = {"sliders": self.explore.encode_example, "keyframe": self.interpolation.add_example,
                   "morph-a": lambda i: self.morph.set_from_example("A", i),
                   "morph-b": lambda i: self.morph.set_from_example("B", i),
                   **{f"arith-{s}": (lambda i, s=s: self.directions.use_example(s, i)) for s in "abc"},
                   **{f"group-{s}": (lambda i, s=s: self.directions.add_to_group(s, i)) for s in "ab"}}
        self.browser.track(targets[action](index), f"held-out #{index}")

    def _use_image(self, action: str, image, name: str) -> None:  # noqa: ANN001 - (C, H, W) float32
        targets = {"sliders": self.explore.encode_image, "keyframe": self.interpolation.add_image,
                   "morph-a": lambda x: self.morph.set_from_image("A", x, name),
                   "morph-b": lambda x: self.morph.set_from_image("B", x, name),
                   **{f"arith-{s}": (lambda x, s=s: self.directions.use_image(s, x, name)) for s in "abc"},
                   **{f"group-{s}": (lambda x, s=s: self.directions.add_image_to_group(s, x, name)) for s in "ab"}}
        self.browser.track(targets[action](image), name)

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
        return self.data_model.configure(command, **overrides)

    def set_data_spec(self, spec: str) -> None:
        """Choose the data set by spec (what the file dialogs do); takes effect at the next Build."""
        self.data_panel.set_data_spec(spec)

    def train(self, steps: int | None = None) -> None:
        """Start (or extend) training for ``steps`` steps; None trains until Stop."""
        self.trainer.train(steps)

    def save_checkpoint(self, path: str | Path) -> bool:
        """Ask the worker to save weights to ``path`` (``.safetensors`` is appended if missing)."""
        path = str(path)
        return self.services.send(protocol.SaveCheckpoint(path=path if path.endswith(".safetensors")
                                                          else path + ".safetensors"))

    def load_checkpoint(self, path: str | Path) -> bool:
        """Ask the worker to load a checkpoint file or run folder (answered by Ready or Error)."""
        return self.services.send(protocol.LoadCheckpoint(path=str(path)))

    def send_metric_schedule(self, *_args: object) -> bool:
        """Send the two panels' metric schedules (seconds, 0 = off) as one :class:`SetMetricSchedule`."""
        return self.services.send(protocol.SetMetricSchedule(
            coverage_every=self.coverage_panel.schedule(), disentanglement_every=self.disentangle_panel.schedule()))

    # -- events ----------------------------------------------------------------------------------
    def _on_notice(self, message: str, level: str, status: str) -> None:
        if message:
            self.messages.log(message, level)
        if status:
            self.statusBar().showMessage(status, _NOTICE_MS.get(level, 5000))

    def _on_state(self, state: str) -> None:
        self.status_labels["state"].setText(_STATE_TEXT.get(state, state))
        colour = {"training": "#81c784", "died": "#ff7b7b", "paused": "#ffcc66"}.get(state, "")
        self.status_labels["state"].setStyleSheet(f"color: {colour}; font-weight: bold" if colour else "font-weight: bold")
        if state == "starting":
            self.statusBar().showMessage("starting worker... (it loads torch first)")
        elif state == "died":
            self.statusBar().showMessage("the worker died; use Worker > Restart worker")

    def _on_started(self, event: protocol.Started) -> None:
        self.status_labels["device"].setText(f"device: {event.device}")
        self.messages.log(f"Worker {event.pid} up on {event.device}, torch {event.torch_version}")
        self.statusBar().showMessage("worker ready", 3000)

    def _on_ready(self, ready: protocol.Ready) -> None:
        defaults = protocol.SetMetricSchedule()
        if (self.coverage_panel.schedule(), self.disentangle_panel.schedule()) != (
                defaults.coverage_every, defaults.disentanglement_every):
            self.send_metric_schedule()
        self.status_labels["device"].setText(f"device: {ready.device}")
        self.status_labels["step"].setText(f"step {ready.step:,}")
        self.status_labels["speed"].setText("0.0 steps/s")  # not the previous model's
        where = f" from {ready.checkpoint} (step {ready.step:,})" if ready.checkpoint else ""
        self.messages.log(f"Ready: {ready.model} on {ready.data_summary}{where}")
        self.traversal.refresh(min_age=0.0)

    def _on_metrics(self, event: protocol.StepMetrics) -> None:
        step = int(event.steps[-1]) + 1 if event.steps is not None and len(event.steps) else self.client.step
        self.status_labels["step"].setText(f"step {step:,}")
        self.status_labels["speed"].setText(f"{event.steps_per_sec:.1f} steps/s")

    def _on_checkpoint_saved(self, event: protocol.CheckpointSaved) -> None:
        kind = "Autosaved" if event.autosave else "Saved checkpoint"
        self.statusBar().showMessage(f"{kind} {event.path} (step {event.step:,})", 4000)
        if not event.autosave:
            self.messages.log(f"{kind} {event.path} at step {event.step:,}")
        else:  # the run's curves beside its weights, for the Runs dock (written off the GUI thread)
            h = self.history
            steps = [int(v) for v in h.steps]
            terms = {name: [float(v) for v in h.series(name)[1]] for name in h.names}
            folder = Path(event.path).parent
            self.services.submit(write_metrics_csv, folder / "metrics.csv", steps, terms)
            self.runs.refresh_soon()

    def _on_rollback(self, trip) -> None:  # noqa: ANN001 - a studio.features.watchdog.state.Trip
        self.messages.log(trip.headline(), "warning")
        self.status_labels["step"].setText(f"step {trip.rolled_back_to:,}")
        self.train_panel.set_progress(trip.rolled_back_to)

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
        self.runs.close()
        self.dock_layout.save()
        self.client.shutdown(timeout=3.0)
        self.services.close(wait=True)
        super().closeEvent(event)
