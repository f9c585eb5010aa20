"""The Flow tab (flows on images): its Qt-free state, and the tab driven by a fake client as a user would."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from engines.shared import protocol
from engines.shared.datainfo import DataInfo
from engines.shared.registry import MODELS
from engines.shared.spec import LatentSpec
from fakes import FakeClient
from studio.features.flows.state import FlowEdit, flow_reason, lerp_path, reconstruction_caption, space_caption

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

IMAGES = DataInfo(spec="digits:4", kind="image", shape=(1, 4, 4), size=40, n_train=30, n_test=10,
                  class_names=("0", "1", "2"))
D = 16


def test_reasons_captions_and_paths():
    assert "exact inverse" in flow_reason(MODELS["vae"].capabilities, LatentSpec.gaussian(4), "image")
    assert flow_reason(MODELS["glow"].capabilities, LatentSpec.image((1, 4, 4)), "image") == ""
    assert "Coverage" in flow_reason(MODELS["planar"].capabilities, LatentSpec.gaussian(2), "points")
    assert space_caption(-20.0, 1.234) == "1.234 bits/dim" and space_caption(-20.0, float("nan")) == "log p = -20.0 nats"
    assert reconstruction_caption(np.zeros(3), np.array([0, 2e-7, 0])) == "f^-1(f(x)): max |error| 2.0e-07"
    a, b = np.random.default_rng(0).standard_normal((2, D)).astype(np.float32)
    path = lerp_path(a, b, 5)
    assert path.shape == (5, D) and np.array_equal(path[0], a) and np.array_equal(path[-1], b)
    np.testing.assert_allclose(path[2], (a + b) / 2, atol=1e-6)


def test_flow_edit_moves_along_scaled_directions():
    edit = FlowEdit()
    assert edit.z() is None
    edit.set_base(np.ones(D))
    dirs = np.eye(D, dtype=np.float32)[:2]
    edit.set_directions(dirs, np.array([2.0, 0.5]), ["PC1 (40% of variance)", "PC2 (10% of variance)"])
    edit.set_coefficient(0, 1.5)
    edit.set_coefficient(1, -9)  # clamped to -3
    z = edit.z()
    assert z[0] == pytest.approx(1 + 3.0) and z[1] == pytest.approx(1 - 1.5) and (z[2:] == 1).all()
    assert edit.caption() == "PC1 +1.5, PC2 -3.0"
    edit.reset()
    assert np.array_equal(edit.z(), np.ones(D)) and edit.caption() == "the image itself"
    with pytest.raises(ValueError):
        edit.set_directions(dirs, np.ones(3), ["a", "b"])


@pytest.fixture
def tab(qtbot):
    from studio.features.flows.controller import FlowController
    from studio.services import Services

    client = FakeClient()
    controller = FlowController(Services(client))
    qtbot.addWidget(controller.view)
    controller.view.resize(1000, 700)
    controller.view.show()
    return client, controller


def _ready(client, model: str) -> None:
    latent = LatentSpec.image((1, 4, 4)) if MODELS[model].family == "flow" else LatentSpec.gaussian(4)
    client.ready.emit(protocol.Ready(model=model, family=MODELS[model].family, data=IMAGES, latent=latent,
                                     capabilities=MODELS[model].capabilities))


def _scored(client, cmd, bpd: float) -> None:
    n = len(cmd.images)
    client.emit_event(protocol.Scored(request_id=cmd.request_id, nats=np.full(n, -10.0, np.float32),
                                      bits_per_dim=np.full(n, bpd, np.float32), space="8-bit"))


def test_the_tab_says_why_it_is_off_for_a_vae(tab):
    client, controller = tab
    _ready(client, "vae")
    assert not controller.view.invert_button.isEnabled() and "exact inverse" in controller.view.note.text()
    assert controller.invert(0) == 0 and not client.sent


def test_invert_edit_along_directions_sample_and_interpolate_as_a_user_would(tab, qtbot):
    client, controller = tab
    _ready(client, "realnvp")
    v = controller.view
    assert v.invert_button.isEnabled() and not v.note.isVisible()
    rng = np.random.default_rng(1)
    x = np.full((1, 1, 4, 4), 0.5, np.float32)
    z = rng.standard_normal((1, D)).astype(np.float32)

    # invert held-out example 3: z exactly, its reconstruction, and bits/dim beside it
    v.index_spin.setValue(3)
    qtbot.mouseClick(v.invert_button, Qt.MouseButton.LeftButton)
    (enc,) = client.of(protocol.Encode)
    assert enc.indices == [3] and enc.view == "flow"
    client.encoded.emit(protocol.Encoded(request_id=enc.request_id, view="flow", z=z, images=x))
    views = [view for view, _ in client.decodes]
    assert views == ["flow-recon", "flow-edit"] and np.array_equal(client.decodes[0][1], z)
    client.decoded.emit(protocol.Decoded(request_id=1, view="flow-recon", images=x + np.float32(1e-3)))
    assert "max |error| 1.0e-03" in v.recon.title.text()
    _scored(client, client.of(protocol.Score)[0], 1.25)
    assert v.original.title.text() == "x: 1.250 bits/dim"

    # directions from the worker become sliders; a slider moves z by its scale
    v.method_combo.setCurrentIndex(0)
    v.k_spin.setValue(2)
    v.find_button.click()
    (find,) = client.of(protocol.FindDirections)
    assert find.method == "pca" and find.k == 2 and not v.find_button.isEnabled()
    dirs = np.eye(D, dtype=np.float32)[:2]
    client.emit_event(protocol.DirectionsFound(request_id=find.request_id, directions=dirs,
                                               scales=np.array([2.0, 1.0], np.float32),
                                               names=["PC1 (30.0% of variance)", "PC2 (20.0% of variance)"], n=10))
    assert len(v.sliders) == 2 and v.find_button.isEnabled()
    v.sliders[0].setValue(10)  # +1.0 standard deviation
    view, moved = client.decodes[-1]
    assert view == "flow-edit"
    np.testing.assert_allclose(moved[0], z[0] + 2.0 * dirs[0], atol=1e-6)
    client.decoded.emit(protocol.Decoded(request_id=2, view="flow-edit", images=x))
    assert v.edited.title.text() == "PC1 +1.0"
    _scored(client, client.of(protocol.Score)[-1], 1.5)
    assert v.edited.title.text() == "PC1 +1.0: 1.500 bits/dim"
    v.reset_button.click()
    np.testing.assert_allclose(client.decodes[-1][1][0], z[0])

    # samples at a temperature
    v.temperature.setValue(0.5)
    v.seed_spin.setValue(7)
    v.sample_button.click()
    hyper = client.of(protocol.SetHyperparameter)[-1]
    (sample,) = client.of(protocol.Sample)
    assert hyper.name == "temperature" and hyper.value == 0.5 and sample.n == 8 and sample.seed == 7
    client.samples.emit(protocol.Samples(request_id=sample.request_id, images=np.zeros((8, 1, 4, 4), np.float32)))
    assert v.samples.image() is not None and v.samples.title.text() == "T = 0.5"
    _scored(client, client.of(protocol.Score)[-1], 2.0)
    assert "bits/dim" in v.samples.title.text() and v.samples.title.text().count("2.000") == 8

    # interpolation between two held-out images: the path's ends are their z exactly
    v.a_spin.setValue(1)
    v.b_spin.setValue(4)
    v.frames_spin.setValue(6)
    v.interp_button.click()
    ends = client.of(protocol.Encode)[-1]
    assert ends.indices == [1, 4]
    zz = rng.standard_normal((2, D)).astype(np.float32)
    client.encoded.emit(protocol.Encoded(request_id=ends.request_id, view="flow", z=zz, images=np.zeros((2, 1, 4, 4))))
    view, path = client.decodes[-1]
    assert view == "flow-path" and path.shape == (6, D)
    assert np.array_equal(path[0], zz[0]) and np.array_equal(path[-1], zz[1])
