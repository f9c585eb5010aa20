"""The Interpolate view: a path through latent keyframes, shown as a film strip and an animation.

The path itself is computed and decoded by the worker (:class:`~engines.shared.protocol.Interpolate`,
:func:`engines.lib.latent.interpolate_spec`: linear, spherical (Shoemake, 1985, "Animating rotation
with quaternion curves", as used for GAN latents by White, 2016, "Sampling generative networks")
or Catmull-Rom spline through the keyframes). This module keeps the keyframes, draws the answer
(:class:`~engines.shared.protocol.Interpolated`) and plays it. Exports (GIF, MP4, PNG strip) are rendered
by the worker (:class:`~engines.shared.protocol.Export`, :mod:`engines.shared.media`), shown here by a
:class:`JobProgress` with a Cancel button.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, QTimer, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QGridLayout, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QSpinBox, QVBoxLayout, QWidget,
)

from engines.shared.imaging import plot_points, tile, to_uint8
from engines.shared.latent_np import prior_draw
from engines.shared.protocol import MAX_FRAMES
from engines.shared.spec import LatentSpec
from studio.widgets.images import to_display
from studio.widgets.basic import BACKGROUND, JobProgress

#: Interpolation methods, in the order of the combo box (as :data:`engines.lib.latent.METHODS`).
METHODS = ("lerp", "slerp", "spline")
#: Milliseconds between a change of keyframes or settings and the automatic re-render.
RENDER_DELAY_MS = 250
#: Most columns of the film strip.
STRIP_COLUMNS = 12
#: Thumbnail size in the keyframe list, px.
THUMB = 40


def _extent(points: np.ndarray, modes: np.ndarray | None) -> float:
    ref = np.concatenate([points.reshape(-1, 2)] + ([modes.reshape(-1, 2)] if modes is not None else []))
    ref = ref[np.isfinite(ref).all(axis=1)]
    return float(np.abs(ref).max()) * 1.25 + 0.25 if len(ref) else 1.0


def path_frames(images: np.ndarray, modes: np.ndarray | None = None, size: int = 256) -> list[np.ndarray]:
    """The frames of an animation as (C, H, W) float32 arrays in [0, 1], C in {1, 3}.

    Parameters
    ----------
    images : (F, C, H, W) float array in [0, 1], or (F, 2) points
        Points become frames of the path so far (a trail ending at the moving point, drawn green)
        over the data's ``modes`` (M, 2) drawn as red crosses, all on one fixed extent, with a
        progress bar along the bottom (so no two frames are equal and a GIF keeps every frame).
    """
    x = np.asarray(images, np.float32)
    if x.ndim == 2 and x.shape[1] == 2:
        ext = _extent(x, modes)
        return [_point_frame(x, i, modes, size, ext) for i in range(len(x))]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected frames of shape (F, 1|3, H, W) or (F, 2), got {x.shape}")
    return [np.clip(f, 0.0, 1.0) for f in x]


def _point_frame(points: np.ndarray, i: int, modes: np.ndarray | None, size: int, extent: float) -> np.ndarray:
    """Frame ``i`` of a point path: the trail so far, the current point as a green 5x5 dot, a progress bar."""
    img = plot_points(points[: i + 1], modes=modes, size=size, extent=extent)
    col = int(round((points[i, 0] + extent) / (2 * extent) * (size - 1))) if np.isfinite(points[i]).all() else -9
    row = int(round((extent - points[i, 1]) / (2 * extent) * (size - 1))) if np.isfinite(points[i]).all() else -9
    if 0 <= row < size and 0 <= col < size:
        img[:, max(0, row - 2) : row + 3, max(0, col - 2) : col + 3] = np.array([0.3, 1.0, 0.3], np.float32)[:, None, None]
    img[:, -3:, : int(round(size * (i + 1) / len(points)))] = 0.6  # progress: every frame differs
    return img


def strip_picture(images: np.ndarray, modes: np.ndarray | None = None, ncols: int = STRIP_COLUMNS) -> np.ndarray:
    """The film strip as one (C, H', W') picture in [0, 1]: frames tiled in rows of ``ncols``.

    For (F, 2) points: the whole path as points over the modes, (3, 384, 384).
    """
    x = np.asarray(images, np.float32)
    if x.ndim == 2 and x.shape[1] == 2:
        return plot_points(x, modes=modes, size=384, extent=_extent(x, modes))
    if x.ndim != 4:
        raise ValueError(f"expected frames of shape (F, C, H, W) or (F, 2), got {x.shape}")
    return tile(x, ncols=min(len(x), ncols), pad=1, pad_value=0.35)


def _thumbnail(image: np.ndarray) -> QIcon:
    """A list icon of one (C, H, W) image in [0, 1]."""
    arr = to_uint8(np.asarray(image, np.float32))
    h, w, c = arr.shape
    if c == 1:
        qimg = QImage(np.ascontiguousarray(arr[..., 0]).data, w, h, w, QImage.Format.Format_Grayscale8)
    else:
        qimg = QImage(np.ascontiguousarray(arr).data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return QIcon(QPixmap.fromImage(qimg.copy()).scaled(THUMB, THUMB))


class InterpolateView(QWidget):
    """Keyframes, path settings, a film strip and an animated preview of an interpolation.

    Signals
    -------
    render_requested()
        "Render" pressed, or (condensed, :data:`RENDER_DELAY_MS`) the keyframes or settings changed.
    keyframes_changed()
        A keyframe was added or removed: the window asks for new thumbnails.
    add_sliders_requested(), add_example_requested(int), export_requested(str)
        The buttons "Add current sliders", "Add held-out #", and the exports: "gif", "mp4",
        "strip" (PNG) and "latents" (.npy and .json of the path's z).

    Attributes
    ----------
    job : JobProgress
        Progress and Cancel of the export the worker is rendering.
    """

    render_requested = Signal()
    keyframes_changed = Signal()
    add_sliders_requested = Signal()
    add_example_requested = Signal(int)
    export_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = LatentSpec(())
        self.modes: np.ndarray | None = None
        self.keys: list[tuple[np.ndarray, str]] = []
        self.shown = None  # the Interpolated shown
        self.frame = 0
        self._rng = np.random.default_rng()
        self.key_list = QListWidget()
        self.key_list.setIconSize(QSize(THUMB, THUMB))
        self.key_list.setMinimumWidth(200)
        self.sliders_button = QPushButton("Add current sliders")
        self.example_button = QPushButton("Add held-out #")
        self.example_spin = QSpinBox()
        self.example_spin.setRange(0, 0)
        self.random_button = QPushButton("Add random")
        self.remove_button = QPushButton("Remove")
        self.clear_button = QPushButton("Clear")
        self.method_combo = QComboBox()
        self.method_combo.addItems(METHODS)
        self.method_combo.setCurrentText("slerp")
        self.method_combo.setToolTip("lerp: straight lines; slerp: great circles (Gaussian latents keep their norm); "
                                     "spline: a smooth curve through every keyframe")
        self.frames_spin = QSpinBox()
        self.frames_spin.setRange(2, MAX_FRAMES)
        self.frames_spin.setValue(24)
        self.frames_spin.setPrefix("frames ")
        self.fps_spin = QSpinBox()
        self.fps_spin.setRange(1, 60)
        self.fps_spin.setValue(12)
        self.fps_spin.setSuffix(" fps")
        self.speed_check = QCheckBox("constant speed")
        self.size_spin = QSpinBox()
        self.size_spin.setRange(32, 2048)
        self.size_spin.setSingleStep(64)
        self.size_spin.setValue(256)
        self.size_spin.setPrefix("export ")
        self.size_spin.setSuffix(" px")
        self.size_spin.setToolTip("Longest side of exported frames (nearest: rounded to a whole multiple of the model's size)")
        self.lanczos_check = QCheckBox("smooth (Lanczos)")
        self.lanczos_check.setToolTip("Upscale exports with Lanczos instead of nearest neighbour (blocky pixels)")
        self.render_button = QPushButton("Render")
        self.play_button = QPushButton("Play")
        self.play_button.setCheckable(True)
        self.gif_button = QPushButton("Export GIF...")
        self.mp4_button = QPushButton("Export MP4...")
        self.strip_button = QPushButton("Export strip PNG...")
        self.latents_button = QPushButton("Export latents...")
        self.job = JobProgress()
        self.frame_label = QLabel("no path yet")

        controls = QGridLayout()
        controls.addWidget(self.sliders_button, 0, 0, 1, 2)
        controls.addWidget(self.example_button, 1, 0)
        controls.addWidget(self.example_spin, 1, 1)
        controls.addWidget(self.random_button, 2, 0, 1, 2)
        controls.addWidget(self.remove_button, 3, 0)
        controls.addWidget(self.clear_button, 3, 1)
        controls.addWidget(self.method_combo, 4, 0)
        controls.addWidget(self.frames_spin, 4, 1)
        controls.addWidget(self.speed_check, 5, 0)
        controls.addWidget(self.fps_spin, 5, 1)
        controls.addWidget(self.lanczos_check, 6, 0)
        controls.addWidget(self.size_spin, 6, 1)
        controls.addWidget(self.render_button, 7, 0)
        controls.addWidget(self.play_button, 7, 1)
        controls.addWidget(self.gif_button, 8, 0)
        controls.addWidget(self.mp4_button, 8, 1)
        controls.addWidget(self.strip_button, 9, 0)
        controls.addWidget(self.latents_button, 9, 1)
        controls.addWidget(self.job, 10, 0, 1, 2)
        left = QVBoxLayout()
        left.addWidget(QLabel("Keyframes (path order)"))
        left.addWidget(self.key_list, 1)
        left.addLayout(controls)

        self.preview_widget = pg.GraphicsLayoutWidget()
        self.preview_widget.setBackground(BACKGROUND)
        self.preview_box = self.preview_widget.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.preview_item = pg.ImageItem()
        self.preview_box.addItem(self.preview_item)
        self.strip_widget = pg.GraphicsLayoutWidget()
        self.strip_widget.setBackground(BACKGROUND)
        self.strip_widget.setMaximumHeight(220)
        self.strip_box = self.strip_widget.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.strip_item = pg.ImageItem()
        self.strip_box.addItem(self.strip_item)
        right = QVBoxLayout()
        right.addWidget(self.preview_widget, 3)
        right.addWidget(self.frame_label)
        right.addWidget(self.strip_widget, 1)
        layout = QHBoxLayout(self)
        layout.addLayout(left)
        layout.addLayout(right, 1)

        self.play_timer = QTimer(self)
        self.play_timer.timeout.connect(self.advance)
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(RENDER_DELAY_MS)
        self._render_timer.timeout.connect(self.render_requested)
        self.render_button.clicked.connect(self.render_requested)
        self.sliders_button.clicked.connect(self.add_sliders_requested)
        self.example_button.clicked.connect(lambda: self.add_example_requested.emit(self.example_spin.value()))
        self.random_button.clicked.connect(self.add_random)
        self.remove_button.clicked.connect(lambda: self.remove_keyframe(self.key_list.currentRow()))
        self.clear_button.clicked.connect(self.clear_keyframes)
        self.play_button.toggled.connect(self.set_playing)
        self.fps_spin.valueChanged.connect(lambda _v: self.set_playing(self.play_button.isChecked()))
        self.gif_button.clicked.connect(lambda: self.export_requested.emit("gif"))
        self.strip_button.clicked.connect(lambda: self.export_requested.emit("strip"))
        self.mp4_button.clicked.connect(lambda: self.export_requested.emit("mp4"))
        self.latents_button.clicked.connect(lambda: self.export_requested.emit("latents"))
        for signal in (self.method_combo.currentIndexChanged, self.frames_spin.valueChanged, self.speed_check.toggled):
            signal.connect(self.schedule_render)
        self.set_encoder(False, 0)

    # -- model -----------------------------------------------------------------------------------
    def set_latent(self, spec: LatentSpec, modes: np.ndarray | None = None) -> None:
        """A (new) model: keyframes of another latent width are dropped, the path shown is cleared."""
        if spec.dim != self.spec.dim:
            self.keys.clear()
            self.key_list.clear()
        self.spec, self.modes = spec, modes
        self.clear_path()

    def set_encoder(self, has_encoder: bool, n_test: int) -> None:
        """Enable "Add held-out #" (indices 0 .. n_test - 1) where the model has an encoder."""
        self.example_spin.setRange(0, max(0, n_test - 1))
        for w in (self.example_button, self.example_spin):
            w.setEnabled(bool(has_encoder and n_test))

    # -- keyframes -------------------------------------------------------------------------------
    def keyframes(self) -> np.ndarray:
        """The (K, D) float32 keyframes in path order."""
        return np.stack([z for z, _ in self.keys]).astype(np.float32) if self.keys else np.zeros((0, self.spec.dim), np.float32)

    def add_keyframe(self, z: np.ndarray, label: str) -> int:
        """Append keyframe ``z`` (D,) with a source text; returns its position.

        Raises
        ------
        ValueError
            If ``z`` is not (D,) finite for the current latent space.
        """
        z = np.asarray(z, np.float32).reshape(-1)
        if z.shape != (self.spec.dim,) or not np.isfinite(z).all():
            raise ValueError(f"a keyframe must be {self.spec.dim} finite numbers, got shape {z.shape}")
        self.keys.append((z, str(label)))
        self.key_list.addItem(QListWidgetItem(f"{len(self.keys)}. {label}"))
        self._keys_changed()
        return len(self.keys) - 1

    def add_random(self) -> int:
        """Append a prior draw (the Explore sliders do not move)."""
        return self.add_keyframe(prior_draw(self.spec, self._rng), "random")

    def remove_keyframe(self, index: int) -> None:
        """Remove keyframe ``index`` (nothing if out of range)."""
        if 0 <= index < len(self.keys):
            del self.keys[index]
            self.key_list.takeItem(index)
            for i, (_, label) in enumerate(self.keys):
                self.key_list.item(i).setText(f"{i + 1}. {label}")
            self._keys_changed()

    def clear_keyframes(self) -> None:
        """Remove every keyframe and the path shown."""
        self.keys.clear()
        self.key_list.clear()
        self.clear_path()
        self.keyframes_changed.emit()

    def set_thumbnails(self, images: np.ndarray) -> None:
        """Icons for the keyframes from their decodes: (K, C, H, W) in [0, 1]; ignored if K differs."""
        x = np.asarray(images, np.float32)
        if x.ndim != 4 or len(x) != len(self.keys):
            return
        for i, image in enumerate(x):
            self.key_list.item(i).setIcon(_thumbnail(image))

    def _keys_changed(self) -> None:
        self.keyframes_changed.emit()
        self.schedule_render()

    # -- path ------------------------------------------------------------------------------------
    def params(self) -> dict:
        """The settings: ``method``, ``frames``, ``constant_speed``, ``fps``, export ``size`` (px) and ``resample``."""
        return {"method": self.method_combo.currentText(), "frames": self.frames_spin.value(),
                "constant_speed": self.speed_check.isChecked(), "fps": self.fps_spin.value(),
                "size": self.size_spin.value(), "resample": "lanczos" if self.lanczos_check.isChecked() else "nearest"}

    def schedule_render(self, *_args: object) -> None:
        """Re-render after :data:`RENDER_DELAY_MS` of quiet (changes in a burst make one request)."""
        if len(self.keys) >= 2:
            self._render_timer.start()

    def set_interpolated(self, event) -> None:
        """Show an :class:`~engines.shared.protocol.Interpolated`: the strip and frame 0 in the preview.

        Raises
        ------
        ValueError
            If its images are neither (F, C, H, W) nor (F, 2).
        """
        strip = strip_picture(event.images, self.modes)
        self.shown = event
        self.strip_item.setImage(to_display(strip), autoLevels=False, levels=(0.0, 1.0))
        self.strip_box.autoRange(padding=0.01)
        self.frame = 0
        self.show_frame(0)
        self.preview_box.autoRange(padding=0.02)

    def clear_path(self) -> None:
        self.shown = None
        self.set_playing(False)
        self.strip_item.clear()
        self.preview_item.clear()
        self.frame_label.setText("no path yet")

    def n_frames(self) -> int:
        return 0 if self.shown is None or self.shown.images is None else len(self.shown.images)

    def show_frame(self, index: int) -> None:
        """Show frame ``index`` (modulo the frame count) in the large preview."""
        n = self.n_frames()
        if not n:
            return
        self.frame = int(index) % n
        x = np.asarray(self.shown.images, np.float32)
        if x.ndim == 2:
            picture = _point_frame(x, self.frame, self.modes, 256, _extent(x, self.modes))
        else:
            picture = x[self.frame]
        self.preview_item.setImage(to_display(picture), autoLevels=False, levels=(0.0, 1.0))
        self.frame_label.setText(f"frame {self.frame + 1}/{n} (step {self.shown.step:,})")

    def advance(self) -> None:
        """Show the next frame (wrapping around)."""
        self.show_frame(self.frame + 1)

    def set_playing(self, playing: bool) -> None:
        """Start or stop the animation at the chosen fps."""
        if self.play_button.isChecked() != bool(playing):
            self.play_button.setChecked(bool(playing))  # re-enters through toggled
            return
        self.play_button.setText("Pause" if playing else "Play")
        if playing:
            self.play_timer.start(max(1, int(round(1000 / self.fps_spin.value()))))
        else:
            self.play_timer.stop()
