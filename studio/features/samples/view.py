"""The central views: the fixed-z sample grid, and the decoded image of the Explore sliders."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QHBoxLayout, QStackedWidget, QWidget

from engines.shared import protocol
from engines.shared.datainfo import DataInfo
from studio.widgets.images import grid, points_picture
from studio.widgets.basic import FpsCounter, ImageView, PointsView


def _modes(info: DataInfo | None) -> np.ndarray | None:
    return None if info is None or not info.modes else np.asarray(info.modes, np.float64)


class SamplesView(QStackedWidget):
    """The sample grid: tiled images (``ImageItem``), or a scatter plot for 2-D points data.

    Parameters
    ----------
    fps : FpsCounter, optional
        Ticked on every redraw.
    """

    def __init__(self, fps: FpsCounter | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fps = fps
        self.images = ImageView("Samples (fixed z)")
        self.points = PointsView("Samples")
        self.addWidget(self.images)
        self.addWidget(self.points)
        self.info: DataInfo | None = None
        self.samples: np.ndarray | None = None
        self.step = -1
        self.critic_step: int | None = None
        self.critic_units = ""

    def set_data(self, info: DataInfo) -> None:
        """Switch between the image grid and the scatter plot for a data set."""
        self.info, self.samples, self.step = info, None, -1
        self.images.clear()
        self.images.set_title("Samples (fixed z): waiting for the first grid")
        self.setCurrentWidget(self.points if info.kind == "points" else self.images)
        self.points.set_points(np.zeros((0, 2)))
        self.points.set_modes(_modes(info))
        self.points.set_critic(None)
        self.critic_step: int | None = None
        self.critic_units = ""

    def set_coverage(self, event: protocol.CoverageMeasured) -> None:
        """Put the critic's heat map of a coverage measurement (2-D data, GANs) under the sample scatter."""
        critic = event.critic
        if critic is None or np.ndim(critic) != 2 or len(event.extent) != 4:
            return
        self.points.set_critic(critic, tuple(event.extent), event.critic_units)
        self.critic_step = int(event.step)
        self.critic_units = event.critic_units
        self._points_title()

    def _points_title(self) -> None:
        text = "waiting for samples" if self.samples is None else f"{len(self.samples)} samples at step {self.step:,}"
        if self.critic_step is not None and self.critic_units == "log-density":
            text += f"; log-density at step {self.critic_step:,} (bright: likely)"
        elif self.critic_step is not None:
            text += f"; critic at step {self.critic_step:,} (green: judged real, purple: fake)"
        self.points.set_title(text)

    def set_samples(self, images: np.ndarray, step: int) -> None:
        """Show samples: (N, C, H, W) in [0, 1] as a grid, or (N, 2) points."""
        images = np.asarray(images, np.float32)
        self.samples, self.step = images, int(step)
        if images.ndim == 2:
            self.setCurrentWidget(self.points)
            self.points.set_points(images)
            self._points_title()
        else:
            self.setCurrentWidget(self.images)
            self.images.set_image(grid(images))
            self.images.set_title(f"{len(images)} samples from a fixed z, step {step:,}")
        if self.fps is not None:
            self.fps.tick()

    def picture(self) -> np.ndarray | None:
        """The grid as a (C, H, W) picture in [0, 1] (points drawn as an image), or None before the first."""
        if self.samples is None:
            return None
        if self.samples.ndim == 2:
            return points_picture(self.samples, modes=_modes(self.info))
        return grid(self.samples)


class DecodedView(QWidget):
    """The image decoded from the Explore sliders, with the encoded input beside it after "Set from image"."""

    def __init__(self, fps: FpsCounter | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fps = fps
        self.input = ImageView("Input")
        self.output = ImageView("Decoded z")
        self.points = PointsView("Decoded z")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.output)
        self.stack.addWidget(self.points)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.input, 1)
        layout.addWidget(self.stack, 1)
        self.input.hide()
        self.info: DataInfo | None = None
        self.decoded: np.ndarray | None = None
        self.input_image: np.ndarray | None = None

    def set_data(self, info: DataInfo) -> None:
        """Clear the view for a new data set (an image or the decoded point of 2-D data)."""
        self.info, self.decoded = info, None
        self.output.clear()
        self.output.set_title("Decoded z")
        self.set_input(None)
        self.stack.setCurrentWidget(self.points if info.kind == "points" else self.output)
        self.points.set_modes(_modes(info))
        self.points.set_highlight(None)

    def set_decoded(self, images: np.ndarray, step: int | None = None) -> None:
        """Show the first decoded example: (N, C, H, W) images in [0, 1] or (N, 2) points."""
        images = np.asarray(images, np.float32)
        self.decoded = images[0]
        suffix = "" if step is None else f" (model at step {step:,})"
        if images.ndim == 2:
            self.stack.setCurrentWidget(self.points)
            self.points.set_highlight(images[:1])
            self.points.set_title(f"Decoded z: ({images[0, 0]:.2f}, {images[0, 1]:.2f}){suffix}")
        else:
            self.stack.setCurrentWidget(self.output)
            self.output.set_image(images[0])
            self.output.set_title(f"Decoded z{suffix}")
        if self.fps is not None:
            self.fps.tick()

    def set_samples_backdrop(self, points: np.ndarray) -> None:
        """For 2-D data: show the current samples under the decoded point."""
        self.points.set_points(points)

    def set_input(self, image: np.ndarray | None, title: str = "Input") -> None:
        """Show (C, H, W) ``image`` beside the decoded one, or hide the input with None."""
        self.input_image = None if image is None else np.asarray(image, np.float32)
        if image is None or self.input_image.ndim != 3:
            self.input.hide()
            return
        self.input.set_image(self.input_image)
        self.input.set_title(title)
        self.input.show()

    def picture(self) -> np.ndarray | None:
        """The decoded example as a (C, H, W) picture in [0, 1] (a point drawn as an image), or None."""
        if self.decoded is None:
            return None
        if self.decoded.ndim == 1:
            return points_picture(self.decoded[None], modes=_modes(self.info))
        return self.decoded
