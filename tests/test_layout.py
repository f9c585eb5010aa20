"""The layout by role holds: sizes of files and classes, where argparse lives, every feature a package.

The import rules themselves (layers, independence, no cycles) are import-linter contracts, checked by
tests/test_imports.py; this file checks what import-linter cannot see.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for pkg in ("engines", "studio") for p in (ROOT / pkg).rglob("*.py"))
#: The house style's limits (STYLE.md, "Sizes to watch").
MAX_LINES, MAX_METHODS = 600, 30
FEATURES = ("browser", "codes", "coverage", "data_model", "directions", "disentanglement", "energy", "explore", "flows", "interpolate", "latent_map", "losses", "morph",
            "pixels", "runs", "samples", "timelapse", "timeline", "train", "traversal", "watchdog")
#: Features without a widget of their own (the time-lapse is a File menu export over the sample grids).
WITHOUT_VIEW = ("timelapse",)


def test_sources_were_found():
    assert len(SOURCES) > 60 and ROOT / "engines" / "shared" / "protocol.py" in SOURCES


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_file_over_600_lines_and_no_class_over_30_methods(path):
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_LINES, f"{path.name}: split it (house style: about {MAX_LINES} lines)"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            methods = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
            assert len(methods) <= MAX_METHODS, f"{path.name}: class {node.name} has {len(methods)} methods"


def test_argparse_lives_only_in_the_command_line():
    users = {str(p.relative_to(ROOT)) for p in SOURCES if "import argparse" in p.read_text(encoding="utf-8")}
    assert users and all(u.startswith("engines/cli/") for u in users), sorted(users)


def test_every_feature_is_a_package_with_a_view_and_a_controller():
    found = sorted(p.name for p in (ROOT / "studio" / "features").iterdir() if (p / "__init__.py").exists())
    assert found == sorted(FEATURES)
    for name in FEATURES:
        folder = ROOT / "studio" / "features" / name
        assert (folder / "controller.py").exists() and ((folder / "view.py").exists() or name in WITHOUT_VIEW), name
        assert "MainWindow" not in (folder / "controller.py").read_text(encoding="utf-8"), f"{name} reaches for the window"
        assert (folder / "state.py").exists(), f"{name} has no Qt-free state model (state.py)"
        assert not _qt_imports(folder / "state.py"), f"{name}/state.py imports {_qt_imports(folder / 'state.py')}"


#: Packages a feature's ``state.py`` must not import (the model stays apart from the view).
QT_PACKAGES = ("PySide6", "pyqtgraph", "superqt")


def _qt_imports(path: Path) -> list[str]:
    """The modules ``path`` imports from :data:`QT_PACKAGES` (parsed with :mod:`ast`, not run)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [n for n in names if n.split(".")[0] in QT_PACKAGES]
    return found


def test_engines_are_split_by_role():
    for pkg in ("shared", "lib", "worker", "cli", "data", "metrics", "models"):
        assert (ROOT / "engines" / pkg / "__init__.py").exists(), pkg
    families = sorted(p.name for p in (ROOT / "engines" / "models").iterdir() if (p / "__init__.py").exists())
    assert families and "vae" in families and "gan" in families
    assert not [p.name for p in (ROOT / "engines").glob("*.py") if p.name != "__init__.py"], "a module outside the roles"


def test_the_window_icon_is_in_assets(qapp):
    from studio.app import ICON, create_application

    from PySide6.QtGui import QIcon

    assert ICON == ROOT / "assets" / "icon.png" and ICON.is_file()
    assert not QIcon(str(ICON)).isNull() and create_application() is qapp
