"""Widgets and picture helpers any feature may use (they know nothing of the worker or of each other)."""

from __future__ import annotations

from studio.widgets.basic import (
    BACKGROUND, CRITIC_MAP, Banner, FpsCounter, ImageView, JobProgress, LogSpinBox, MessageLog, PointsView, critic_levels,
    schedule_spin, to_pixmap,
)
from studio.widgets.images import export_scale, grid, points_picture, to_display, write_png

__all__ = [
    "BACKGROUND", "CRITIC_MAP", "Banner", "FpsCounter", "ImageView", "JobProgress", "LogSpinBox", "MessageLog", "PointsView",
    "critic_levels", "export_scale", "schedule_spin", "to_pixmap", "grid", "points_picture", "to_display", "write_png",
]
