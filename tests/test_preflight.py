"""The checks before Qt starts: no display, or missing X11 libraries, is one clear message, not Qt's abort."""

from __future__ import annotations

import subprocess
import sys

from studio.preflight import NO_DISPLAY, XCB_LIBRARIES, display_problem, missing_libraries


def test_no_display_points_to_snapshot_and_the_cli() -> None:
    message = display_problem(env={}, platform="linux")
    assert message == NO_DISPLAY and "latent-studio snapshot" in message and "xvfb-run" in message


def test_missing_xcb_libraries_are_named_with_their_packages() -> None:
    absent = {"libxcb-icccm.so.4", "libxcb-keysyms.so.1"}
    message = display_problem(env={"DISPLAY": ":0"}, platform="linux", loads=lambda name: name not in absent)
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in message
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1" in message
    assert "cursor" not in message  # not Qt's misleading hint


def test_a_working_display_other_platforms_and_chosen_plugins_pass() -> None:
    assert display_problem(env={"DISPLAY": ":0"}, platform="linux", loads=lambda name: True) is None
    assert display_problem(env={}, platform="darwin") is None and display_problem(env={}, platform="win32") is None
    assert display_problem(env={"QT_QPA_PLATFORM": "offscreen"}, platform="linux") is None
    assert display_problem(env={"WAYLAND_DISPLAY": "wayland-0"}, platform="linux", loads=lambda n: False) is None
    assert missing_libraries(loads=lambda name: True) == []
    assert set(missing_libraries(loads=lambda name: False)) == set(XCB_LIBRARIES)


def test_the_studio_command_without_a_display_says_so_and_exits_2() -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    out = subprocess.run([sys.executable, "-m", "latent_studio"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "no display" in out.stderr and "Traceback" not in out.stderr
