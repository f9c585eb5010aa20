"""The Qt-free state models of the features, driven directly (no qtbot, no QApplication).

Each feature keeps its state and logic in ``studio/features/<name>/state.py`` (STYLE.md, "Models apart
from views"); these tests build a bare model and drive it, as napari's tests drive ``Dims``.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engines.shared import protocol
from engines.shared.datainfo import DataInfo
from engines.shared.results import DisentanglementScores
from studio.features.browser.state import MAX_FILES, PAGE, BrowserState, load_images
from studio.features.data_model.state import (
    IMAGE_DEFAULTS, NATIVE_SIZE, POINT_DEFAULTS, BuildForm, builtin_specs, defaults_for, spec_for_file,
    suggest_defaults,
)
from studio.features.disentanglement.state import NOT_YET, ScoreTable
from studio.features.losses.state import LossTerms, on_right_axis, shown_by_default
from studio.features.samples.state import POINT_SAMPLES, SampleFeed
from studio.features.train.state import TrainProgress, enabled_buttons, hyper_enabled, speed_text

DIGITS = DataInfo(spec="digits", kind="image", shape=(1, 8, 8), size=1000, n_train=900, n_test=100,
                  class_names=tuple(f"digit {i}" for i in range(10)))
RING = DataInfo(spec="ring", kind="points", shape=(2,), size=100, n_train=80, n_test=20)
ROOT = Path(__file__).resolve().parents[1]
FEATURES = ("browser", "data_model", "disentanglement", "losses", "samples", "train")


def test_the_state_modules_load_without_qt():
    """Importing every state model (in a fresh interpreter) loads neither Qt nor pyqtgraph."""
    code = ("import sys\n"
            + "".join(f"import studio.features.{name}.state\n" for name in FEATURES)
            + "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'superqt')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_browser_pages_user_images_and_busy_text(tmp_path):
    state = BrowserState()
    assert state.n_pages() == 0 and state.page_indices(3) == (0, [])
    assert state.cannot_load("a.png").startswith("Cannot use a.png: build a model first")
    assert state.set_data(DIGITS, has_encoder=True)
    assert state.n_pages() == 3 == -(-100 // PAGE)
    assert state.page_indices(-5) == (0, list(range(PAGE)))
    assert state.page_indices(99) == (2, list(range(2 * PAGE, 100)))
    assert state.labels(3, np.array([1, 12])) == ["digit 1", "12", ""]
    image = np.zeros((1, 8, 8), np.float32)
    assert [state.add_user_image(image, "a.png"), state.add_user_image(image, "b.png")] == [1, 2]
    assert state.user[2][1] == "b.png" and state.cannot_load("a.png") == ""
    assert not state.set_data(DIGITS, has_encoder=False) and len(state.user) == 2  # same data: kept
    assert state.set_data(RING, has_encoder=False) and state.user == {} and state.n_pages() == 0
    assert "2-D points" in state.cannot_load("a.png")
    # Encode requests: "projecting..." without an encoder, until each is answered
    assert not state.track(0, "nothing") and state.busy_text() == ""
    assert state.track(7, "held-out #3") and state.track(8, "b.png") and state.last_tracked == 8
    assert state.busy_text() == "projecting... held-out #3, b.png"
    assert state.progress_text(2, 10, "steps") == "projecting... held-out #3, b.png (2/10 steps)"
    assert state.progress_text(2, 0, "") == "projecting... held-out #3, b.png (2)"
    assert state.answered(7) and not state.answered(7) and state.busy_text() == "projecting... b.png"
    assert state.answered(8) and state.busy_text() == ""
    # loading files never raises for a bad one, and stops at MAX_FILES
    bad = tmp_path / "not-an-image.png"
    bad.write_bytes(b"nope")
    out = load_images([str(bad)] * (MAX_FILES + 1), 1, 8)
    assert len(out) == MAX_FILES + 1 and all(img is None and err for _, img, err in out)
    assert "skipped" in out[-1][2]


def test_data_model_defaults_for_ring_and_digits():
    specs = [s for s, _ in builtin_specs()]
    assert "ring" in specs and "digits" in specs
    assert defaults_for("ring") == POINT_DEFAULTS == (2, 100) and defaults_for("digits") == IMAGE_DEFAULTS == (10, 64)
    assert suggest_defaults("ring", IMAGE_DEFAULTS) == POINT_DEFAULTS
    assert suggest_defaults("digits", POINT_DEFAULTS) == IMAGE_DEFAULTS
    assert suggest_defaults("ring", POINT_DEFAULTS) is None and suggest_defaults("digits", IMAGE_DEFAULTS) is None
    assert suggest_defaults("ring", (16, 64)) is None and suggest_defaults("digits", (2, 32)) is None  # the user's
    assert spec_for_file("/d/x.NPZ") == "npz:/d/x.NPZ" and spec_for_file("/d/t10k.gz") == "idx:/d/t10k.gz"
    form = BuildForm(data="ring", model="vae", arch="mlp", latent_dim=2, batch_size=100, seed=3)
    cmd = form.command()
    assert isinstance(cmd, protocol.Configure) and cmd.image_size is None and cmd.options == {"arch": "mlp"}
    assert (cmd.data, cmd.latent_dim, cmd.batch_size, cmd.seed) == ("ring", 2, 100, 3)
    assert BuildForm(data="digits", model="vae", arch="mlp", arch_enabled=False, image_size=16).command().options == {}
    assert BuildForm(data="digits", model="vae", image_size=16).command().image_size == 16 != NATIVE_SIZE


def _measured(step: int, seconds: float = 1.0, **scores: float) -> protocol.DisentanglementMeasured:
    return protocol.DisentanglementMeasured(step=step, scores=DisentanglementScores(**scores), seconds=seconds,
                                            mi_matrix=np.ones((3, 2), np.float32))


def test_score_table_columns_series_and_csv(tmp_path):
    table = ScoreTable()
    assert table.columns() == ["step", "seconds"] and table.summary() == NOT_YET
    table.add(_measured(100, mig=0.25, sap=0.5))
    table.add(_measured(200, 2.5, mig=0.5, beta_vae_score=0.75))
    assert len(table) == 2 and table.mi.shape == (3, 2)
    assert table.columns() == ["step", "seconds", "mig", "sap", "beta_vae_score"]
    x, y = table.series("sap")
    assert list(x) == [100.0, 200.0] and y[0] == 0.5 and np.isnan(y[1])
    assert table.csv_rows() == [[100, "1", "0.25", "0.5", ""], [200, "2.5", "0.5", "", "0.75"]]
    assert table.latest() == [("MIG", 0.5), ("beta-VAE", 0.75)]
    assert table.summary() == "step 200: MIG 0.50 (2.5 s)"
    with table.write_csv(tmp_path / "scores.csv").open(encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == table.columns() and rows[1] == ["100", "1", "0.25", "0.5", ""]
    table.clear()
    assert table.rows == [] and table.mi is None


def test_loss_terms_shown_axes_and_markers():
    assert shown_by_default("recon") and not shown_by_default("elbo") and not shown_by_default("kl/z3")
    assert on_right_axis("kl") and on_right_axis("kl/z0") and not on_right_axis("recon")
    terms = LossTerms()
    assert [terms.add_term(n) for n in ("loss", "elbo", "kl", "kl/z0")] == [True, False, True, False]
    assert terms.add_term("elbo") is False and terms.index("kl") == 2 and terms.any_on_right()
    assert terms.visible_terms() == ["loss", "kl"]
    assert terms.set_shown("elbo", True) and not terms.set_shown("elbo", True)
    assert terms.visible_terms() == ["loss", "elbo", "kl"]
    with pytest.raises(KeyError):
        terms.set_shown("unseen", True)
    for step, text in ((10, "lr=0.001"), (50, "beta=4"), (30, "lr=0.01")):
        terms.add_marker(step, text)
    assert terms.truncate(20) == [1, 2] and terms.markers == [(10, "lr=0.001")]
    terms.clear()
    assert terms.shown == {} and terms.markers == []


def test_sample_feed_keeps_the_large_point_sample():
    feed = SampleFeed()
    assert POINT_SAMPLES == 1000 and feed.step == -1 and not feed.points_shown
    assert feed.show_grid(points=True)  # the first 64 points, until the large sample arrives
    feed.shown(5)
    feed.shown(6, large_sample=True)
    assert feed.points_shown and feed.step == 6
    assert not feed.show_grid(points=True) and feed.show_grid(points=False)
    feed.shown(7)
    assert feed.points_shown and feed.step == 7
    feed.reset()
    assert not feed.points_shown and feed.step == -1 and feed.show_grid(points=True)


@pytest.mark.parametrize(("state", "on"), [
    ("stopped", set()), ("idle", set()), ("ready", {"start"}), ("training", {"pause", "stop"}),
    ("paused", {"resume", "stop"}), ("error", set()),
])
def test_train_buttons_for_each_state(state, on):
    buttons = enabled_buttons(state)
    assert list(buttons) == ["start", "pause", "resume", "stop"]
    assert {name for name, enabled in buttons.items() if enabled} == on
    assert hyper_enabled(state) == (state in ("ready", "training", "paused"))
    progress = TrainProgress()
    assert progress.set_state(state) == buttons and progress.state == state


def test_train_progress_text():
    progress = TrainProgress()
    assert progress.step_text() == "0" and progress.speed_text() == ""
    progress.set_progress(12345, 12.34, 789.6)
    assert progress.step_text() == "12,345" and progress.speed_text() == "12.3 steps/s, 790 images/s"
    progress.set_progress(12346)  # no new speed: the last one stays
    assert progress.step_text() == "12,346" and progress.speed_text() == "12.3 steps/s, 790 images/s"
    assert speed_text(3.0) == "3.0 steps/s" and speed_text(3.0, 0.0) == "3.0 steps/s"


def test_model_settings_typed_as_the_command_lines_set() -> None:
    from studio.features.data_model.state import BuildForm, parse_settings, settings_help

    assert parse_settings("estimator=nvil persistent=TRUE, tau_min=0.3 layers=2 name=a=b") == {
        "estimator": "nvil", "persistent": True, "tau_min": 0.3, "layers": 2, "name": "a=b"}
    assert parse_settings("  ") == {}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_settings("layers 2")
    cmd = BuildForm(data="digits", model="dbn", arch="conv", settings="layers=1 layer_steps=300").command()
    assert cmd.options == {"arch": "conv", "layers": 1, "layer_steps": 300}
    assert "layer_steps=300" in settings_help({"layer_steps": 300, "seed": 0}) and "seed=" not in settings_help({"seed": 0})
