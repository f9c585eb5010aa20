"""Start-up timestamps for ``benchmarks/cold_start.py``: when the window painted, answered, and had a model.

Off unless ``LATENT_STUDIO_TIMINGS`` names a JSON file. Times are seconds since
``LATENT_STUDIO_T0`` (the ``time.time()`` at which the benchmark launched the command; the process's
own start otherwise). With ``LATENT_STUDIO_QUIT_WHEN_READY`` set the studio quits once the first model
is ready, so a benchmark can run it many times.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow

#: When this module was imported (the studio's packages are loading): the fallback zero.
_IMPORTED = time.time()


class StartupTimings(QObject):
    """Records ``first_paint``, ``answers_clicks`` (the event loop ran a queued call after the window
    showed), ``worker_started`` and ``model_ready`` in seconds, and writes them to ``path`` at model_ready.

    Parameters
    ----------
    window : QMainWindow
        The studio window, before ``show()``; its ``client`` has ``started`` and ``ready`` signals.
    path : Path
    t0 : float
        ``time.time()`` of the launch.
    quit_when_ready : bool
    """

    def __init__(self, window: QMainWindow, path: Path, t0: float, quit_when_ready: bool = False) -> None:
        super().__init__(window)
        self.path, self.t0, self.quit_when_ready = Path(path), float(t0), quit_when_ready
        self.times: dict[str, float] = {"window_built": time.time() - self.t0}
        window.installEventFilter(self)
        window.client.started.connect(lambda _e: self.mark("worker_started"))
        window.client.ready.connect(self._ready)
        QTimer.singleShot(0, lambda: self.mark("answers_clicks"))

    @classmethod
    def from_env(cls, window: QMainWindow) -> StartupTimings | None:
        """The timings the environment asks for (see the module docstring), or None."""
        path = os.environ.get("LATENT_STUDIO_TIMINGS")
        if not path:
            return None
        t0 = float(os.environ.get("LATENT_STUDIO_T0", _IMPORTED))
        return cls(window, Path(path), t0, bool(os.environ.get("LATENT_STUDIO_QUIT_WHEN_READY")))

    def mark(self, name: str) -> None:
        """Record ``name`` once, at now."""
        self.times.setdefault(name, time.time() - self.t0)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        """The window's first paint."""
        if event.type() == QEvent.Type.Paint:
            self.mark("first_paint")
        return False

    def _ready(self, _event: object) -> None:
        self.mark("model_ready")
        self.path.write_text(json.dumps(self.times, indent=2))
        if self.quit_when_ready:
            QTimer.singleShot(0, QApplication.instance().quit)
