"""Binary latents ordered by effect (issue 16): how much flipping each hidden unit changes p(v | h), measured by
the trainer for models whose latent is binary units and shown by the Explore panel in place of KL."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engines.metrics.unit_effect import UnitEffectProbe, reference_states, unit_effect
from engines.shared import protocol as P
from engines.shared.datainfo import DataInfo
from engines.shared.link import WorkerLink
from engines.shared.registry import create_engine
from engines.shared.spec import LatentDim, LatentSpec
from fakes import FakeClient, caps
from studio.features.explore.controller import ExploreController
from studio.features.explore.state import EFFECT, INERT_EFFECT, KL, measure_order
from studio.features.explore.view import ExplorePanel
from studio.services import Services
from workers import collect

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

INFO = DataInfo(spec="test", kind="image", shape=(1, 4, 4), size=20, n_train=16, n_test=4)


def _rbm(big: int = 2, dead: int = 0):  # noqa: ANN202
    """A 4-unit RBM on 4x4 images whose column ``big`` of W is large and column ``dead`` zero."""
    engine = create_engine("rbm", INFO, latent_dim=4)
    with torch.no_grad():
        engine.W[:, big] = 4.0
        engine.W[:, dead] = 0.0
    return engine


def _brute(engine, z: np.ndarray) -> np.ndarray:  # noqa: ANN001
    out = []
    with torch.no_grad():
        for j in range(z.shape[1]):
            on, off = torch.tensor(z), torch.tensor(z)
            on[:, j], off[:, j] = 1.0, 0.0
            out.append(float((engine.decode(on) - engine.decode(off)).abs().flatten(1).sum(1).mean()))
    return np.array(out)


def test_the_large_column_has_the_biggest_effect_and_the_zero_column_none() -> None:
    engine = _rbm()
    engine.train()
    z = np.random.default_rng(0).integers(0, 2, (5, 4)).astype(np.float32)
    effect = unit_effect(engine, z)
    assert effect.shape == (4,) and effect.dtype == np.float32 and (effect >= 0).all()
    assert int(np.argmax(effect)) == 2 and effect[2] > 4.0  # 16 pixels, each moved by ~0.3 or more
    assert effect[0] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(effect, _brute(engine, z), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(unit_effect(engine, z, chunk_rows=3), effect, rtol=1e-6)  # one unit per batch
    assert engine.training  # the mode is restored
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        unit_effect(engine, np.zeros((2, 3), np.float32))


def test_reference_states_are_thresholded_encodings() -> None:
    engine = _rbm()
    x = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    z = reference_states(engine, x)
    assert z.shape == (3, 4) and z.dtype == np.float32 and set(np.unique(z)) <= {0.0, 1.0}
    np.testing.assert_array_equal(z, (engine.encode(x) > 0.5).float().detach().numpy())


class _Data:
    test_indices = np.arange(16, 20)
    train_indices = np.arange(16)

    def get(self, idx: np.ndarray) -> np.ndarray:
        return np.random.default_rng(int(idx.sum())).random((len(idx), 1, 4, 4)).astype(np.float32)


def test_the_probe_measures_when_due_and_skips_failures() -> None:
    engine = _rbm()
    assert UnitEffectProbe.create(create_engine("vae", INFO, latent_dim=4), _Data()) is None  # Gaussian latent
    assert UnitEffectProbe.create(engine, None) is None
    probe = UnitEffectProbe.create(engine, _Data(), n=3)
    assert probe is not None and probe.x.shape == (3, 1, 4, 4)
    first = probe.poll(engine, 100.0)  # the first flush measures
    assert first is not None and first.shape == (4,) and int(np.argmax(first)) == 2
    assert probe.poll(engine, 101.0) is None  # not due for a while
    assert probe.poll(engine, 101.0, force=True) is not None  # the session's last flush
    assert probe.poll(engine, 107.0) is not None
    broken = create_engine("rbm", INFO, latent_dim=4)
    broken.decode = lambda z: (_ for _ in ()).throw(RuntimeError("boom"))  # type: ignore[method-assign]
    assert probe.poll(broken, 200.0) is None and "boom" in probe.error  # skipped, never raised


def test_the_worker_sends_unit_effect_for_an_rbm_and_not_for_a_vae(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LATENT_STUDIO_HOME", str(tmp_path))
    link = WorkerLink(threads=1, device="cpu", connect_timeout=90)
    link.start()
    try:
        link.wait_for(P.Started, timeout=90)
        link.send(P.SetMetricSchedule(coverage_every=0, disentanglement_every=0))
        for model, want in (("rbm", True), ("vae", False)):
            data = "binarized:digits" if model == "rbm" else "digits"
            link.send(P.Configure(data=data, model=model, image_size=8, latent_dim=12, seed=0, batch_size=32))
            ready = collect(link, lambda e: isinstance(e, (P.Ready, P.Error)), timeout=60)[-1]
            assert isinstance(ready, P.Ready), ready
            link.send(P.Train(steps=300))
            events = collect(link, lambda e: isinstance(e, (P.Stopped, P.Error)), timeout=90)
            assert isinstance(events[-1], P.Stopped) and events[-1].reason == "finished", events[-1]
            effects = [e.unit_effect for e in events if isinstance(e, P.StepMetrics) and e.unit_effect is not None]
            if want:
                assert effects, model
                for effect in effects:
                    assert effect.shape == (12,) and effect.dtype == np.float32
                    assert np.isfinite(effect).all() and (effect >= 0).all()
                assert effects[-1].max() > INERT_EFFECT  # trained units draw something
            else:
                assert not effects, model
    finally:
        link.kill()


BINARY = LatentSpec(tuple(LatentDim(f"h{j}", "binary", 0.0, 1.0) for j in range(5)))
EFFECTS = np.array([0.1, 3.0, 0.2, 7.5, 1.25], np.float32)


def test_the_panel_orders_binary_units_by_effect(qtbot) -> None:
    panel = ExplorePanel()
    qtbot.addWidget(panel)
    panel.set_latent(BINARY)
    assert panel.kl_plot.isHidden() and panel.header.text() == "5 binary units"
    panel.set_unit_effect(EFFECTS)
    panel.apply_order()
    assert panel.order.tolist() == [3, 1, 4, 2, 0] and panel.measure == EFFECT and panel.latent_kl is None
    assert panel.rows_layout.itemAt(0).widget() is panel.rows[3]  # the largest effect on top
    assert "effect (pixels)" in panel.columns.text() and not panel.columns.isHidden()
    assert panel.kl_plot.getAxis("left").labelText == "effect (pixels)" and not panel.kl_plot.isHidden()
    assert "pixels" in panel.kl_plot.toolTip() and "largest effect" in panel.header.text()
    assert panel.collapsed().tolist() == [True, False, True, False, False]  # below half a pixel
    assert panel.rows[0].kl.text() == "0.10 \u2715" and panel.rows[3].kl.text() == "7.50"
    assert "barely changes the image" in panel.rows[0].toolTip() and "pixels" in panel.rows[3].toolTip()
    panel.set_factor_labels(np.array([[0.9], [0.0], [0.0], [0.0], [0.0]]), ["x"])
    assert panel.rows[0].shown_factor is None and "barely changes" in panel.rows[0].name.toolTip()


def test_the_kl_measure_is_unchanged() -> None:
    order, collapsed = measure_order(np.array([0.01, 2.0, 0.5, 2.0]), 4, KL.threshold)
    assert order.tolist() == [1, 3, 2, 0] and collapsed.tolist() == [True, False, False, False]
    assert KL.label == "KL (nats)" and KL.describe(0.01) == "KL 0.010 nats - collapsed: the decoder ignores this dimension"
    assert EFFECT.label == "effect (pixels)" and EFFECT.describe(3.0) == "effect 3.000 pixels"


def test_the_controller_feeds_unit_effect_to_the_panel(qtbot) -> None:
    client = FakeClient()
    services = Services(client)
    try:
        explore = ExploreController(services)
        qtbot.addWidget(explore.view)
        client.ready.emit(P.Ready(model="rbm", family="energy", data=INFO, capabilities=caps(True), latent=BINARY))
        client.metrics.emit(P.StepMetrics(steps=np.arange(2, dtype=np.int64), names=["recon"],
                                          values=np.ones((2, 1), np.float32), unit_effect=EFFECTS))
        qtbot.waitUntil(lambda: explore.view.order.tolist() == [3, 1, 4, 2, 0], timeout=3000)
        assert explore.view.measure == EFFECT and "effect (pixels)" in explore.view.columns.text()
        client.metrics.emit(P.StepMetrics(steps=np.arange(2, 3, dtype=np.int64), names=["recon"],
                                          values=np.ones((1, 1), np.float32)))  # between measurements: kept
        assert explore.view.measure == EFFECT
    finally:
        services.close()
