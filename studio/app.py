"""Starting the studio: the QApplication, the theme, the window and its worker."""

from __future__ import annotations

import sys
from pathlib import Path

import pyqtgraph as pg
from pyqtgraph.util.garbage_collector import GarbageCollector
from PySide6.QtCore import QSettings
from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication

from studio.shell.window import MainWindow
from studio.timings import StartupTimings

#: The window's icon (assets/, beside the packages).
ICON = Path(__file__).resolve().parents[1] / "assets" / "icon.png"


def create_application(argv: list[str] | None = None) -> QApplication:
    """The running QApplication (made if needed) with the studio's dark Fusion theme and pyqtgraph options.

    A new application also moves Python's cyclic garbage collection onto a one-second GUI timer
    (pyqtgraph's ``GarbageCollector``), so a collection never runs inside a Qt call.
    """
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(sys.argv[:1] if argv is None else ["latent-studio", *argv]))
        if ICON.is_file():  # in a source checkout (assets/ is not part of the installed packages)
            app.setWindowIcon(QIcon(str(ICON)))
        # Python's cyclic collector, left to run at any allocation, can destroy a QObject while Qt is inside
        # QObject::disconnect on the same thread and deadlock on Qt's mutex; collect on a GUI timer instead.
        app._garbage_collector = GarbageCollector(interval=1.0)  # type: ignore[attr-defined]
    app.setApplicationName("Latent Studio")
    pg.setConfigOptions(imageAxisOrder="row-major")
    apply_theme(app)
    return app


def apply_theme(app: QApplication) -> None:
    """A dark Fusion palette that matches the plots' dark backgrounds."""
    app.setStyle("Fusion")
    p = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#2b2d31", QPalette.ColorRole.WindowText: "#e3e3e3",
        QPalette.ColorRole.Base: "#1e1f22", QPalette.ColorRole.AlternateBase: "#2b2d31",
        QPalette.ColorRole.ToolTipBase: "#3c3f44", QPalette.ColorRole.ToolTipText: "#e3e3e3",
        QPalette.ColorRole.Text: "#e3e3e3", QPalette.ColorRole.Button: "#3a3d42",
        QPalette.ColorRole.ButtonText: "#e3e3e3", QPalette.ColorRole.BrightText: "#ff6b6b",
        QPalette.ColorRole.Highlight: "#3d7bd9", QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#6ea8ff", QPalette.ColorRole.PlaceholderText: "#8a8a8a",
    }
    for role, colour in colours.items():
        p.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#75787d"))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Button, QColor("#303236"))
    app.setPalette(p)


def main(argv: list[str] | None = None, data: str = "shapes", model: str = "beta-vae", remote: str | None = None,
         token: str | None = None) -> int:
    """Open the studio: show the window, start the worker, and build ``model`` on ``data`` once it is up.

    Parameters
    ----------
    argv : list of str, optional
        Extra Qt arguments.
    data : str
        Data spec built at start-up.
    model : str
        Registry name built at start-up.
    remote, token : str or None
        Drive the worker listening at "HOST:PORT" (``latent-studio worker --listen``) with its token instead
        of starting one here.

    Returns
    -------
    int
        The Qt event loop's exit code; 2 for an unknown model.
    """
    app = create_application(argv)
    window = MainWindow()
    window.client.remote, window.client.token = remote, token
    window.startup_timings = StartupTimings.from_env(window)  # benchmarks/cold_start.py; None normally
    window.set_data_spec(data)
    try:
        window.data_panel.set_model(model)
    except KeyError as exc:
        print(f"latent-studio: {exc.args[0]}", file=sys.stderr)
        return 2
    screen = app.primaryScreen().availableGeometry() if app.primaryScreen() is not None else None
    if screen is not None:  # room to work on a 1920x1080 screen, and never larger than a laptop's
        window.resize(min(1600, screen.width()), min(1000, screen.height()))
    else:
        window.resize(1366, 768)
    window.dock_layout.fit(window.width(), window.height())
    window.dock_layout.restore(QSettings("Latent Studio", "Latent Studio"))  # the last session's docks, if any
    window.show()
    window.start_worker()

    def first_build(_event: object) -> None:
        window.client.started.disconnect(first_build)
        window.configure()

    window.client.started.connect(first_build)
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main())
