"""Live coverage and disentanglement (engines.worker.live_metrics): the functions, the thread, the real worker."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from engines.shared import protocol as P
from engines.shared.capabilities import Capabilities
from engines.data import load_dataset
from engines.data.files import array_dataset
from engines.lib.checkpoint import save_checkpoint
from engines.shared.errors import ConfigError
from engines.worker.host import Snapshot
from engines.shared.link import WorkerLink
from workers import Inbox, collect
from engines.worker.live_metrics import (
    LiveMetrics,
    check_schedule,
    critic_extent,
    critic_map,
    measure_coverage,
    measure_disentanglement,
    supports_disentanglement,
)
from engines.metrics.coverage import CoverageTracker
from engines.metrics.evaluate import evaluate_run
from engines.models.gan.gan import GAN
from engines.shared.registry import capabilities_of_class, create_engine
from engines.worker.trainer import Session

SMALL = {"batch_size": 8, "num_train": 40, "num_eval": 20, "num_variance_estimate": 200}


@pytest.fixture(scope="module")
def ring():
    return load_dataset("ring", None)


@pytest.fixture(scope="module")
def shapes():
    return load_dataset("shapes:32", None)


def gan(ring, name: str = "gan", **kw):
    torch.manual_seed(0)
    return create_engine(name, ring.info, latent_dim=2, seed=0, **kw)


# -- functions ---------------------------------------------------------------------------------
def test_critic_extent_is_a_square_around_the_modes(ring):
    modes = np.asarray(ring.info.modes)
    xmin, xmax, ymin, ymax = critic_extent(modes, ring.info.mode_std)
    assert math.isclose(xmax - xmin, ymax - ymin)
    margin = 4 * ring.info.mode_std
    assert xmin < modes[:, 0].min() - margin and xmax > modes[:, 0].max() + margin
    assert ymin < modes[:, 1].min() - margin and ymax > modes[:, 1].max() + margin
    with pytest.raises(ConfigError, match="mode centres"):
        critic_extent(np.zeros((3, 3)))


@pytest.mark.parametrize("name, units", [("gan", "probability"), ("wgan", "critic")])
def test_critic_map_scores_cell_centres_row_major(ring, name, units):
    model = gan(ring, name, pack=2)  # packed: each point is scored as a pack of two copies
    model.eval()
    extent = [-2.0, 2.0, -1.0, 3.0]
    heat, got_units = critic_map(model, extent, size=8)
    assert got_units == units and heat.shape == (8, 8) and heat.dtype == np.float32
    # row 0 is y = ymin + half a cell, column 7 is x = xmax - half a cell
    pt = torch.tensor([[1.75, -0.75], [1.75, -0.75]])
    with torch.no_grad():
        want = model.critic_score(pt)[0]
        want = torch.sigmoid(want) if name == "gan" else want
    assert heat[0, 7] == pytest.approx(float(want), rel=1e-4, abs=1e-6)
    if name == "gan":
        assert ((heat > 0) & (heat < 1)).all()
    assert np.ptp(heat) > 0  # the critic is not constant over the plane


def test_measure_coverage_on_a_ring_gan(ring):
    model = gan(ring)
    tracker = CoverageTracker(ring, "cpu", 0)
    event = measure_coverage(tracker, model, ring, step=7, seed=1)
    assert event.step == 7 and event.metric == "mixture"
    assert event.result.modes_total == 8 and event.ms > 0
    assert event.critic_units == "probability"
    assert event.samples.shape == (1000, 2) and event.samples.dtype == np.float32
    assert event.critic.shape == (64, 64) and len(event.extent) == 4
    again = measure_coverage(tracker, model, ring, step=7, seed=1)  # seeded: the same samples
    np.testing.assert_array_equal(again.samples, event.samples)
    back = P.decode(P.encode(event))  # the event crosses the link
    np.testing.assert_array_equal(back.critic, event.critic)


def test_measure_disentanglement_on_shapes(shapes, tmp_path):
    torch.manual_seed(0)
    model = create_engine("vae", shapes.info, latent_dim=4, seed=0)
    model.eval()
    assert supports_disentanglement(model, shapes)
    event = measure_disentanglement(model, shapes, step=3, seed=0, n_points=200, sampled=SMALL)
    assert event.step == 3 and event.factor_names == list(shapes.info.factor_names)
    assert event.mi_matrix.shape == (4, 5) and event.mi_matrix.dtype == np.float32
    assert (event.mi_matrix >= 0).all() and event.seconds > 0
    names = {"mig", "sap", "dci_disentanglement", "dci_completeness", "dci_informativeness",
             "factor_vae_score", "beta_vae_score"}
    assert set(event.scores.present()) == names
    assert all(0.0 <= v <= 1.0 for v in event.scores.present().values())
    # the live scores are the headless ones (`latent-studio metrics`) of the same weights, points and seed
    save_checkpoint(model, tmp_path / "vae.safetensors", step=3, data_spec=shapes.info.spec)
    want = evaluate_run(tmp_path / "vae.safetensors", n_points=200, seed=0, metrics=["mig", "sap", "dci"],
                        device="cpu", dci_estimator="forest")
    assert want["step"] == 3
    np.testing.assert_allclose(event.mi_matrix, np.asarray(want["mi_matrix"]), rtol=1e-6, atol=1e-7)
    assert event.scores.mig == pytest.approx(want["mig"], abs=1e-9)
    assert event.scores.sap == pytest.approx(want["sap"], abs=1e-9)
    assert event.scores.dci_disentanglement == pytest.approx(want["dci"]["disentanglement"], abs=1e-9)
    assert event.scores.dci_completeness == pytest.approx(want["dci"]["completeness"], abs=1e-9)
    assert event.scores.dci_informativeness == pytest.approx(want["dci"]["informativeness_test"], abs=1e-9)


SIZES = (3, 4, 5)


def factor_grid():
    """Every combination of three factors (sizes 3, 4, 5) once; each "image" (1, 1, 3) holds its factor values."""
    f = np.stack(np.unravel_index(np.arange(int(np.prod(SIZES))), SIZES), axis=1).astype(np.int64)
    ds = array_dataset("factor-grid", f.astype(np.float32)[:, None, None, :], factors=f,
                       factor_names=("a", "b", "c"), factor_sizes=SIZES)
    ds.index_of = lambda v: np.ravel_multi_index(tuple(np.asarray(v).T), SIZES)
    return ds


class CodeModel:
    """An encoder standing in for an engine: codes are the factor values plus one noise column
    (``oracle``), or four columns of noise."""

    name = "codes"
    device = torch.device("cpu")
    capabilities = Capabilities(encoder="amortised")

    def __init__(self, oracle: bool) -> None:
        self.oracle = oracle
        self.latent = SimpleNamespace(dim=4)
        self.gen = torch.Generator().manual_seed(0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(len(x), 4, generator=self.gen)
        return torch.cat([x.reshape(len(x), 3), noise[:, :1]], 1) if self.oracle else noise


def test_measure_disentanglement_of_known_codes():
    ds = factor_grid()
    oracle, noise = CodeModel(True), CodeModel(False)
    assert supports_disentanglement(oracle, ds)
    good = measure_disentanglement(oracle, ds, step=1, seed=0)
    bad = measure_disentanglement(noise, ds, step=1, seed=0)
    # latent k < 3 is factor k: its MI with factor k is the factor's entropy (about log of its size), ~0 with
    # the others; latent 3 is noise (MI ~0: the plug-in estimate's small positive bias)
    mi = good.mi_matrix
    assert mi.shape == (4, 3) and good.factor_names == ["a", "b", "c"]
    assert mi.argmax(axis=0).tolist() == [0, 1, 2]
    np.testing.assert_allclose(np.diag(mi), np.log(SIZES), atol=0.05)
    assert mi[:3][~np.eye(3, dtype=bool)].max() < 0.02 and mi[3].max() < 0.1
    g, b = good.scores.present(), bad.scores.present()
    assert g["mig"] > 0.95 and b["mig"] < 0.05
    assert g["dci_disentanglement"] > 0.9 and b["dci_disentanglement"] < 0.2
    assert g["dci_informativeness"] > 0.99 and b["dci_informativeness"] < 0.45  # chance: 1/3, 1/4, 1/5
    assert g["factor_vae_score"] == 1.0 and b["factor_vae_score"] < 0.55  # chance 1/3
    assert g["beta_vae_score"] > 0.95 and b["beta_vae_score"] < 0.55
    assert g["sap"] > 0.4 and b["sap"] < 0.1
    assert bad.mi_matrix.max() < 0.1


def test_disentanglement_needs_factors_and_an_encoder(ring, shapes):
    assert not supports_disentanglement(gan(ring), ring)  # no factors
    model = create_engine("gan", shapes.info, latent_dim=4, seed=0)
    assert not supports_disentanglement(model, shapes)  # no encoder


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "10", True])
def test_check_schedule_rejects_bad_intervals(bad):
    assert check_schedule(0, 2.5) == (0.0, 2.5)
    with pytest.raises(ConfigError, match="SetMetricSchedule"):
        check_schedule(bad, 1.0)


# -- the thread, without the process -------------------------------------------------------------
def session_of(engine, dataset) -> Session:
    return Session(engine=engine, snapshot=Snapshot(engine, 5), dataset=dataset, data_spec=dataset.info.spec,
                   image_size=None, seed=0)


def test_thread_measures_on_training_time_and_once_at_the_end(ring):
    inbox = Inbox()
    live = LiveMetrics(inbox, coverage_every=0.3, disentanglement_every=0.3)
    try:
        live.attach(session_of(gan(ring), ring))
        time.sleep(0.6)  # not training: the clock stands still
        assert inbox.events == []
        live.set_training(True)
        got = inbox.wait(P.CoverageMeasured)
        assert got and got[0].step == 5 and got[0].metric == "mixture"
        live.set_schedule(0, 0.3)
        live.set_training(False, final=True)  # same weights as last measured: nothing more
        time.sleep(0.5)
        assert len(inbox.of(P.CoverageMeasured)) == 1
        assert not inbox.of(P.DisentanglementMeasured) and not inbox.of(P.Error)  # ring has no factors
        assert live.schedule == {"coverage": 0.0, "disentanglement": 0.3}
    finally:
        live.close()


def test_slider_decodes_hold_measurements_back(ring, monkeypatch):
    import engines.worker.live_metrics as lm

    monkeypatch.setattr(lm, "QUIET_AFTER_DECODE", 0.4)
    inbox = Inbox()
    live = LiveMetrics(inbox, coverage_every=0.05, disentanglement_every=0)
    try:
        live.attach(session_of(gan(ring), ring))
        live.set_training(True)
        t_end = time.monotonic() + 1.5
        while time.monotonic() < t_end:  # a 1.5 s drag: a Decode every 50 ms
            live.interactive()
            time.sleep(0.05)
        assert inbox.of(P.CoverageMeasured) == []
        assert inbox.wait(P.CoverageMeasured), "measurements resume once the slider rests"
    finally:
        live.close()


class BrokenGAN(GAN):
    """A GAN whose sampler fails: every coverage measurement raises."""

    declared = capabilities_of_class(GAN)

    def sample(self, n, generator=None):
        raise RuntimeError("boom")


def test_thread_reports_a_repeated_failure_once(ring):
    engine = BrokenGAN(gan(ring).config, ring.info)
    engine.name = "broken"
    inbox = Inbox()
    live = LiveMetrics(inbox, coverage_every=0.05, disentanglement_every=0)
    try:
        live.attach(session_of(engine, ring))
        live.set_training(True)
        errors = inbox.wait(P.Error)
        time.sleep(0.5)  # several more failures meanwhile
        errors = inbox.of(P.Error)
        assert len(errors) == 1 and errors[0].command == "metrics" and "boom" in errors[0].message
        live.attach(session_of(gan(ring), ring))  # a new session measures again
        assert inbox.wait(P.CoverageMeasured)
    finally:
        live.close()


# -- the real worker -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LATENT_STUDIO_HOME", str(tmp_path_factory.mktemp("home")))
        link = WorkerLink(threads=1, device="cpu", connect_timeout=60)
        link.start()
    try:
        link.wait_for(P.Started, timeout=60)
        yield link
    finally:
        link.kill()


def test_worker_streams_coverage_of_a_ring_gan(worker):
    link = worker
    link.send(P.Configure(data="ring", model="gan", latent_dim=2, seed=0, batch_size=64))
    collect(link, lambda e: isinstance(e, P.Ready), timeout=60)
    link.send(P.SetMetricSchedule(coverage_every=-1.0, disentanglement_every=0))
    bad = link.wait_for(P.Error, timeout=30)
    assert bad.command == "SetMetricSchedule" and "coverage_every" in bad.message
    link.send(P.SetMetricSchedule(coverage_every=0.5, disentanglement_every=0))
    link.send(P.Train(steps=40))
    events = collect(link, lambda e: isinstance(e, P.Stopped), timeout=60)
    if not any(isinstance(e, P.CoverageMeasured) and e.step == 40 for e in events):  # the last weights, measured
        events += collect(link, lambda e: isinstance(e, P.CoverageMeasured) and e.step == 40, timeout=30)
    cov = [e for e in events if isinstance(e, P.CoverageMeasured)]
    assert cov and all(e.metric == "mixture" and e.result.modes_total == 8 for e in cov)
    last = cov[-1]
    assert last.samples.shape[1] == 2 and 0 < last.samples.shape[0] <= 1000
    assert last.critic.shape == (64, 64) and len(last.extent) == 4
    assert not [e for e in events if isinstance(e, P.DisentanglementMeasured)]


def test_worker_streams_disentanglement_of_a_shapes_vae(worker):
    link = worker
    link.send(P.Configure(data="shapes:32", model="vae", latent_dim=4, seed=0, batch_size=32))
    collect(link, lambda e: isinstance(e, P.Ready), timeout=60)
    link.send(P.SetMetricSchedule(coverage_every=0, disentanglement_every=0.5))
    link.send(P.Train(steps=None))
    # the measurement runs at low priority: on a loaded machine it can take minutes
    events = collect(link, lambda e: isinstance(e, P.DisentanglementMeasured), timeout=240)
    link.send(P.Stop())
    collect(link, lambda e: isinstance(e, P.Stopped), timeout=60)
    dis = events[-1]
    assert dis.mi_matrix.shape == (4, 5) and math.isfinite(dis.scores.mig)
    assert dis.factor_names == ["shape", "scale", "orientation", "x", "y"] and dis.seconds > 0
    assert not [e for e in events if isinstance(e, P.CoverageMeasured)]
