"""Checks before Qt starts: is there a display, and does Qt's X11 plugin have its system libraries?

Without them Qt aborts inside its platform plugin with a misleading hint (it names libxcb-cursor0
when libxcb-icccm4 and libxcb-keysyms1 are what is missing, and says the same with no display at
all). This module imports neither Qt nor torch, so it answers in milliseconds.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping

#: The shared libraries Qt 6's xcb platform plugin loads, with the Debian / Ubuntu package of each.
XCB_LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}

NO_DISPLAY = ("no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set; over SSH?).\n"
              "  Headless, the studio still works: `latent-studio snapshot --out shot.png` trains a model and saves a\n"
              "  screenshot of the window, and `latent-studio train | sample | traverse | interpolate | metrics` run\n"
              "  without one. For the window itself: `ssh -X`, or a virtual display (`xvfb-run latent-studio`).")


def _loads(name: str) -> bool:
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def missing_libraries(loads: Callable[[str], bool] = _loads) -> list[str]:
    """The entries of :data:`XCB_LIBRARIES` that cannot be loaded here (sonames), in table order."""
    return [name for name in XCB_LIBRARIES if not loads(name)]


def display_problem(env: Mapping[str, str] | None = None, platform: str | None = None,
                    loads: Callable[[str], bool] = _loads) -> str | None:
    """Why the window cannot open on this machine, as one message that says what to do; None if it can.

    Parameters
    ----------
    env : mapping, optional
        The environment (default ``os.environ``).
    platform : str, optional
        ``sys.platform`` by default. Only Linux is checked: macOS and Windows ship their own plugins.
    loads : callable, optional
        ``loads(soname) -> bool``, whether a shared library loads (``ctypes.CDLL``; a stub in tests).
    """
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        return None
    qpa = env.get("QT_QPA_PLATFORM", "")
    if qpa and not qpa.startswith(("xcb", "wayland")):  # offscreen, vnc, eglfs...: the user chose
        return None
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return NO_DISPLAY
    if not env.get("DISPLAY") or qpa.startswith("wayland"):
        return None  # Wayland: Qt's wayland plugin, which needs none of the X11 libraries
    missing = missing_libraries(loads)
    if not missing:
        return None
    packages = " ".join(XCB_LIBRARIES[m] for m in missing)
    return ("Qt's X11 platform plugin needs system libraries that are missing here: " + ", ".join(missing)
            + f".\n  On Debian or Ubuntu: sudo apt install {packages}\n"
            "  (the README lists the packages for other systems; `latent-studio snapshot` and the CLI need none of them)")
