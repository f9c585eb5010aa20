"""The Runs dock's controller: runs read off the GUI thread, the picked ones compared, exports written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from engines.shared.runs import find_runs, register_run
from studio.features.runs.state import Comparison
from studio.features.runs.view import RunsPanel
from studio.services import Services

#: Largest samples.png read, bytes; a larger one is left out (the run still lists).
MAX_SAMPLES_BYTES = 8 * 2**20


def _read_samples(path: Path) -> np.ndarray | None:
    """samples.png as (C, H, W) float32 in [0, 1], or None when it cannot be read (Pillow, no pickle)."""
    from PIL import Image

    try:
        if path.stat().st_size > MAX_SAMPLES_BYTES:
            return None
        with Image.open(path, formats=("PNG",)) as im:  # never a decoder picked by the file's content
            arr = np.asarray(im.convert("L" if im.mode in ("1", "L", "LA", "I;16") else "RGB"), np.float32) / 255.0
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return arr[None] if arr.ndim == 2 else np.transpose(arr, (2, 0, 1))


def load_runs(home: Path | None = None) -> tuple[list, dict[str, np.ndarray]]:
    """Every run (:func:`engines.shared.runs.find_runs`) and its samples picture, keyed by folder."""
    records = find_runs(home)
    samples = {}
    for rec in records:
        if rec.samples is not None and (picture := _read_samples(rec.samples)) is not None:
            samples[str(rec.path)] = picture
    return records, samples


class RunsController(QObject):
    """Drives a :class:`RunsPanel`: :meth:`refresh` reads the runs on the export thread, the picked runs
    are compared as the selection changes, :meth:`export_csv` and :meth:`export_png` write files.

    Signals
    -------
    loaded(list, dict)
        Runs read (emitted from the export thread; delivered on the GUI thread).
    """

    loaded = Signal(object, object)
    _wanted = Signal()  # a refresh asked for from the file thread

    def __init__(self, services: Services, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.services = services
        self.view = RunsPanel()
        self.samples: dict[str, np.ndarray] = {}
        self.comparison = Comparison([])
        self._pending = False
        self._soon = QTimer(self)
        self._soon.setSingleShot(True)
        self._soon.setInterval(1500)
        self._soon.timeout.connect(self.refresh)
        self.loaded.connect(self._on_loaded)
        self._wanted.connect(self.refresh_soon)
        self.view.refresh_requested.connect(self.refresh)
        self.view.selection_changed.connect(self._compare)

    def refresh(self) -> None:
        """Read every run again, off the GUI thread (one read at a time)."""
        if self._pending:
            self._soon.start()
            return
        self._pending = True
        self.view.status.setText("reading runs...")

        def done(future: Any) -> None:
            try:
                records, samples = future.result()
            except Exception as exc:  # noqa: BLE001 - shown, never raised into Qt
                records, samples = [], {"error": str(exc)}
            self.loaded.emit(records, samples)

        try:
            self.services.submit(load_runs).add_done_callback(done)
        except RuntimeError:  # the window is closing: its file thread has stopped
            self._pending = False

    def refresh_soon(self) -> None:
        """Refresh in a moment (an autosave just wrote a run), coalescing bursts."""
        self._soon.start()

    def add_folder(self, path: str | Path) -> None:
        """Register a run folder outside the studio's home (``runs.json``) and list it."""
        try:
            self.services.submit(register_run, Path(path)).add_done_callback(lambda _f: self._wanted.emit())
        except RuntimeError:  # closing
            pass

    def close(self) -> None:
        """No more refreshes (the window is closing)."""
        self._soon.stop()
        self._pending = True

    def _on_loaded(self, records: list, samples: dict) -> None:
        self._pending = False
        if "error" in samples:
            self.services.notify(f"Could not read the runs: {samples['error']}", "error")
            samples = {}
        self.samples = samples
        self.view.set_runs(records)

    def _compare(self) -> None:
        self.comparison = Comparison(self.view.picked())
        self.view.show_comparison(self.comparison, self.samples)

    def export_csv(self, path: str | Path) -> None:
        """Write the comparison table as CSV (off the GUI thread; reported in the status bar).

        Raises
        ------
        ValueError
            No run is picked.
        """
        text = self._checked().to_csv()
        self._export(path, lambda target: Path(target).write_text(text, encoding="utf-8"))

    def export_png(self, path: str | Path) -> None:
        """Write a PNG of the comparison (curves, samples and table) as it is on screen.

        Raises
        ------
        ValueError
            No run is picked.
        """
        self._checked()
        image = self.view.splitter.grab().toImage()  # a QImage: safe to save on another thread

        def write(target: str) -> None:
            if not image.save(target, "PNG"):
                raise OSError(f"{target}: the PNG could not be written")

        self._export(path, write)

    def _checked(self) -> Comparison:
        if not self.comparison.records:
            raise ValueError("Pick runs in the Runs dock first")
        return self.comparison

    def _export(self, path: str | Path, write: Any) -> None:
        """``write(path)`` on the file thread, reported in the status bar when it ends."""
        target = str(path)

        def done(f: Any) -> None:
            exc = f.exception()
            self.services.report_file(target, "" if exc is None else f"{target}: {exc}")

        self.services.submit(write, target).add_done_callback(done)
