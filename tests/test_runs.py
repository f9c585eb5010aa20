"""Runs on disk and the Runs dock: read, registered, compared side by side, exported."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QApplication

import latent_studio
from engines.shared import protocol
from engines.shared.runs import comparable_groups, find_runs, new_run_name, read_run, register_run, write_metrics_csv
from studio.features.runs.state import Comparison, run_summary

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def make_run(folder, engine="vae", spec="digits", step=100, losses=None, quality=None, held_out=None, picture=True,
             mtime=None):
    """A run folder as train / the window write it (the weights file's bytes are never read here)."""
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"not read")
    (folder / "model.json").write_text(json.dumps({"engine": engine, "data_spec": spec, "image_size": 16, "step": step}))
    losses = losses or {"loss": [3.0, 2.0, 1.5], "kl": [0.1, 0.2, 0.3]}
    steps = [step // 3, 2 * step // 3, step]
    write_metrics_csv(folder / "metrics.csv", steps, losses)
    if held_out is not None:
        (folder / "run.json").write_text(json.dumps({"held_out": held_out}))
    if quality is not None:
        (folder / "quality.json").write_text(json.dumps({"features": "classifier features", "model": quality}))
    if picture:
        Image.fromarray((np.random.default_rng(step).random((24, 24)) * 255).astype(np.uint8)).save(folder / "samples.png")
    if mtime is not None:
        os.utime(folder / "model.safetensors", (mtime, mtime))
    return folder


def test_read_run_gathers_curves_likelihood_and_quality(tmp_path) -> None:
    run = make_run(tmp_path / "a", held_out={"kind": "elbo", "nll_nats": 92.5, "iwae_nats": -90.1, "iwae_k": 50},
                   quality={"fd": 57.5, "precision": 0.64, "recall": 0.76, "n": 5000})
    rec = read_run(run)
    assert rec.engine == "vae" and rec.data_spec == "digits" and rec.image_size == 16 and rec.step == 100
    assert rec.curves["loss"] == ([33, 66, 100], [3.0, 2.0, 1.5]) and rec.final["kl"] == pytest.approx(0.3)
    assert rec.final["held_out_nll_nats"] == 92.5 and rec.final["held_out_iwae_nats"] == pytest.approx(90.1)
    assert rec.kinds == {"held_out_nll_nats": "elbo", "held_out_iwae_nats": "IWAE, k=50", "fd": "classifier features"}
    assert rec.final["fd"] == 57.5 and "n" not in rec.final and rec.samples == run / "samples.png"
    assert run_summary(rec) == "NLL 92.5 nats (elbo), FD 57.5, P 0.64 R 0.76"
    assert read_run(tmp_path / "a" / "model.safetensors").path == run  # the checkpoint names its run too
    assert read_run(tmp_path) is None  # no model here


def test_a_broken_file_is_named_not_raised(tmp_path) -> None:
    run = make_run(tmp_path / "a")
    (run / "quality.json").write_text("{not json")
    (run / "metrics.csv").write_text("step,loss\n1,abc\n")
    rec = read_run(run)
    assert rec is not None and rec.engine == "vae"
    assert any(p.startswith("quality.json:") for p in rec.problems) and any(p.startswith("metrics.csv:") for p in rec.problems)


def test_find_runs_lists_the_home_and_registered_folders_newest_first(tmp_path) -> None:
    home = tmp_path / "home"
    make_run(home / "runs" / "old", mtime=1_000_000)
    make_run(home / "runs" / "new", mtime=2_000_000)
    outside = make_run(tmp_path / "elsewhere", spec="shapes", mtime=1_500_000)
    (home / "runs" / "empty").mkdir()
    register_run(outside, home)
    register_run(outside, home)  # once only
    assert json.loads((home / "runs.json").read_text())["runs"] == [str(outside.resolve())]
    names = [r.name for r in find_runs(home)]
    assert names == ["new", "elsewhere", "old"]
    groups = comparable_groups(find_runs(home))
    assert len(groups[("digits", 16)]) == 2 and len(groups[("shapes", 16)]) == 1


def test_train_registers_its_run(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LATENT_STUDIO_HOME", str(tmp_path / "home"))
    out = tmp_path / "ring"
    assert latent_studio.main(["train", "--data", "ring", "--model", "vae", "--latent-dim", "2", "--steps", "3",
                               "--threads", "1", "--out", str(out)]) == 0
    (rec,) = find_runs(tmp_path / "home")
    assert rec.path == out.resolve() and rec.engine == "vae" and rec.step == 3 and "loss" in rec.curves


def test_new_run_names_are_folder_safe() -> None:
    name = new_run_name("beta-vae", "idx:/data/mnist/t10k-images-idx3-ubyte.gz", when=0)
    assert name.endswith("-beta-vae-t10k-images-idx3-ubyte.gz") and "/" not in name and ":" not in name


def test_comparison_marks_runs_on_other_data_and_the_best_values(tmp_path) -> None:
    a = read_run(make_run(tmp_path / "a", quality={"fd": 50.0, "precision": 0.7}, held_out={"nll_nats": 95.0, "kind": "exact"}))
    b = read_run(make_run(tmp_path / "b", quality={"fd": 40.0, "precision": 0.6}, held_out={"nll_nats": 99.0},
                          losses={"loss": [1.0, 0.9, 0.8], "d_loss": [1.0, 1.0, 1.0]}))
    c = read_run(make_run(tmp_path / "c", spec="shapes", quality={"fd": 1.0}))
    cmp = Comparison([a, b, c])
    assert cmp.comparable == [True, True, False] and [r.name for r in cmp.shown] == ["a", "b"]
    assert cmp.shared_terms() == ["loss"]  # kl and d_loss are not in both
    assert cmp.terms() == [("loss", 2), ("kl", 1), ("d_loss", 1)]  # drawn for the runs that have them
    best = cmp.best()
    assert best["fd"] == 1 and best["precision"] == 0 and best["held_out_nll_nats"] == 0  # c, best FD, is not compared
    rows = cmp.rows()
    assert rows[0][:5] == ["run", "model", "data", "steps", "compared"] and rows[3][4] == "no: other data"
    assert rows[0][5:7] == ["held-out NLL (nats)", "NLL kind"] and rows[1][5:7] == ["95", "exact"]
    parsed = list(csv.reader(cmp.to_csv().splitlines()))
    assert parsed == rows


# -- the dock, as a user drives it -------------------------------------------------------------------------------
@pytest.fixture
def studio_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("LATENT_STUDIO_HOME", str(home))
    make_run(home / "runs" / "vae-digits", quality={"fd": 57.5, "precision": 0.64, "recall": 0.76},
             held_out={"kind": "elbo", "nll_nats": 92.5}, mtime=3_000_000)
    make_run(home / "runs" / "gan-digits", engine="gan", step=300, quality={"fd": 31.0, "precision": 0.8, "recall": 0.5},
             losses={"loss": [2.0, 1.8, 1.7], "d_loss": [0.7, 0.6, 0.6]}, mtime=2_000_000)
    make_run(home / "runs" / "vae-shapes", spec="shapes:32", mtime=1_000_000)
    return home


def test_the_runs_dock_compares_picked_runs_and_exports_them(studio_home, tmp_path, qtbot) -> None:
    from tests.test_window_fit import FakeClient, ready

    from studio.shell.window import MainWindow

    w = MainWindow(client=FakeClient(state="idle"))
    qtbot.addWidget(w)
    w.client.ready.emit(ready(step=0))
    w.resize(1920, 1080)
    w.dock_layout.fit(1920, 1080)
    w.show()
    w.docks["Runs"].raise_()
    view = w.runs.view
    qtbot.waitUntil(lambda: view.list.rowCount() == 3, timeout=5000)
    assert [view.list.item(r, 0).text() for r in range(3)] == ["vae-digits", "gan-digits", "vae-shapes"]
    assert "FD 57.5" in view.list.item(0, 5).text() and view.list.item(0, 4).text().startswith("1970-")

    view.select_paths([studio_home / "runs" / "vae-digits", studio_home / "runs" / "gan-digits",
                       studio_home / "runs" / "vae-shapes"])
    cmp = w.runs.comparison
    assert [r.name for r in cmp.records] == ["vae-digits", "gan-digits", "vae-shapes"]
    assert view.term_combo.currentData() == "loss" and view.term_combo.count() == 3
    assert view.term_combo.itemText(1) == "kl (1 of 2 runs)" and view.term_combo.itemText(2) == "d_loss (1 of 2 runs)"
    curves = [item for item in view.plot.listDataItems()]
    assert len(curves) == 2  # the shapes run is listed, not drawn
    np.testing.assert_allclose(curves[1].getData()[1], [2.0, 1.8, 1.7])
    assert len(view.sample_views) == 2 and all(v.image() is not None for v in view.sample_views)
    assert view.table.rowCount() == 3 and "not comparable" in view.note.text()
    headers = [view.table.horizontalHeaderItem(c).text() for c in range(view.table.columnCount())]
    fd = headers.index("FD (classifier features)")
    assert view.table.item(1, fd).font().bold() and not view.table.item(0, fd).font().bold()  # lower FD wins

    QApplication.processEvents()
    w.grab().save(str(tmp_path / "runs-dock.png"))
    with qtbot.waitSignals([w.services.exported, w.services.exported], timeout=5000):
        w.runs.export_csv(tmp_path / "cmp.csv")
        w.runs.export_png(tmp_path / "cmp.png")
    rows = list(csv.reader(open(tmp_path / "cmp.csv")))
    assert rows[0][0] == "run" and {r[0] for r in rows[1:]} == {"vae-digits", "gan-digits", "vae-shapes"}
    assert Image.open(tmp_path / "cmp.png").size[0] > 300
    w.close()


def test_the_windows_autosave_writes_its_curves_for_the_runs_dock(studio_home, qtbot) -> None:
    from tests.test_window_fit import FakeClient, ready

    from studio.shell.window import MainWindow

    w = MainWindow(client=FakeClient(state="idle"))
    qtbot.addWidget(w)
    w.client.ready.emit(ready(step=0))
    w.history.append(np.array([1.0, 2.0]), ["loss", "kl"], np.array([[2.0, 0.1], [1.5, np.nan]], np.float32))
    folder = studio_home / "runs" / "20261202-000000-vae-digits"
    make_run(folder, losses={"loss": [9.0, 9.0, 9.0]})  # the worker's autosave; metrics.csv is the window's to write
    w.client.checkpoint_saved.emit(protocol.CheckpointSaved(path=str(folder / "model.safetensors"), step=2, autosave=True))
    qtbot.waitUntil(lambda: read_run(folder).curves.get("loss", ([], []))[1] == [2.0, 1.5], timeout=5000)
    assert read_run(folder).curves["kl"] == ([1], [pytest.approx(0.1)])
    qtbot.waitUntil(lambda: w.runs.view.list.rowCount() == 4, timeout=5000)  # listed after the refresh
    w.close()
