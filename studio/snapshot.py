"""A screenshot of the real studio: open the window, train through the real worker, grab it to PNG.

``latent-studio snapshot --out docs/screenshot.png`` makes the README's picture this way (offscreen
with ``QT_QPA_PLATFORM=offscreen``). Nothing is staged: the worker trains, the sample grid and the
loss plot update live, and a held-out example is encoded so the Explore view shows an input beside
its reconstruction.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEventLoop, QObject, Qt, QTimer, qInstallMessageHandler

from engines.shared import protocol
from studio.app import create_application
from studio.shell.window import MainWindow

#: Held-out example encoded for the Explore view.
EXAMPLE_INDEX = 3


class _Script(QObject):
    """Drives one window through start -> build -> train -> encode and records what has happened."""

    def __init__(self, window: MainWindow, steps: int, loop: QEventLoop) -> None:
        super().__init__(window)
        self.window, self.steps, self.loop = window, steps, loop
        self.failure: str | None = None
        self.final_step = -1
        self.grid_step = -1
        self.encoded = False
        self.decoded_after_encode = False
        self.done = False
        c = window.client
        c.started.connect(lambda _e: window.configure())
        c.ready.connect(self._ready)
        c.samples.connect(self._samples)
        c.stopped.connect(self._stopped)
        c.encoded.connect(self._encoded)
        c.decoded.connect(self._decoded)
        c.error.connect(self._error)
        c.worker_died.connect(lambda msg: self._fail(f"the worker died: {msg}"))
        self._poll = QTimer(self)
        self._poll.timeout.connect(self._check)
        self._poll.start(100)

    def _ready(self, ready: protocol.Ready) -> None:
        if self.final_step < 0 and ready.step == 0:
            self.window.train(self.steps)

    def _samples(self, event: protocol.Samples) -> None:
        if event.request_id == -1:
            self.grid_step = max(self.grid_step, event.step)

    def _stopped(self, event: protocol.Stopped) -> None:
        if event.reason == "error":
            self._fail(f"training ended with an error at step {event.step}")
            return
        self.final_step = event.step
        ready = self.window.services.ready
        if ready is not None and ready.capabilities.has_encoder and ready.data.n_test > EXAMPLE_INDEX:
            self.window.explore.encode_example(EXAMPLE_INDEX)
        elif ready is not None and ready.latent.dim == 0:  # no latent (autoregressive): nothing to decode
            self.encoded = self.decoded_after_encode = True
        else:
            self.encoded = True
            self.window.explore_panel.random_z(seed=1)

    def _encoded(self, _event: protocol.Encoded) -> None:
        self.encoded = True

    def _decoded(self, _event: protocol.Decoded) -> None:
        if self.encoded:
            self.decoded_after_encode = True

    def _error(self, event: protocol.Error) -> None:
        if event.command in ("Configure", "Train", "Encode", "LoadCheckpoint"):
            self._fail(f"{event.command} failed: {event.message}")

    def _fail(self, message: str) -> None:
        if self.failure is None:
            self.failure = message
        self.loop.quit()

    def _check(self) -> None:
        if self.done or self.final_step < 0:
            return
        if self.grid_step >= self.final_step and self.decoded_after_encode and len(self.window.history):
            self.done = True
            self._poll.stop()
            QTimer.singleShot(600, self.loop.quit)  # a few plot refreshes and one FPS update


def _quiet_handler(_mode: object, _context: object, message: str) -> None:
    """Qt messages to stderr, minus the offscreen plugin's harmless "does not support propagateSizeHints()"."""
    if "propagateSizeHints" not in message:
        print(message, file=sys.stderr)


def run_snapshot(
    out: str, data: str = "digits", model: str = "beta-vae", steps: int = 200,
    size: tuple[int, int] = (1400, 900), timeout: float = 300.0, panel: str = "Losses", tab: str | None = None,
) -> int:
    """Open the real window, train ``steps`` steps through the real worker and save a screenshot.

    Parameters
    ----------
    out : str
        PNG file to write (its folder is created).
    data, model : str
        Data spec and registry model to build.
    steps : int
        Training steps before the picture.
    size : (int, int)
        Window width and height in pixels.
    timeout : float
        Seconds before giving up.
    panel : str
        The bottom dock shown in front: "Losses", "Coverage", "Disentanglement", "Runs" or "Messages".
        For Coverage and Disentanglement the picture waits (up to 60 s) for that metric's measurement
        of the final weights; Runs compares the largest group of evaluated runs on one data set.
    tab : str or None
        "Traversal" shows the Traversal tab: a grid of the final weights around the prior mean,
        rows in the sliders' order and labelled by factor where the data has factors. "Morph" shows the Data set browser (with an image file drawn for the picture and loaded as a
        user's file would be) and the Morph tab: A and B from held-out examples and that file, half
        of the dimensions taken from B, and a 2 x 2 style grid. "Pixels" (an autoregressive model) shows
        eight completions of a held-out example's top half and its surprise map; "Flow" (a flow on images)
        an example inverted and edited along a principal component, samples at T = 0.7 and an
        interpolation. None keeps the "Samples" tab.

    Returns
    -------
    int
        0 on success; 1 (with a message on stderr) on a failure or a timeout.

    Notes
    -----
    Unless ``LATENT_STUDIO_HOME`` is set, the worker autosaves into a temporary folder, so a
    snapshot never replaces the user's own autosave.
    """
    previous = qInstallMessageHandler(_quiet_handler)
    home = None
    if not os.environ.get("LATENT_STUDIO_HOME"):
        home = tempfile.TemporaryDirectory(prefix="latent-studio-snapshot-")
        os.environ["LATENT_STUDIO_HOME"] = home.name
    try:
        return _run(out, data, model, steps, size, timeout, panel, tab)
    finally:
        if home is not None:
            del os.environ["LATENT_STUDIO_HOME"]
            home.cleanup()
        qInstallMessageHandler(previous)


def _show_panel(app: object, window: MainWindow, panel: str, final_step: int) -> None:
    """Raise ``panel``'s dock; for a metric panel, wait up to 60 s for its measurement of the final weights."""
    window.docks[panel].raise_()
    if panel == "Disentanglement":  # room for the curves and the latent x factor heat map
        window.resizeDocks([window.docks[panel]], [window.height() // 3], Qt.Orientation.Vertical)
    if panel == "Runs":
        _compare_runs(window)
        return
    signal = {"Coverage": window.client.coverage, "Disentanglement": window.client.disentanglement}.get(panel)
    if signal is None:
        return
    loop = QEventLoop()
    signal.connect(lambda event: loop.quit() if event.step >= final_step else None)
    QTimer.singleShot(60_000, loop.quit)
    loop.exec()
    QTimer.singleShot(300, loop.quit)  # let the panel repaint
    loop.exec()


def _compare_runs(window: MainWindow) -> None:
    """The Runs dock, half the window high, comparing the largest group of evaluated runs on one data set
    (the runs ``latent-studio evaluate`` scored; every run of the largest group if none was)."""
    from engines.shared.runs import comparable_groups

    window.resizeDocks([window.docks["Runs"]], [window.height() // 2], Qt.Orientation.Vertical)
    view = window.runs.view
    _wait_until(lambda: view.list.rowCount() > 0, timeout=30.0)
    groups = list(comparable_groups(view.records).values())
    scored = [[r for r in g if "fd" in r.final] for g in groups]
    pick = max(scored, key=len) if any(scored) else max(groups, key=len, default=[])
    view.select_paths([r.path for r in pick])
    loop = QEventLoop()
    QTimer.singleShot(500, loop.quit)  # let the plot and the pictures paint
    loop.exec()


def _wait_until(condition, timeout: float = 60.0) -> bool:  # noqa: ANN001
    """Run the event loop until ``condition()`` holds (True) or ``timeout`` seconds pass (False)."""
    loop = QEventLoop()
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        QTimer.singleShot(50, loop.quit)
        loop.exec()
    return True


def _stage_morph(window: MainWindow) -> bool:
    """Fill the browser and the Morph tab through the real worker (see :func:`run_snapshot`'s ``tab``)."""
    from PIL import Image, ImageDraw, ImageFont

    window.docks["Data set"].raise_()
    window.resizeDocks([window.docks["Data set"]], [560], Qt.Orientation.Vertical)  # room for the thumbnails
    window.central_tabs.setCurrentWidget(window.morph.view)
    browser, morph = window.browser, window.morph
    folder = tempfile.mkdtemp(prefix="latent-studio-morph-")
    path = os.path.join(folder, "my 3.png")
    picture = Image.new("L", (64, 64), 255)  # a dark "3" on white paper, as a user would draw it
    ImageDraw.Draw(picture).text((14, 2), "3", fill=0, font=ImageFont.load_default(size=56))
    picture.save(path)
    browser.open_files([path])
    if not _wait_until(lambda: browser.user and browser.view.held_list.count()):
        return False
    image, name = next(iter(browser.user.values()))
    steps = [lambda: morph.set_from_example("A", 3), lambda: morph.view.row_button.click(),
             lambda: morph.set_from_example("A", 11), lambda: morph.set_from_image("B", image, name),
             lambda: morph.view.col_button.click(), lambda: morph.set_from_example("B", 20)]
    for step in steps:
        step()
        if not _wait_until(lambda: not morph._pending):  # each Encode answered before the next step
            return False
    for row in morph.view.rows[: max(1, len(morph.view.rows) // 2)]:
        row.check.setChecked(True)
    morph.view.rows[0].slider.setValue(0.8)
    ok = _wait_until(lambda: morph.view.grid_picture() is not None and morph.view.grid_picture().shape[-1] > 30)
    _wait_until(lambda: False, 1.0)  # the newest decodes of the result and the grid
    return ok


def _stage_traversal(window: MainWindow) -> bool:
    """Show the Traversal tab with a grid of the final weights (see :func:`run_snapshot`'s ``tab``)."""
    window.central_tabs.setCurrentWidget(window.traversal_view)
    window.explore_panel.apply_order()
    window.traversal.set_rows(*window.explore.rows())
    rid = window.traversal.request()
    view = window.traversal_view
    return bool(rid) and _wait_until(lambda: view.shown is not None and view.shown.request_id >= rid)


def _stage_pixels(window: MainWindow) -> bool:
    """The Pixels tab: eight completions of a held-out example's top half, then its surprise map."""
    pixels = window.pixels
    window.central_tabs.setCurrentWidget(pixels.view)
    pixels.view.speed.setValue(0)
    pixels.view.index_spin.setValue(EXAMPLE_INDEX)
    pixels.complete(EXAMPLE_INDEX, "top half kept", 8, 0)
    if not _wait_until(lambda: pixels.run.request_id and not pixels.run.running and pixels.run.images is not None):
        return False
    pixels.surprise(EXAMPLE_INDEX)
    return _wait_until(lambda: pixels.view.surprise.image() is not None)


def _stage_flow(window: MainWindow) -> bool:
    """The Flow tab: a held-out example inverted and moved along its first principal component, samples at
    T = 0.7 and an interpolation between two held-out examples, every picture with its bits/dim."""
    flow = window.flow
    window.central_tabs.setCurrentWidget(flow.view)
    flow.view.index_spin.setValue(EXAMPLE_INDEX)
    flow.invert(EXAMPLE_INDEX)
    flow.find_directions("pca", 6, 0, 1)
    if not _wait_until(lambda: len(flow.view.sliders) == 6 and "recon" in flow.shown):
        return False
    flow.view.sliders[0].setValue(15)
    flow.sample(0.7, 0)
    flow.view.a_spin.setValue(EXAMPLE_INDEX)
    flow.view.b_spin.setValue(EXAMPLE_INDEX + 8)
    flow.interpolate(EXAMPLE_INDEX, EXAMPLE_INDEX + 8, 8)
    done = _wait_until(lambda: all(f"{k}:scored" in flow.captions for k in ("original", "edited", "samples", "path")))
    _wait_until(lambda: False, 0.5)
    return done


def _stage_directions(window: MainWindow) -> bool:
    """The Directions tab: principal directions with PC1 moved, local directions, and a - b + c of held-out examples."""
    d = window.directions
    window.central_tabs.setCurrentWidget(d.view)
    encoder = window.services.ready is not None and window.services.ready.capabilities.has_encoder
    if encoder:
        window.explore.encode_example(EXAMPLE_INDEX)
    else:  # a GAN: a prior draw is the point, and a - b + c takes three of them
        for slot in "abc":
            window.explore_panel.random_button.click()
            if not _wait_until(lambda: d.point is not None):
                return False
            d.slot_from_point(slot)
    if not _wait_until(lambda: d.point is not None):
        return False
    d.view.k_spin.setValue(5)
    d.view.find_button.click()
    if not _wait_until(lambda: len(d.view.sliders) == 5):
        return False
    d.view.sliders[0].setValue(15)
    d.view.local_button.click()
    if encoder:
        d.use_example("a", EXAMPLE_INDEX)
        d.use_example("b", EXAMPLE_INDEX + 1)
        d.use_example("c", EXAMPLE_INDEX + 2)
    ok = _wait_until(lambda: d.view.local_view.image() is not None and d.view.result_view.image() is not None)
    _wait_until(lambda: False, 0.5)
    return ok


def _stage_map(window: MainWindow) -> bool:
    """The Map tab: 1,000 held-out images by t-SNE, one clicked into Explore, a path drawn to Interpolate."""
    m = window.latent_map
    window.central_tabs.setCurrentWidget(m.view)
    m.view.method_combo.setCurrentIndex(m.view.method_combo.findData("tsne"))
    m.compute("tsne", 1000, 30.0)
    if not _wait_until(lambda: m.map is not None, 120):
        return False
    m.click(*m.map.xy[EXAMPLE_INDEX], radius=1e-6)
    m.hover(*m.map.xy[EXAMPLE_INDEX + 5], radius=1e-6)
    a, b, c = m.map.xy[[1, 40, 90]]
    m.stroke("path", np.array([a, (a + b) / 2 + [0.5, 0.5], b, c]))
    window.central_tabs.setCurrentWidget(m.view)
    m.find_nearest()
    ok = _wait_until(lambda: m.view.pixel_view.image() is not None)
    _wait_until(lambda: False, 0.5)
    return ok


def _run(out: str, data: str, model: str, steps: int, size: tuple[int, int], timeout: float, panel: str,
         tab: str | None = None) -> int:
    app = create_application()
    window = MainWindow()
    if panel not in window.docks:
        print(f"latent-studio snapshot: no panel {panel!r}; choose from {', '.join(window.docks)}", file=sys.stderr)
        window.close()
        return 1
    try:
        window.set_data_spec(data)
        window.data_panel.set_model(model)
    except KeyError as exc:
        print(f"latent-studio snapshot: {exc.args[0]}", file=sys.stderr)
        window.close()
        return 1
    window.resize(*size)
    window.dock_layout.fit(*size)
    window.show()
    loop = QEventLoop()
    script = _Script(window, steps, loop)
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(lambda: script._fail(f"timed out after {timeout:.0f} s"))
    deadline.start(int(timeout * 1000))
    t0 = time.monotonic()
    window.start_worker()
    loop.exec()
    deadline.stop()
    code = 0
    if script.failure is None:
        _show_panel(app, window, panel, script.final_step)
        if tab == "Morph" and not _stage_morph(window):
            script.failure = "the Morph tab did not fill in within 60 s"
        if tab == "Traversal" and not _stage_traversal(window):
            script.failure = "no traversal grid arrived within 60 s"
        if tab == "Pixels" and not _stage_pixels(window):
            script.failure = "the Pixels tab did not draw its completions and surprise map within 60 s"
        if tab == "Flow" and not _stage_flow(window):
            script.failure = "the Flow tab did not fill in within 60 s"
        if tab == "Directions" and not _stage_directions(window):
            script.failure = "the Directions tab did not fill in within 60 s"
        if tab == "Map" and not _stage_map(window):
            script.failure = "the Map tab did not fill in within 120 s"
        window.explore_panel.apply_order()
        window.statusBar().clearMessage()  # transient messages (the autosave's temporary path) are noise here
        app.processEvents()
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not window.grab().save(str(path), "PNG"):
            script.failure = f"could not write {path}"
    if script.failure is not None:
        print(f"latent-studio snapshot: {script.failure}", file=sys.stderr)
        code = 1
    else:
        import resource

        cpu = resource.getrusage(resource.RUSAGE_SELF)
        print(f"wrote {out} after {script.final_step} steps in {time.monotonic() - t0:.1f} s "
              f"(window process CPU {cpu.ru_utime + cpu.ru_stime:.1f} s)")
    window.close()
    app.processEvents()
    return code
