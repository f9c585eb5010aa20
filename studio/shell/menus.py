"""The window's menus, their keyboard shortcuts, and Help > Keyboard shortcuts.

Every shortcut lives on a menu action, so the Help box lists exactly what works. Space is Start /
Pause / Resume (a text field being edited keeps its own Space), F10 trains one step, Ctrl+B builds,
Ctrl+1 to Ctrl+6 switch the central tabs.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox

from engines.shared import protocol

#: The main window (studio.shell.window.MainWindow; not imported here, which would be a cycle).
MainWindow = Any


def _action(window: MainWindow, menu: QMenu, text: str, slot, shortcut: QKeySequence | None = None) -> QAction:  # noqa: ANN001
    act = QAction(text, window)
    if shortcut is not None:
        act.setShortcut(shortcut)
    act.triggered.connect(slot)
    menu.addAction(act)
    return act


def build_menus(w: MainWindow) -> dict[str, QAction]:
    """File, Train, Worker, View and Help on ``w``'s menu bar; the Train menu's actions by name."""
    bar = w.menuBar()
    file_menu = bar.addMenu("&File")
    _action(w, file_menu, "Open data file...", w.data_panel.open_file_dialog, QKeySequence(QKeySequence.StandardKey.Open))
    _action(w, file_menu, "Open data folder...", w.data_panel.open_folder_dialog)
    file_menu.addSeparator()
    _action(w, file_menu, "Load checkpoint...", lambda: ask_load_checkpoint(w))
    _action(w, file_menu, "Resume run...", lambda: ask_resume_run(w))
    demo_menu = file_menu.addMenu("Open demo")
    for name, path in demos().items():
        _action(w, demo_menu, name, lambda _=False, path=path: open_demo(w, path)).setToolTip(str(path))
    if demo_menu.isEmpty():
        none = demo_menu.addAction("(none here: python assets/make_demos.py makes them)")
        none.setEnabled(False)
    _action(w, file_menu, "Save checkpoint...", lambda: ask_save_checkpoint(w), QKeySequence(QKeySequence.StandardKey.Save))
    file_menu.addSeparator()
    _action(w, file_menu, "Export image...", lambda: ask_png(w, "image", w.samples.export_image), QKeySequence("Ctrl+E"))
    _action(w, file_menu, "Export grid...", lambda: ask_png(w, "grid", w.samples.export_grid))
    _action(w, file_menu, "Export traversal...", w.traversal.ask_export_png)
    _action(w, file_menu, "Export interpolation GIF...", lambda: w.interpolation.ask_export("gif"))
    _action(w, file_menu, "Export interpolation MP4...", lambda: w.interpolation.ask_export("mp4"))
    _action(w, file_menu, "Export training time-lapse...", lambda: w.timelapse.ask_export(w))
    file_menu.addSeparator()
    _action(w, file_menu, "Add run folder...", lambda: ask_run_folder(w))
    _action(w, file_menu, "Export run comparison CSV...", lambda: ask_runs_export(w, "csv"))
    _action(w, file_menu, "Export run comparison PNG...", lambda: ask_runs_export(w, "png"))
    file_menu.addSeparator()
    _action(w, file_menu, "Quit", w.close, QKeySequence("Ctrl+Q"))

    train_menu = bar.addMenu("&Train")
    actions = {
        "start_pause": _action(w, train_menu, "Start / Pause / Resume", w.toggle_training, QKeySequence(Qt.Key.Key_Space)),
        "step": _action(w, train_menu, "Train one step", lambda: w.train(1), QKeySequence(Qt.Key.Key_F10)),
        "stop": _action(w, train_menu, "Stop", lambda: w.trainer.view.buttons["stop"].click(), QKeySequence("Ctrl+.")),
    }
    train_menu.addSeparator()
    actions["build"] = _action(w, train_menu, "Build model", w.data_panel.build_button.click, QKeySequence("Ctrl+B"))
    train_menu.addSeparator()
    watch = _action(w, train_menu, "Watchdog", lambda on: w.watchdog.configure(enabled=on))
    watch.setCheckable(True)
    watch.setChecked(True)
    watch.setToolTip("Roll training back to the last good state when a loss, weight or gradient turns NaN or spikes, "
                     "or coverage collapses")
    auto = _action(w, train_menu, "Watchdog resumes by itself (halving the learning rate)",
                   lambda on: w.watchdog.configure(auto_resume=on))
    auto.setCheckable(True)
    auto.setToolTip("After a rollback, halve every learning rate and train on instead of pausing")
    actions["watchdog"], actions["watchdog_auto"] = watch, auto
    _action(w, train_menu, "Timeline settings...", lambda: ask_timeline_settings(w)).setToolTip(
        "How often the timeline keeps a snapshot of the model, and how much disk it may use")

    worker_menu = bar.addMenu("&Worker")
    _action(w, worker_menu, "Restart worker", w.restart_worker)
    worker_menu.addSeparator()
    _action(w, worker_menu, "Connect to a remote worker...", lambda: ask_remote_worker(w))
    _action(w, worker_menu, "Use a local worker", lambda: w.client.use_worker(None))

    view_menu = bar.addMenu("&View")
    for i in range(w.central_tabs.count()):
        _action(w, view_menu, f"{w.central_tabs.tabText(i)} tab", lambda _=False, i=i: w.central_tabs.setCurrentIndex(i),
                QKeySequence(f"Ctrl+{i + 1}"))
    view_menu.addSeparator()
    for dock in w.docks.values():
        toggle = dock.toggleViewAction()
        toggle.setToolTip(f"Show or hide the {dock.windowTitle().replace('&&', '&')} dock")
        view_menu.addAction(toggle)
    view_menu.addSeparator()
    _action(w, view_menu, "Reset layout", w.dock_layout.reset)

    help_menu = bar.addMenu("&Help")
    _action(w, help_menu, "Keyboard shortcuts", lambda: show_shortcuts(w), QKeySequence(QKeySequence.StandardKey.HelpContents))
    return actions


#: Where the demo runs live: ``assets/demos`` beside the packages, in a source checkout.
DEMOS_DIR = Path(__file__).resolve().parents[2] / "assets" / "demos"


def demos(folder: Path = DEMOS_DIR) -> dict[str, Path]:
    """The demo run folders (each with a ``model.safetensors``) by name, sorted; {} when there are none."""
    if not folder.is_dir():
        return {}
    return {p.name: p for p in sorted(folder.iterdir()) if (p / "model.safetensors").is_file()}


def open_demo(w: MainWindow, path: Path) -> None:
    """File > Open demo: load a demo run (asking first if that would discard a trained model)."""
    w.data_model.confirm_discard(lambda: w.load_checkpoint(path), f"Opening the demo {path.name}")


def shortcuts(w: MainWindow) -> list[tuple[str, str]]:
    """Every menu action with a shortcut, in menu order: (the keys as the user types them, what it does)."""
    rows = []
    for menu_action in w.menuBar().actions():
        for act in menu_action.menu().actions():
            if not act.shortcut().isEmpty():
                text = act.text().replace("&&", "\x00").replace("&", "").replace("\x00", "&")
                rows.append((act.shortcut().toString(QKeySequence.SequenceFormat.NativeText), text))
    return rows


def show_shortcuts(w: MainWindow) -> QMessageBox:
    """Help > Keyboard shortcuts: a non-modal box listing :func:`shortcuts`."""
    rows = "".join(f"<tr><td><b>{html.escape(k)}</b>&nbsp;&nbsp;</td><td>{html.escape(t)}</td></tr>"
                   for k, t in shortcuts(w))
    box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts", f"<table>{rows}</table>",
                      QMessageBox.StandardButton.Close, w)
    box.setModal(False)
    box.show()
    w.shortcut_box = box
    return box


def ask_png(w: MainWindow, what: str, export) -> None:  # noqa: ANN001 - a feature's export(path)
    """Ask for a PNG path and ``export(path)``; a refusal goes to the status bar."""
    path, _ = QFileDialog.getSaveFileName(w, f"Export {what}", f"{what}.png", "PNG images (*.png)")
    if path:
        try:
            export(path)
        except ValueError as exc:
            w.statusBar().showMessage(str(exc), 5000)


def ask_run_folder(w: MainWindow) -> None:
    """File > Add run folder: list a run trained elsewhere (``latent-studio train --out``) in the Runs dock."""
    path = QFileDialog.getExistingDirectory(w, "Add run folder (holding model.safetensors)")
    if path:
        if not (Path(path) / "model.safetensors").is_file():
            w.statusBar().showMessage(f"{path}: no model.safetensors here, so it is not a run", 5000)
            return
        w.runs.add_folder(path)
        w.docks["Runs"].raise_()


def ask_runs_export(w: MainWindow, kind: str) -> None:
    """Export the Runs dock's comparison as CSV (the table) or PNG (curves, samples and table)."""
    if kind == "png":
        ask_png(w, "run comparison", w.runs.export_png)
        return
    path, _ = QFileDialog.getSaveFileName(w, "Export run comparison", "runs.csv", "CSV files (*.csv)")
    if path:
        try:
            w.runs.export_csv(path)
        except ValueError as exc:
            w.statusBar().showMessage(str(exc), 5000)


def ask_directions_file(w: MainWindow, what: str) -> None:
    """The Directions tab's files: "save" / "load" a direction set (JSON), or export a traversal along it ("png", "gif")."""
    d = w.directions
    start = str(d.default_path())
    try:
        if what == "save":
            path, _ = QFileDialog.getSaveFileName(w, "Save directions", start, "Direction sets (*.json)")
            if path:
                d.save(path)
        elif what == "load":
            path, _ = QFileDialog.getOpenFileName(w, "Load directions", start, "Direction sets (*.json);;All files (*)")
            if path:
                d.load(path)
        else:
            name = str(Path(start).with_name(f"directions-traversal.{what}"))
            path, _ = QFileDialog.getSaveFileName(w, "Export a traversal along the directions", name,
                                                  "PNG images (*.png)" if what == "png" else "GIF animations (*.gif)")
            if path:
                d.export(path)
    except ValueError as exc:  # ConfigError is a ValueError: a bad file, named
        w.statusBar().showMessage(str(exc), 8000)
        w.messages.log(str(exc), "warning")


def ask_save_checkpoint(w: MainWindow) -> None:
    """File > Save checkpoint."""
    path, _ = QFileDialog.getSaveFileName(w, "Save checkpoint", "model.safetensors", "Checkpoints (*.safetensors)")
    if path:
        w.save_checkpoint(path)


def ask_load_checkpoint(w: MainWindow) -> None:
    """File > Load checkpoint."""
    path, _ = QFileDialog.getOpenFileName(w, "Load checkpoint", "", "Checkpoints (*.safetensors *.json);;All files (*)")
    if path:
        w.load_checkpoint(path)


def ask_resume_run(w: MainWindow) -> None:
    """File > Resume run: continue a run folder exactly where it stopped, its curves and markers restored."""
    path = QFileDialog.getExistingDirectory(w, "Resume run (a folder holding model.safetensors)")
    if path:
        if not (Path(path) / "model.safetensors").is_file():
            w.statusBar().showMessage(f"{path}: no model.safetensors here, so there is no run to resume", 5000)
            return
        # the worker restores weights, optimisers, data order and generators, sends the run's curves and
        # hyperparameter markers back, and autosaves into that folder
        w.data_model.confirm_discard(lambda: w.services.send(protocol.LoadCheckpoint(path=path, resume=True)),
                                     f"Resuming the run in {path}")


def ask_remote_worker(w: MainWindow) -> None:
    """Worker > Connect to a remote worker: its HOST:PORT and the token it printed (``latent-studio worker --listen``)."""
    from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit

    dialog = QDialog(w)
    dialog.setWindowTitle("Connect to a remote worker")
    address, token = QLineEdit(w.client.remote or "127.0.0.1:5555"), QLineEdit()
    token.setEchoMode(QLineEdit.EchoMode.Password)
    address.setToolTip("Where `latent-studio worker --listen PORT` listens; through an SSH tunnel (ssh -L), 127.0.0.1:PORT")
    token.setToolTip("The token the worker printed when it started")
    form = QFormLayout(dialog)
    form.addRow(QLabel("Start one on the server with: latent-studio worker --listen 5555\n"
                       "then tunnel it here: ssh -L 5555:127.0.0.1:5555 server"))
    form.addRow("Address", address)
    form.addRow("Token", token)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    form.addRow(buttons)

    def connect() -> None:
        w.messages.log(f"Connecting to the worker at {address.text().strip()}")
        w.client.use_worker(address.text().strip(), token.text().strip())

    dialog.accepted.connect(connect)
    w.remote_dialog = dialog
    dialog.open()  # window-modal, never blocking the event loop


def ask_timeline_settings(w: MainWindow) -> None:
    """Train > Timeline settings: a snapshot every N steps, within M megabytes of the run's disk."""
    from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QSpinBox

    state = w.timeline.state
    dialog = QDialog(w)
    dialog.setWindowTitle("Timeline settings")
    every, budget = QSpinBox(), QSpinBox()
    every.setRange(1, 10**9)
    every.setValue(state.every or 250)
    every.setSuffix(" steps")
    every.setToolTip("Steps between two snapshots of the model (weights, optimisers, data order, generators)")
    budget.setRange(1, 2**24)
    budget.setValue(max(1, state.max_bytes // 2**20) if state.max_bytes else 512)
    budget.setSuffix(" MB")
    budget.setToolTip("Disk the run's snapshots may use; past it the snapshot closest to its neighbours goes")
    form = QFormLayout(dialog)
    form.addRow("A snapshot every", every)
    form.addRow("Disk budget", budget)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    form.addRow(buttons)
    dialog.accepted.connect(lambda: w.timeline.configure(every.value(), budget.value()))
    w.timeline_dialog = dialog
    dialog.open()  # window-modal, never blocking the event loop
