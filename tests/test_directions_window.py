"""The Directions and Map tabs driven in the real window as a user would: find directions and slide along them,
local directions, a - b + c from the browser, save / load / export, and on the map: click, draw a path,
lasso two groups, the memorisation check, t-SNE cancelled."""

from __future__ import annotations

import json

import numpy as np
import pyqtgraph as pg
import pytest
from PIL import Image
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from engines.shared import protocol
from engines.shared.directions import DirectionSet
from workers import real_window

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


#: The pause between two mouse moves of a drag, ms: above pyqtgraph's 10 ms between moves it keeps (mouseRateLimit).
MOVE_GAP_MS = 1000 // pg.getConfigOption("mouseRateLimit") + 15


def _mouse(widget, kind: QEvent.Type, pos: QPoint, buttons: Qt.MouseButton) -> None:
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
    event = QMouseEvent(kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), button, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def drag(view, points: list[tuple[float, float]], qtbot) -> None:
    """Press on the map at the first point, move through the rest, release: a person's drag."""
    port = view.plot.viewport()
    qtbot.waitUntil(lambda: not view.plot.isHidden() and port.width() > 100)
    _mouse(port, QEvent.Type.MouseButtonPress, view.scene_pos_of(*points[0]), Qt.MouseButton.LeftButton)
    # each position mapped as it is sent (the layout may still settle between events), and sent more than
    # 10 ms after the last: pyqtgraph drops mouse moves above its mouseRateLimit (100 per second), so a
    # faster drag loses corners and a lasso rectangle becomes a triangle
    for x, y in points[1:]:
        qtbot.wait(MOVE_GAP_MS)
        _mouse(port, QEvent.Type.MouseMove, view.scene_pos_of(x, y), Qt.MouseButton.LeftButton)
    _mouse(port, QEvent.Type.MouseButtonRelease, view.scene_pos_of(*points[-1]), Qt.MouseButton.NoButton)


def click(view, x: float, y: float) -> None:
    port = view.plot.viewport()
    p = view.scene_pos_of(x, y)
    _mouse(port, QEvent.Type.MouseButtonPress, p, Qt.MouseButton.LeftButton)
    _mouse(port, QEvent.Type.MouseButtonRelease, p, Qt.MouseButton.NoButton)


def test_directions_and_the_map_in_the_window(qtbot, tmp_path, one_torch_thread) -> None:
    with real_window(tmp_path / "home") as w:
        client = w.client
        qtbot.waitUntil(lambda: client.state == "idle", timeout=90_000)
        with qtbot.waitSignal(client.ready, timeout=60_000):
            w.configure(protocol.Configure(data="digits", model="vae", image_size=16, latent_dim=4, seed=2,
                                           batch_size=32))
        with qtbot.waitSignal(client.stopped, timeout=120_000):
            w.train(steps=60)
        d, dv = w.directions, w.directions.view
        w.central_tabs.setCurrentWidget(dv)

        # principal directions: one slider each, with its share of variance; a slider moves the Explore point
        dv.k_spin.setValue(3)
        dv.n_spin.setValue(150)
        with qtbot.waitSignal(client.event_received, timeout=60_000,
                              check_params_cb=lambda e: isinstance(e, protocol.DirectionsFound)):
            dv.find_button.click()
        qtbot.waitUntil(lambda: len(dv.sliders) == 3, timeout=5_000)
        assert "% of variance" in dv.slider_labels[0].text() and "posterior means of 150" in dv.source.text()
        base = w.explore_panel.z().copy()
        dv.sliders[0].setValue(10)  # +1 standard deviation along PC1
        want = np.clip(base + d.edit.found.scales[0] * d.edit.found.vectors[0], -3, 3)
        np.testing.assert_allclose(w.explore_panel.z(), want, atol=0.011)  # the sliders' 0.01 steps
        assert d.edit.base is not None and np.allclose(d.edit.base, base)  # the echo is not a new base
        assert dv.moved.text() == "PC1 +1.0"

        # save, load, and a traversal along them exported with its sidecar
        path = tmp_path / "directions.json"
        d.save(path)
        assert DirectionSet.read(path).names == ["PC1", "PC2", "PC3"]
        d.load(path)
        assert len(dv.sliders) == 3
        with qtbot.waitSignal(w.exported, timeout=60_000):
            d.export(tmp_path / "along.png")
        side = json.loads((tmp_path / "along.png.json").read_text())
        assert side["kind"] == "traversal" and side["latents"]["names"] == ["PC1", "PC2", "PC3"]

        # a class difference
        dv.method_combo.setCurrentIndex(dv.method_combo.findData("class"))
        dv.from_combo.setCurrentIndex(3)
        dv.to_combo.setCurrentIndex(8)
        with qtbot.waitSignal(client.event_received, timeout=60_000,
                              check_params_cb=lambda e: isinstance(e, protocol.DirectionsFound)):
            dv.find_button.click()
        qtbot.waitUntil(lambda: dv.names == ["3 -> 8"], timeout=5_000)

        # local directions around the point: a grid of k rows
        dv.local_k.setValue(2)
        dv.local_button.click()
        qtbot.waitUntil(lambda: dv.local_view.image() is not None, timeout=60_000)

        # a - b + c: a and b from the browser, c the current point
        w.browser.act("arith-a", "held-out", 0)
        w.browser.act("arith-b", "held-out", 1)
        dv.slot_from_point.emit("c")
        qtbot.waitUntil(lambda: d.arith.result() is not None and dv.go_button.isEnabled(), timeout=30_000)
        a, b, c = (d.arith.slots[s][0] for s in "abc")
        dv.go_button.click()
        np.testing.assert_allclose(w.explore_panel.z(), np.clip(a - b + c, -3, 3), atol=0.011)
        assert "held-out #0 - held-out #1 + point" in dv.result_view.title.text()

        # the map: PCA of 120 held-out images, coloured by class
        m, mv = w.latent_map, w.latent_map.view
        w.central_tabs.setCurrentWidget(mv)
        mv.n_spin.setValue(120)
        mv.resize(1000, 700)
        with qtbot.waitSignal(client.event_received, timeout=60_000,
                              check_params_cb=lambda e: isinstance(e, protocol.LatentMapped)):
            mv.compute_button.click()
        qtbot.waitUntil(lambda: m.map is not None, timeout=5_000)
        assert len(mv.scatter.data) == 120 and mv.colour_combo.currentText() == "class"
        assert "&#9679;" in mv.legend.text() and "3" in mv.legend.text()
        qtbot.wait(50)
        # a click on a point decodes exactly that point into Explore (values inside the sliders' range)
        inside = np.flatnonzero((np.abs(m.map.z) < 2.9).all(1))
        i = int(inside[0])
        click(mv, *m.map.xy[i])
        np.testing.assert_allclose(w.explore_panel.z(), m.map.z[i], atol=0.011)
        assert m.map.describe(i) in mv.status.text()
        marker = mv.marker.data  # the Explore point is marked where it falls
        assert len(marker) == 1 and np.hypot(marker[0][0] - m.map.xy[i, 0], marker[0][1] - m.map.xy[i, 1]) < 0.05

        # a drawn path becomes the Interpolate tab's keyframes, and is drawn on the map
        (x0, x1), (y0, y1) = mv.box.viewRange()
        mv.set_mode("path")
        stroke = [(x0 + (x1 - x0) * t, y0 + (y1 - y0) * (0.3 + 0.4 * t)) for t in np.linspace(0.15, 0.85, 12)]
        drag(mv, stroke, qtbot)
        qtbot.waitUntil(lambda: len(w.interpolate_view.keyframes()) == 8, timeout=5_000)
        assert w.central_tabs.currentWidget() is w.interpolate_view
        assert mv.path_curve.getData()[0] is not None and len(mv.path_curve.getData()[0]) == 8
        qtbot.waitUntil(lambda: w.interpolate_view.shown is not None, timeout=30_000)  # rendered at once
        with qtbot.waitSignal(w.exported, timeout=60_000):  # ... and exported as a GIF with its sidecar
            w.interpolation.export_gif(tmp_path / "walk.gif")
        side = json.loads((tmp_path / "walk.gif.json").read_text())
        np.testing.assert_allclose(side["latents"]["keyframes"], w.interpolate_view.keyframes(), rtol=1e-6)

        # lasso the left and the right halves: two groups for a direction between them
        w.central_tabs.setCurrentWidget(mv)
        qtbot.wait(200)  # the tab laid out again
        mv.box.autoRange(padding=0.05)  # the whole map in view again, after the tab was hidden
        qtbot.wait(50)
        (x0, x1), (y0, y1) = mv.box.viewRange()
        xm = float(np.median(m.map.xy[:, 0]))
        for mode, (lo, hi) in (("lasso-a", (x0, xm)), ("lasso-b", (xm, x1))):
            mv.set_mode(mode)
            drag(mv, [(lo, y0), (hi, y0), (hi, y1), (lo, y1), (lo, y0)], qtbot)
        assert len(d.groups.positions["a"]) > 50 and len(d.groups.positions["b"]) > 50  # about 60 each
        assert dv.method_combo.currentData() == "groups"
        with qtbot.waitSignal(client.event_received, timeout=60_000,
                              check_params_cb=lambda e: isinstance(e, protocol.DirectionsFound)):
            dv.find_button.click()
        qtbot.waitUntil(lambda: len(dv.names) == 1 and dv.names[0].startswith("group A -> group B"), timeout=5_000)
        # ... or groups picked in the browser: held-out examples and an image the user dropped
        dv.clear_groups_button.click()
        assert d.groups.sizes() == {"a": 0, "b": 0}
        for i in (0, 1, 2):
            w.browser.act("group-a", "held-out", i)
        Image.fromarray(np.full((20, 20), 200, np.uint8)).save(tmp_path / "mine.png")
        with qtbot.waitSignal(w.browser.images_loaded, timeout=10_000):
            w.browser.open_files([str(tmp_path / "mine.png")])
        w.browser.act("group-b", "yours", next(iter(w.browser.user)))
        w.browser.act("group-b", "held-out", 3)
        assert d.groups.sizes() == {"a": 3, "b": 2} and "group B: 2 images" in dv.groups_label.text()
        with qtbot.waitSignal(client.event_received, timeout=60_000,
                              check_params_cb=lambda e: isinstance(e, protocol.DirectionsFound)):
            dv.find_button.click()
        qtbot.waitUntil(lambda: dv.names == ["group A -> group B (3 / 2 images)"], timeout=5_000)

        # the memorisation check: the Explore image's nearest training images in pixels and in z
        with qtbot.waitSignal(client.event_received, timeout=60_000,
                              check_params_cb=lambda e: isinstance(e, protocol.NearestFound)):
            mv.nearest_button.click()
        assert mv.pixel_view.image() is not None and mv.latent_view.image() is not None
        assert "of 1" in mv.pixel_view.title.text()

        # t-SNE cancelled: the old map stays, the buttons come back
        mv.method_combo.setCurrentIndex(1)
        mv.n_spin.setValue(180)
        mv.compute_button.click()
        mv.job.cancel_button.click()
        qtbot.waitUntil(lambda: mv.compute_button.isEnabled() and not mv.job.request_id, timeout=60_000)
        assert m.map is not None and m.map.method == "pca"

        # follow training: the same images mapped again as the weights change, the view left where it is
        first = m.map.step
        mv.method_combo.setCurrentIndex(0)
        mv.follow.setChecked(True)
        with qtbot.waitSignal(client.stopped, timeout=120_000):
            w.train(steps=30)
        qtbot.waitUntil(lambda: m.map.step > first, timeout=60_000)
        assert len(m.map) == 120 and m.map.method == "pca"
