"""The import contracts: engines never imports studio or Qt; studio never imports torch and sees only
engines.shared; engines in layers; families independent (pyproject.toml, [tool.importlinter])."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True, cwd=ROOT,
        env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"},
    )
    return set(out.stdout.split())


def test_window_modules_do_not_load_torch() -> None:
    mods = _modules_after("import studio.shell.window, studio.app, studio.client, latent_studio; latent_studio.build_parser()")
    assert "PySide6" in mods  # the check below is meaningful: the window really was imported
    assert not {m for m in mods if m == "torch" or m.startswith("torch.")}


def test_engines_do_not_load_qt() -> None:
    mods = _modules_after(
        "import engines.worker.serve, engines.cli.commands, engines.lib.checkpoint, engines.lib.training, engines.models.vae.vae, engines.data"
    )
    assert "torch" in mods
    assert not {m for m in mods if m.split(".")[0] in {"PySide6", "pyqtgraph", "superqt", "studio"}}


def test_import_linter_contracts() -> None:
    """The static contracts in pyproject.toml ([tool.importlinter]) hold for every module, lazy imports included."""
    lint = Path(sys.executable).with_name("lint-imports")
    assert lint.exists(), "import-linter is a test dependency: pip install -e '.[test]'"
    out = subprocess.run([str(lint), "--no-cache"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_pyflakes_finds_no_undefined_or_unused_name() -> None:
    """``ruff check`` with pyflakes' rules ([tool.ruff] in pyproject.toml): an undefined name is a crash waiting in a slot."""
    ruff = Path(sys.executable).with_name("ruff")
    assert ruff.exists(), "ruff is a test dependency: pip install -e '.[test]'"
    out = subprocess.run([str(ruff), "check", "engines", "studio", "tests", "benchmarks", "latent_studio.py"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
