"""The Data set browser: thumbnails of the held-out split with their labels, paged, and the user's own images.

Each thumbnail can become a point of the latent space: "Set sliders" (encode, then the Explore
sliders move), "Add as keyframe" (the Interpolate tab), "Morph: set A" and "Morph: set B" (the
Morph tab), "a - b + c: set a / b / c" (the Directions tab's arithmetic), from the buttons under the lists or a thumbnail's context menu. The worker round trips
live in :mod:`studio.features.browser.controller`; this widget only shows and collects (numpy and Qt, no torch).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QGridLayout, QHBoxLayout, QLabel, QListView, QListWidget, QListWidgetItem, QMenu, QPushButton, QSizePolicy,
    QToolButton, QVBoxLayout, QWidget,
)

from studio.widgets.basic import to_pixmap

#: The actions on a thumbnail: key -> button and menu text.
ACTIONS = {"sliders": "Set sliders", "keyframe": "Add as keyframe", "morph-a": "Morph: set A", "morph-b": "Morph: set B",
           "arith-a": "a - b + c: set a", "arith-b": "a - b + c: set b", "arith-c": "a - b + c: set c",
           "group-a": "Directions: add to group A", "group-b": "Directions: add to group B"}
#: Thumbnail side in the lists, px.
THUMB = 44


def _icon_list() -> QListWidget:
    lst = QListWidget()
    lst.setViewMode(QListView.ViewMode.IconMode)
    lst.setIconSize(QSize(THUMB, THUMB))
    lst.setGridSize(QSize(THUMB + 30, THUMB + 22))
    lst.setResizeMode(QListView.ResizeMode.Adjust)
    lst.setMovement(QListView.Movement.Static)
    lst.setWordWrap(True)
    lst.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
    return lst


class BrowserPanel(QWidget):
    """Paged held-out thumbnails with labels, a "Your images" row, and the thumbnail actions.

    Signals
    -------
    page_requested(int)
        Show page ``p`` (0-based) of the held-out split.
    action_requested(str, str, int)
        (action, source, key): an action of :data:`ACTIONS` on a held-out example (source
        ``"held-out"``, key its index in the split) or on one of the user's images (``"yours"``, key
        as given to :meth:`add_user_image`).
    open_requested()
        "Open images..." pressed.
    """

    page_requested = Signal(int)
    action_requested = Signal(str, str, int)
    open_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.page, self.n_pages = 0, 0
        self.note = QLabel("Build a model to browse its data set. Drop image files anywhere on the window.")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #a0a0a0")
        self.held_title = QLabel("<b>Held-out examples</b>")
        self.held_list = _icon_list()
        self.held_list.setMinimumHeight(2 * (THUMB + 22) + 8)  # at least two rows of thumbnails
        self.prev_button = QPushButton("\u25c0")
        self.next_button = QPushButton("\u25b6")
        self.page_label = QLabel("")
        self.page_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        pager = QHBoxLayout()
        pager.addWidget(self.prev_button)
        pager.addWidget(self.page_label, 1)
        pager.addWidget(self.next_button)
        self.yours_title = QLabel("<b>Your images</b> (drop files on the window)")
        self.yours_list = _icon_list()
        self.yours_list.setMaximumHeight(2 * (THUMB + 22) + 8)
        self.open_button = QPushButton("Open images...")
        self.buttons = {key: (QToolButton() if key.startswith(("arith-", "group-")) else QPushButton(text))
                        for key, text in ACTIONS.items()}  # the arithmetic's three are small, in one row
        grid = QGridLayout()  # two by two: the four fit a laptop's side dock
        grid.setSpacing(2)
        for i, b in enumerate(self.buttons.values()):
            b.setEnabled(False)
            if i < 4:
                grid.addWidget(b, i // 2, i % 2)
        arith = QHBoxLayout()  # the Directions tab's a - b + c: three short buttons in one row
        arith.setSpacing(2)
        self.row_label = QLabel("a-b+c:")
        self.row_label.setToolTip("The Directions tab: the three points of a - b + c, and the two groups of a direction")
        arith.addWidget(self.row_label)
        for slot in "abc":
            b = self.buttons[f"arith-{slot}"]
            b.setText(slot)
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            b.setToolTip(f"Use this image as {slot} of the Directions tab's latent arithmetic a - b + c")
            arith.addWidget(b)
        for slot in "ab":
            b = self.buttons[f"group-{slot}"]
            b.setText(f"group {slot.upper()}")
            b.setToolTip(f"Add this image to group {slot.upper()} of the Directions tab's two-groups direction")
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            arith.addWidget(b)
        grid.addLayout(arith, 2, 0, 1, 2)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #ffcc66")
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.held_title)
        layout.addWidget(self.held_list, 3)
        layout.addLayout(pager)
        layout.addWidget(self.yours_title)
        layout.addWidget(self.yours_list, 1)
        layout.addWidget(self.open_button)
        layout.addLayout(grid)
        layout.addWidget(self.status)
        self._current: tuple[str, int] | None = None
        self._can = False
        self.prev_button.clicked.connect(lambda: self.page_requested.emit(self.page - 1))
        self.next_button.clicked.connect(lambda: self.page_requested.emit(self.page + 1))
        self.open_button.clicked.connect(self.open_requested)
        for source, lst in (("held-out", self.held_list), ("yours", self.yours_list)):
            lst.currentItemChanged.connect(lambda item, _prev, s=source: self._select(s, item))
            lst.customContextMenuRequested.connect(lambda pos, s=source, lw=lst: self._menu(s, lw, pos))
        for key, b in self.buttons.items():
            b.clicked.connect(lambda _c=False, k=key: self._act(k))
        self.set_kind(None)

    # -- data ------------------------------------------------------------------------------------
    def set_kind(self, kind: str | None, has_examples: bool = True) -> None:
        """"image", "points" (no thumbnails: a note instead) or None (no model yet)."""
        images = kind == "image"
        for w in (self.held_title, self.held_list, self.prev_button, self.next_button, self.page_label,
                  self.yours_title, self.yours_list, self.open_button, self.row_label, *self.buttons.values()):
            w.setVisible(images)
        if kind == "points":
            self.note.setText("This data set holds 2-D points (ring or grid): there are no images to browse. "
                              "Pick points from the Explore sliders or the Interpolate tab instead.")
        elif kind is None:
            self.note.setText("Build a model to browse its data set. Drop image files anywhere on the window.")
        self.note.setVisible(not images)
        if not images:
            self.held_list.clear()
            self._current = None

    def set_page(self, page: int, n_pages: int, indices: list[int], images: np.ndarray, labels: list[str]) -> None:
        """Show page ``page`` of ``n_pages``: one thumbnail per image (N, C, H, W) in [0, 1], captioned ``#i label``."""
        self.page, self.n_pages = int(page), int(n_pages)
        self.held_list.clear()
        for idx, img, label in zip(indices, np.asarray(images, np.float32), labels):
            item = QListWidgetItem(QIcon(to_pixmap(img, THUMB)), f"#{idx}" + (f": {label}" if label else ""))
            item.setData(Qt.ItemDataRole.UserRole, int(idx))
            item.setToolTip(f"held-out #{idx}" + (f": {label}" if label else "") + " - right-click for actions")
            self.held_list.addItem(item)
        self.page_label.setText(f"page {self.page + 1} / {max(1, self.n_pages)}")
        self.prev_button.setEnabled(self.page > 0)
        self.next_button.setEnabled(self.page + 1 < self.n_pages)

    def held_labels(self) -> list[str]:
        """The captions of the thumbnails shown (``"#12: 3"``: index and label)."""
        return [self.held_list.item(i).text() for i in range(self.held_list.count())]

    def add_user_image(self, key: int, image: np.ndarray, name: str) -> None:
        """Append one of the user's images (C, H, W) in [0, 1] to "Your images", under ``key``."""
        item = QListWidgetItem(QIcon(to_pixmap(image, THUMB)), name if len(name) <= 12 else name[:11] + "\u2026")
        item.setData(Qt.ItemDataRole.UserRole, int(key))
        item.setToolTip(f"{name} - right-click for actions")
        self.yours_list.addItem(item)
        self.yours_list.setCurrentItem(item)

    def user_keys(self) -> list[int]:
        """Keys of the user's images, in order."""
        return [int(self.yours_list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.yours_list.count())]

    def clear_user_images(self) -> None:
        self.yours_list.clear()

    # -- actions ---------------------------------------------------------------------------------
    def set_can_encode(self, ok: bool) -> None:
        """Whether the actions can run (a model is ready)."""
        self._can = bool(ok)
        for b in self.buttons.values():
            b.setEnabled(self._can and self._current is not None)

    def _select(self, source: str, item: QListWidgetItem | None) -> None:
        if item is None:
            return
        self._current = (source, int(item.data(Qt.ItemDataRole.UserRole)))
        other = self.yours_list if source == "held-out" else self.held_list
        other.blockSignals(True)
        other.setCurrentItem(None)
        other.clearSelection()
        other.blockSignals(False)
        self.set_can_encode(self._can)

    def _act(self, action: str) -> None:
        if self._current is not None:
            self.action_requested.emit(action, *self._current)

    def _menu(self, source: str, lst: QListWidget, pos: QPoint) -> None:
        item = lst.itemAt(pos)
        if item is None:
            return
        menu = QMenu(self)
        key = int(item.data(Qt.ItemDataRole.UserRole))
        for action, text in ACTIONS.items():
            act = menu.addAction(text)
            act.setEnabled(self._can)
            act.triggered.connect(lambda _c=False, a=action: self.action_requested.emit(a, source, key))
        menu.exec(lst.viewport().mapToGlobal(pos))
