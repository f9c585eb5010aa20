"""The dock layout: saved and restored between sessions, reset from the View menu, kept free of stray tab bars.

The layout is Qt's own (``QMainWindow.saveState`` / ``restoreGeometry``) in a :class:`QSettings`, so a
user's arrangement of the docks comes back at the next start; View > Reset layout returns to the one
the window opened with.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSettings, Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QMainWindow, QTabBar

#: Version of the saved dock layout (``QMainWindow.saveState``); bump it when the docks change.
LAYOUT_VERSION = 2


def hide_stray_tab_bars(window: QMainWindow) -> list[QTabBar]:
    """Hide the dock tab bars Qt no longer uses but leaves shown; the ones hidden.

    Each time docks are tabified or a layout is restored, Qt (6.11 here) makes a new tab bar for the
    group and can leave the old one visible over the docks (a stray "Losses | Coverage" bar over the
    left column, its tabs clickable). The bar in use is the newest with the most tabs of its group;
    every older or smaller one whose titles another bar contains is hidden.
    """
    bars = window.findChildren(QTabBar, options=Qt.FindChildOption.FindDirectChildrenOnly)
    titles = [{bar.tabText(i) for i in range(bar.count())} for bar in bars]
    hidden = []
    for i, bar in enumerate(bars):
        stale = any(j != i and titles[i] <= titles[j] and (len(titles[j]) > len(titles[i]) or j > i)
                    for j in range(len(bars)))
        if stale and bar.isVisible():
            bar.hide()
            hidden.append(bar)
    return hidden


class DockLayout(QObject):
    """Saves, restores and resets a main window's docks.

    Parameters
    ----------
    window : QMainWindow
        Its docks must all be added (the layout it has now is the default that :meth:`reset` restores).
    docks : dict of str to QDockWidget
        The docks by title; :meth:`reset` shows them all and raises ``raised``.
    raised : tuple of str
        The docks brought to the front of their tab groups on reset.

    Attributes
    ----------
    settings : QSettings or None
        Where :meth:`save` writes (set by :meth:`restore`; None: nowhere, as in tests).
    """

    def __init__(self, window: QMainWindow, docks: dict[str, QDockWidget], raised: tuple[str, ...] = ()) -> None:
        super().__init__(window)
        self.window, self.docks, self.raised = window, docks, raised
        self.settings: QSettings | None = None
        self.default = window.saveState(LAYOUT_VERSION)
        self._tidy_timer = QTimer(self)
        self._tidy_timer.setSingleShot(True)
        self._tidy_timer.setInterval(0)
        self._tidy_timer.timeout.connect(self.tidy)
        # Qt shows the stale bars again when it lays the docks out (shown, resized, a dock dragged)
        window.installEventFilter(self)
        for dock in docks.values():
            dock.dockLocationChanged.connect(lambda _area: self._tidy_timer.start())
        self.tidy()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        """Tidy the tab bars once the window's layout has run (never consumes the event)."""
        if event.type() in (QEvent.Type.Show, QEvent.Type.LayoutRequest, QEvent.Type.Resize):
            self._tidy_timer.start()
        return False

    def fit(self, width: int, height: int) -> None:
        """Size the docks for a ``width`` x ``height`` window: side columns and the bottom row grow with a
        large screen (a fifth of the width each side, a third of the height below), within bounds that
        keep a 1366x768 laptop's central tabs usable."""
        side = [self.docks[t] for t in ("Data & Model", "Explore") if t in self.docks]
        widths = [min(420, max(290, width // 5)), min(480, max(330, width // 5))]
        self.window.resizeDocks(side, widths[: len(side)], Qt.Orientation.Horizontal)
        if "Losses" in self.docks:
            self.window.resizeDocks([self.docks["Losses"]], [min(400, max(240, height // 3))], Qt.Orientation.Vertical)

    def tidy(self) -> list[QTabBar]:
        """:func:`hide_stray_tab_bars` on the window."""
        return hide_stray_tab_bars(self.window)

    def reset(self) -> None:
        """View > Reset layout: every dock back where the window opened it, shown."""
        self.window.restoreState(self.default, LAYOUT_VERSION)
        for dock in self.docks.values():
            dock.show()
        for title in self.raised:
            self.docks[title].raise_()
        self.tidy()

    def restore(self, settings: QSettings) -> bool:
        """The window's geometry and docks from ``settings`` (as :meth:`save` wrote them); False if none saved.

        ``settings`` is remembered, so closing the window saves there again.
        """
        self.settings = settings
        geometry, state = settings.value("window/geometry"), settings.value("window/state")
        ok = bool(geometry is not None and self.window.restoreGeometry(geometry))
        ok = bool(state is not None and self.window.restoreState(state, LAYOUT_VERSION)) and ok
        self.tidy()
        return ok

    def save(self, settings: QSettings | None = None) -> None:
        """Write the window's geometry and docks to ``settings`` (default: :attr:`settings`; None: nothing)."""
        settings = settings if settings is not None else self.settings
        if settings is not None:
            settings.setValue("window/geometry", self.window.saveGeometry())
            settings.setValue("window/state", self.window.saveState(LAYOUT_VERSION))
            settings.sync()
