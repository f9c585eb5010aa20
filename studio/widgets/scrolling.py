"""Scroll areas that let a panel be smaller than its contents, so the window fits a 1366x768 screen.

A panel's minimum size is what its layout needs; docked side by side, those minimums add up to more
than a laptop's screen. Wrapped in a scroll area a panel keeps its natural size when there is room and
scrolls (never overlaps) when there is not.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QPaintEvent
from PySide6.QtWidgets import (
    QComboBox, QFrame, QGridLayout, QScrollArea, QStyle, QStyleOptionComboBox, QStylePainter, QTabWidget, QVBoxLayout, QWidget,
)


class _Room(QWidget):
    """What a scroll area holds: one page, given the viewport's size unless the page's minimum is larger.

    A page with word-wrapped text has a height-for-width, and a resizable ``QScrollArea`` then sizes it
    by its *preferred* height for the width: a tab taller than the window with a needless scroll bar,
    and rows that move when a caption's text changes. This room answers no height-for-width, so the
    page is as tall as the viewport, or its minimum size hint where that is taller.
    """

    def __init__(self, page: QWidget) -> None:
        super().__init__()
        self.page = page
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(page)

    def heightForWidth(self, _width: int) -> int:  # noqa: N802 - Qt override
        return -1

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return self.page.sizeHint()


def _wrap(area: QScrollArea, widget: QWidget) -> QScrollArea:
    """``widget`` inside ``area`` (in a :class:`_Room`), grown to fill it, without a frame."""
    area.setWidget(_Room(widget))
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    return area


def room_of(widget: QWidget) -> QWidget | None:
    """The widget whose size is the room ``widget`` is shown in: its scroll area's viewport, else its parent."""
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QScrollArea):
            return parent.viewport()
        parent = parent.parentWidget()
    return widget.parentWidget()


def page_of(area: QScrollArea) -> QWidget | None:
    """The page ``area`` scrolls (what :func:`scrollable` or :class:`ScrollingTabs` was given)."""
    room = area.widget()
    return room.page if isinstance(room, _Room) else room


def scrollable(widget: QWidget, min_width: int = 120, min_height: int = 60) -> QScrollArea:
    """``widget`` in a frameless, resizable scroll area whose minimum is ``min_width`` x ``min_height`` px.

    The scroll area grows ``widget`` to fill it and shows scroll bars only where ``widget`` would be
    squeezed below its own minimum size. ``widget`` is reachable again as ``page_of(area)``.
    """
    area = _wrap(QScrollArea(), widget)
    area.setMinimumSize(min_width, min_height)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
    area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
    area.setSizeAdjustPolicy(QScrollArea.SizeAdjustPolicy.AdjustIgnored)
    return area


class _Area(QScrollArea):
    """A scroll area whose size hint is its contents' (so a tab or dock opens at its natural size)."""

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        inner = page_of(self)
        return inner.sizeHint() if inner is not None else super().sizeHint()


class ScrollingTabs(QTabWidget):
    """A tab widget whose pages scroll when the window is smaller than a page's minimum size.

    ``addTab``, ``indexOf``, ``setCurrentWidget`` and ``currentWidget`` speak of the pages themselves;
    the scroll areas around them are an implementation detail.
    """

    def addTab(self, widget: QWidget, label: str) -> int:  # noqa: N802 - Qt override
        return super().addTab(_wrap(_Area(), widget), label)

    def page(self, index: int) -> QWidget | None:
        """The page (not its scroll area) at ``index``; None out of range."""
        area = super().widget(index)
        return page_of(area) if isinstance(area, QScrollArea) else area

    def widget(self, index: int) -> QWidget | None:  # noqa: D102 - Qt override, the page itself
        return self.page(index)

    def indexOf(self, widget: QWidget) -> int:  # noqa: N802 - Qt override
        for i in range(self.count()):
            if self.page(i) is widget:
                return i
        return super().indexOf(widget)

    def currentWidget(self) -> QWidget | None:  # noqa: N802 - Qt override
        return self.page(self.currentIndex())

    def setCurrentWidget(self, widget: QWidget) -> None:  # noqa: N802 - Qt override
        index = self.indexOf(widget)
        if index >= 0:
            self.setCurrentIndex(index)


class MiddleElidedCombo(QComboBox):
    """A combo box that shortens a long current item in its middle (``idx:/data/...ubyte.gz``), not at its end.

    A file path's end is the part that tells files apart; Qt's own combo box cuts it off. The list
    still shows every item whole, and the box never widens the panel beyond ``min_chars`` characters.
    """

    def __init__(self, min_chars: int = 16, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(min_chars)

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        field = self.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                            QStyle.SubControl.SC_ComboBoxEditField, self)
        option.currentText = self.fontMetrics().elidedText(option.currentText, Qt.TextElideMode.ElideMiddle,
                                                           max(0, field.width() - 4))
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)


class TwoColumns(QWidget):
    """Boxes two by two where the room is wide enough for their minimum widths, else one under another.

    Follows the room it is shown in (:func:`room_of`: its scroll area's viewport), and a box whose
    contents change (a caption, a slider added) refits, so a tab never scrolls sideways when one
    column would fit.

    Parameters
    ----------
    boxes : list of QWidget
        In reading order: row by row in two columns, else top to bottom.
    """

    def __init__(self, boxes: list[QWidget], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.boxes = list(boxes)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.columns = 0
        self._room = 0
        self._watching: QWidget | None = None
        self.arrange(2)

    def arrange(self, columns: int) -> None:
        """Lay the boxes out in ``columns`` (1 or 2) columns."""
        if columns == self.columns:
            return
        self.columns = columns
        for box in self.boxes:
            self.grid.removeWidget(box)
        for r in range(len(self.boxes)):
            self.grid.setRowStretch(r, 0)
        for i, box in enumerate(self.boxes):
            row, col = (i // 2, i % 2) if columns == 2 else (i, 0)
            self.grid.addWidget(box, row, col)
            self.grid.setRowStretch(row, 1)
        for c in range(2):
            self.grid.setColumnStretch(c, 1 if c < columns else 0)

    def two_column_width(self) -> int:
        """The narrowest room (px) in which the boxes fit two by two, from their minimum widths now."""
        widths = [box.minimumSizeHint().width() for box in self.boxes]
        left = max(widths[0::2], default=0)
        right = max(widths[1::2], default=0)
        return left + right + max(0, self.grid.horizontalSpacing()) + 24  # the page's own margins

    def showEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        super().showEvent(event)
        room = room_of(self)
        if room is not None and room is not self._watching:
            room.installEventFilter(self)
            self._watching = room
        self.fit(room.width() if room is not None else self.width())

    def event(self, event) -> bool:  # noqa: ANN001 - Qt override
        if event.type() == QEvent.Type.LayoutRequest and self._room:
            self.fit(self._room)
        return super().event(event)

    def eventFilter(self, watched, event) -> bool:  # noqa: ANN001, N802 - Qt override
        if event.type() == QEvent.Type.Resize:
            self.fit(watched.width())
        return False

    def fit(self, width: int) -> None:
        """Two columns in a room ``width`` px wide if they fit, else one."""
        self._room = int(width)
        self.arrange(2 if width >= self.two_column_width() else 1)
