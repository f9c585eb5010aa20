"""The Coverage and Disentanglement panels and features, driven by synthetic worker events (no worker), and the collapse detector."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest

from engines.shared import protocol
from fakes import FakeClient, caps
from engines.shared.datainfo import DataInfo
from engines.shared.results import ClassCoverage, DisentanglementScores, MixtureCoverage
from engines.shared.spec import LatentSpec
from studio.features.coverage.controller import CoverageController
from studio.features.coverage.view import CoveragePanel, critic_levels
from studio.features.disentanglement.controller import DisentanglementController
from studio.features.disentanglement.view import NO_FACTORS, DisentanglementPanel
from studio.services import Services
from studio.features.coverage.state import CollapseDetector
from studio.state import LossHistory

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

RING = tuple((float(np.cos(a)), float(np.sin(a))) for a in np.linspace(0, 2 * np.pi, 8, endpoint=False))
RING_INFO = DataInfo(spec="ring", kind="points", shape=(2,), size=1000, n_train=900, n_test=100, modes=RING, mode_std=0.05)
DIGITS_INFO = DataInfo(spec="digits", kind="image", shape=(1, 8, 8), size=1797, n_train=1600, n_test=197,
                       class_names=tuple(str(i) for i in range(10)))
SHAPES_INFO = DataInfo(spec="shapes:32", kind="image", shape=(1, 32, 32), size=1000, n_train=900, n_test=100,
                       factor_names=("shape", "scale", "rotation", "x", "y"), factor_sizes=(3, 6, 40, 32, 32))


def mixture_event(step: int, captured: int, rng: np.random.Generator, grid: int = 16) -> protocol.CoverageMeasured:
    modes = np.asarray(RING[:captured], np.float32)
    samples = modes[rng.integers(0, captured, 200)] + rng.normal(0, 0.05, (200, 2)).astype(np.float32)
    critic = rng.uniform(0, 1, (grid, grid)).astype(np.float32)
    result = MixtureCoverage(n=200, modes_total=8, modes_captured=captured, high_quality_share=0.9,
                             reverse_kl=0.1 * (9 - captured), per_mode_counts=(25,) * captured + (0,) * (8 - captured))
    return protocol.CoverageMeasured(step=step, metric="mixture", result=result, samples=samples, critic=critic,
                                     extent=[-1.5, 1.5, -2.0, 2.0])


def class_event(step: int, covered: int) -> protocol.CoverageMeasured:
    generated = [1.0 / covered if i < covered else 0.0 for i in range(10)]
    result = ClassCoverage(metric="classes", n=500, classes_total=10, classes_covered=covered, class_kl=0.5,
                           confident_share=0.8, generated_hist=tuple(generated), data_hist=(0.1,) * 10,
                           classifier_accuracy=0.95, classes_covered_any=covered)
    return protocol.CoverageMeasured(step=step, metric="classes", result=result)


def test_mixture_events_draw_points_crosses_and_critic(qtbot) -> None:
    panel = CoveragePanel()
    qtbot.addWidget(panel)
    panel.set_data(RING_INFO, caps(encoder=False))
    assert panel.view.currentWidget() is panel.points_plot
    assert len(panel.modes.data) == 8  # the red crosses
    rng = np.random.default_rng(0)
    panel.add_coverage(mixture_event(100, 7, rng))
    assert len(panel.scatter.data) == 200
    assert panel.critic.image is not None and panel.critic.image.shape == (16, 16)
    assert tuple(panel.critic.levels) == (0.0, 1.0)
    rect = panel.critic.mapRectToParent(panel.critic.boundingRect())
    assert (rect.left(), rect.right(), rect.top(), rect.bottom()) == pytest.approx((-1.5, 1.5, -2.0, 2.0))
    text = panel.summary.text()
    assert "7 / 8 modes" in text and "90% high quality" in text and "reverse KL 0.20 nats" in text
    assert not panel.banner.isVisibleTo(panel)


def test_critic_levels_fixed_per_event() -> None:
    assert critic_levels(np.array([[0.2, 0.7]], np.float32)) == (0.0, 1.0)
    assert critic_levels(np.array([[-3.0, 2.0]], np.float32)) == (-3.0, 2.0)
    assert critic_levels(np.full((2, 2), np.nan, np.float32)) == (0.0, 1.0)


def test_class_events_draw_both_histograms_with_class_names(qtbot) -> None:
    panel = CoveragePanel()
    qtbot.addWidget(panel)
    panel.set_data(DIGITS_INFO, caps(encoder=False))
    panel.add_coverage(class_event(50, 4))
    assert panel.view.currentWidget() is panel.hist_plot
    gen, real = panel.bars_generated.opts, panel.bars_real.opts
    assert len(gen["x"]) == len(real["x"]) == 10
    assert np.allclose(np.asarray(real["x"]) - np.asarray(gen["x"]), 0.4)  # side by side per class
    assert np.allclose(gen["height"][:4], 0.25) and np.allclose(gen["height"][4:], 0.0)
    assert np.allclose(real["height"], 0.1)
    ticks = panel.hist_plot.getPlotItem().getAxis("bottom")._tickLevels[0]
    assert [t[1] for t in ticks] == list(DIGITS_INFO.class_names)
    assert "4 / 10 classes (PacGAN), 4 confident" in panel.summary.text()
    assert "classifier accuracy 95%" in panel.summary.text()
    assert panel.quality_line.text() == ""  # no sample quality with that measurement
    q = {"fd": 57.5, "precision": 0.64, "recall": 0.76, "density": 0.5, "coverage": 0.63, "classifier_score": 5.9,
         "n": 1000.0, "n_reference": 1000.0}
    panel.add_coverage(dataclasses.replace(class_event(300, 5), quality=q))
    assert panel.quality_line.text() == ("FD 57.5 (classifier features) \u00b7 classifier score 5.90 \u00b7 precision 0.64"
                                         " \u00b7 recall 0.76 \u00b7 density 0.50 \u00b7 coverage 0.63 \u00b7 1,000 samples vs 1,000 real")
    x, y = panel.curve_data()["precision"]
    assert np.isnan(y[0]) and y[1] == pytest.approx(0.64)


def test_curves_grow_with_each_event_and_clear(qtbot) -> None:
    panel = CoveragePanel()
    qtbot.addWidget(panel)
    panel.set_data(RING_INFO, caps(encoder=False))
    rng = np.random.default_rng(1)
    for i, captured in enumerate([3, 5, 8]):
        panel.add_coverage(mixture_event(100 * (i + 1), captured, rng))
        data = panel.curve_data()
        assert all(len(x) == i + 1 for x, _ in data.values())
    x, y = panel.curve_data()["captured"]
    assert list(x) == [100, 200, 300] and np.allclose(y, [3 / 8, 5 / 8, 1.0])
    assert np.allclose(panel.curve_data()["kl"][1], [0.6, 0.4, 0.1])
    panel.clear()
    assert all(len(x) == 0 for x, _ in panel.curve_data().values())


def test_collapse_warning_when_captured_modes_drop(qtbot) -> None:
    panel = CoveragePanel()
    qtbot.addWidget(panel)
    panel.set_data(RING_INFO, caps(encoder=False))
    warnings: list[str] = []
    panel.warning.connect(warnings.append)
    rng = np.random.default_rng(2)
    for step, captured in [(100, 6), (200, 8), (300, 4)]:
        panel.add_coverage(mixture_event(step, captured, rng))
    assert warnings == [] and not panel.banner.isVisibleTo(panel)
    panel.add_coverage(mixture_event(400, 1, rng))
    assert warnings == ["Mode collapse at step 400: 1 / 8 modes captured"]
    assert panel.banner.isVisibleTo(panel) and "step 400" in panel.banner.label.text()
    panel.add_coverage(mixture_event(500, 1, rng))  # still collapsed: said once
    assert len(warnings) == 1


def test_detector_coverage_thresholds() -> None:
    d = CollapseDetector()
    assert d.check_coverage(0, 1, 8) is None  # never had more: not a drop
    assert d.check_coverage(1, 8, 8) is None
    assert d.check_coverage(2, 3, 8) is None  # 3 > 25% of 8
    assert d.check_coverage(3, 2, 8) == "Mode collapse at step 3: 2 / 8 modes captured"
    assert d.check_coverage(4, 2, 8) is None  # latched
    assert d.check_coverage(5, 7, 8) is None  # recovered: re-armed
    assert d.check_coverage(6, 1, 10, "classes covered") == "Mode collapse at step 6: 1 / 10 classes covered"
    d2 = CollapseDetector()
    assert d2.check_coverage(0, 2, 2) is None and d2.check_coverage(1, 1, 2) is not None  # dropped to 1
    d3 = CollapseDetector()
    assert d3.check_coverage(0, 1, 8) is None and d3.check_coverage(1, 0, 8) is None  # early training: best was 1


def _gan_history(d_real: np.ndarray, d_fake: np.ndarray, g_loss: np.ndarray) -> LossHistory:
    h = LossHistory()
    h.append(np.arange(len(g_loss)), ["d_real", "d_fake", "g_loss"], np.stack([d_real, d_fake, g_loss], axis=1))
    return h


def test_detector_discriminator_wins_on_synthetic_histories() -> None:
    n = 120
    healthy = _gan_history(np.full(n, 0.6), np.full(n, 0.4), np.full(n, 0.9))
    assert CollapseDetector().check_losses(healthy) is None
    d_real, d_fake = np.full(n, 0.6), np.full(n, 0.4)
    d_real[-60:], d_fake[-60:] = 0.995, 0.005
    won = _gan_history(d_real, d_fake, np.full(n, 0.9))
    det = CollapseDetector()
    msg = det.check_losses(won)
    assert msg is not None and msg.startswith("Discriminator wins at step 119")
    assert det.check_losses(won) is None  # latched
    assert CollapseDetector().check_losses(won, probabilities=False) is None  # raw WGAN scores: no fixed scale
    assert CollapseDetector().check_losses(_gan_history(d_real[:30], d_fake[:30], np.ones(30))) is None  # too short
    short_win = d_real.copy()
    short_win[-60:-20] = 0.6  # only the last 20 steps look won: not over the window
    assert CollapseDetector().check_losses(_gan_history(short_win, d_fake, np.full(n, 0.9))) is None


def test_detector_generator_loss_exploding() -> None:
    n = 150
    g = np.full(n, 0.8)
    g[-50:] = 20.0
    msg = CollapseDetector().check_losses(_gan_history(np.full(n, 0.6), np.full(n, 0.4), g))
    assert msg is not None and msg.startswith("Generator loss exploding at step 149")
    g_inf = np.full(n, 0.8)
    g_inf[-1] = np.inf
    assert "not finite" in CollapseDetector().check_losses(_gan_history(np.full(n, 0.6), np.full(n, 0.4), g_inf))
    g_mild = np.full(n, 0.8)
    g_mild[-50:] = 4.0  # 5x and below 5 nats: not exploding
    assert CollapseDetector().check_losses(_gan_history(np.full(n, 0.6), np.full(n, 0.4), g_mild)) is None


def test_panel_checks_losses_only_for_models_with_a_critic(qtbot) -> None:
    n = 100
    won = _gan_history(np.full(n, 0.999), np.full(n, 0.001), np.full(n, 0.9))
    vae = CoveragePanel()
    qtbot.addWidget(vae)
    vae.set_data(RING_INFO, caps(encoder=True))
    vae.check_losses(won)
    assert not vae.banner.isVisibleTo(vae)
    gan = CoveragePanel()
    qtbot.addWidget(gan)
    gan.set_data(RING_INFO, caps(encoder=False))
    with qtbot.waitSignal(gan.warning, timeout=1000) as blocker:
        gan.check_losses(won)
    assert blocker.args[0].startswith("Discriminator wins at step 99")


def dis_event(step: int, rng: np.random.Generator, d: int = 6, values: dict | None = None) -> protocol.DisentanglementMeasured:
    values = values if values is not None else {"mig": 0.1 * step / 100, "factor_vae_score": 0.5, "dci_disentanglement": 0.3,
                                                "sap": 0.05, "dci_completeness": 0.4}
    return protocol.DisentanglementMeasured(step=step, scores=DisentanglementScores(**values), mi_matrix=rng.uniform(0, 2, (d, 5)).astype(np.float32),
                                            factor_names=list(SHAPES_INFO.factor_names), seconds=1.5)


def test_disentanglement_heat_map_curves_and_table(qtbot) -> None:
    panel = DisentanglementPanel()
    qtbot.addWidget(panel)
    panel.set_data(SHAPES_INFO, LatentSpec.gaussian(6).names)
    assert panel.body.isEnabled() and panel.status.text() != NO_FACTORS
    rng = np.random.default_rng(3)
    for i in range(3):
        panel.add_disentanglement(dis_event(100 * (i + 1), rng))
        x, y = panel.curve_data("mig")
        assert len(x) == i + 1
    assert np.allclose(panel.curve_data("mig")[1], [0.1, 0.2, 0.3])
    assert panel.mi_image.image.shape == (6, 5)  # latents x factors
    item = panel.mi_plot.getPlotItem()
    assert [t[1] for t in item.getAxis("bottom")._tickLevels[0]] == list(SHAPES_INFO.factor_names)
    assert [t[1] for t in item.getAxis("left")._tickLevels[0]] == [f"z{i}" for i in range(6)]
    assert panel.mi_image.levels[0] == 0.0 and panel.mi_image.levels[1] >= float(panel.mi.max())
    assert tuple(panel.curves_plot.getPlotItem().vb.viewRange()[1]) == pytest.approx((-0.02, 1.02))
    labels = [panel.table.item(r, 0).text() for r in range(panel.table.rowCount())]
    assert labels[:3] == ["MIG", "FactorVAE", "DCI disentanglement"] and panel.table.item(0, 1).text() == "0.300"


def test_disentanglement_csv_export(qtbot, tmp_path) -> None:
    panel = DisentanglementPanel()
    qtbot.addWidget(panel)
    panel.set_data(SHAPES_INFO)
    assert not panel.export_button.isEnabled()
    rng = np.random.default_rng(4)
    panel.add_disentanglement(dis_event(10, rng))
    panel.add_disentanglement(dis_event(20, rng, values={"mig": 0.25, "beta_vae_score": 0.7}))  # another subset
    path = panel.export_csv(tmp_path / "scores.csv")
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["step", "seconds", "mig", "factor_vae_score", "dci_disentanglement", "sap",
                       "dci_completeness", "beta_vae_score"]
    assert len(rows) == 3 and rows[1][0] == "10" and rows[2][0] == "20"
    assert rows[2][2] == "0.25" and rows[2][3] == "" and rows[2][-1] == "0.7"
    # the button's export: the CSV and, beside it, a picture of the curves, heat map and table
    panel.resize(900, 300)
    panel.show()
    with qtbot.waitSignal(panel.png_written, timeout=5000) as got:
        panel.export(tmp_path / "both.csv")
    assert got.args == [str(tmp_path / "both.png"), ""]
    assert (tmp_path / "both.csv").read_text() == path.read_text()
    from PIL import Image
    png = Image.open(tmp_path / "both.png")
    assert png.width >= 300 and png.height >= 100
    assert "both.png" in panel.status.text()


def test_disentanglement_without_factors_says_so(qtbot) -> None:
    panel = DisentanglementPanel()
    qtbot.addWidget(panel)
    panel.set_data(DIGITS_INFO)
    assert panel.status.text() == NO_FACTORS
    assert not panel.body.isEnabled() and not panel.spin.isEnabled()


@pytest.fixture
def services():
    client = FakeClient(state="idle")
    s = Services(client)
    yield s, client
    s.close()


def test_metric_controllers_route_events_and_start_over(qtbot, services) -> None:
    """The Coverage and Disentanglement features alone: events reach their panels, a new model clears them.

    (The panels' schedules becoming a SetMetricSchedule, and the notices reaching the Messages log,
    are the shell's: see test_shell_wiring.py.)
    """
    s, client = services
    coverage = CoverageController(s, LossHistory())
    disentanglement = DisentanglementController(s)
    qtbot.addWidget(coverage.view)
    qtbot.addWidget(disentanglement.view)
    notices: list[tuple[str, str, str]] = []
    s.notice.connect(lambda *args: notices.append(args))
    ready = protocol.Ready(model="gan", family="gan", data=RING_INFO, latent=LatentSpec.gaussian(2),
                           capabilities=caps(encoder=False))
    client.ready.emit(ready)
    client.coverage.emit(mixture_event(100, 8, np.random.default_rng(5)))
    client.coverage.emit(mixture_event(200, 1, np.random.default_rng(6)))
    assert len(coverage.view.steps) == 2
    assert any("Mode collapse at step 200" in text for text, level, _ in notices if level == "warning")
    disentanglement.view.set_data(SHAPES_INFO)
    client.disentanglement.emit(dis_event(300, np.random.default_rng(7), d=2))
    assert len(disentanglement.view.rows) == 1
    client.ready.emit(ready)  # a new model (step 0): the panels start over
    assert coverage.view.steps == [] and disentanglement.view.rows == []


def test_client_dispatches_metric_events_to_typed_signals(qtbot) -> None:
    from studio.client import WorkerClient

    client = WorkerClient()
    cov, dis = mixture_event(10, 8, np.random.default_rng(8)), dis_event(20, np.random.default_rng(9))
    with qtbot.waitSignal(client.coverage, timeout=1000) as got_cov:
        client._dispatch(client._gen, cov)
    with qtbot.waitSignal(client.disentanglement, timeout=1000) as got_dis:
        client._dispatch(client._gen, dis)
    assert got_cov.args[0] is cov and got_dis.args[0] is dis


def test_samples_view_shows_the_critic_under_the_points(qtbot) -> None:
    from studio.features.samples.view import SamplesView

    view = SamplesView()
    qtbot.addWidget(view)
    info = DataInfo(spec="ring", kind="points", shape=(2,), size=100, n_train=90, n_test=10,
                    modes=[[1.0, 0.0], [0.0, 1.0]], mode_std=0.01)
    view.set_data(info)
    view.set_samples(np.zeros((5, 2), np.float32), step=7)
    assert view.points.critic.image is None
    critic = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    view.set_coverage(protocol.CoverageMeasured(step=9, critic=critic, extent=[-2.0, 2.0, -1.0, 1.0]))
    np.testing.assert_array_equal(view.points.critic.image, critic)
    rect = view.points.critic.boundingRect()
    assert view.points.critic.mapRectToParent(rect).width() == pytest.approx(4.0)
    assert "critic at step 9" in view.points.title.text() and "5 samples at step 7" in view.points.title.text()
    view.set_samples(np.zeros((6, 2), np.float32), step=8)
    assert "critic at step 9" in view.points.title.text()
    view.set_data(info)  # a new model: no stale critic
    assert view.points.critic.image is None
