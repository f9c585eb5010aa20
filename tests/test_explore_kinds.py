"""Explore panel: controls built from the latent kinds table (sliders, pickers, toggles, none for image-shaped z)."""

from __future__ import annotations

import numpy as np
import pytest

from engines.shared.latent_np import prior_centre
from engines.shared.spec import LATENT_KINDS, LatentDim, LatentSpec
from studio.features.explore.view import NOTES, ExplorePanel

#: Gaussian noise, a binary unit, a three-class code, another binary unit and a uniform code over [0, 2].
MIXED = LatentSpec((
    LatentDim("z0"), LatentDim("z1"),
    LatentDim("h0", "binary", 0.0, 1.0),
    *(LatentDim(f"class={k}", "categorical", 0.0, 1.0, "class") for k in range(3)),
    LatentDim("h1", "binary", 0.0, 1.0),
    LatentDim("u", "uniform", 0.0, 2.0),
))
BINARY = [2, 6]


@pytest.fixture
def panel(qtbot) -> ExplorePanel:
    p = ExplorePanel()
    qtbot.addWidget(p)
    return p


def test_controls_follow_the_kinds_table(panel) -> None:
    panel.set_latent(MIXED)
    assert len(panel.rows) == MIXED.dim and len(panel.categories) == 1
    for row in panel.rows:
        control = LATENT_KINDS[row.dim.kind].control
        assert (row.toggle is not None) == (control == "toggle")
        assert (row.slider is not None) == (control != "toggle")
        assert row.isHidden() == (control == "picker")
    assert all(panel.rows[i].toggle.isCheckable() for i in BINARY)
    assert panel.categories[0].group == "class" and panel.categories[0].combo.count() == 3
    assert panel.header.text() == "3 continuous latent dimensions, 2 binary units and 1 categorical code"
    np.testing.assert_array_equal(panel.z(), prior_centre(MIXED)[0])  # starts at the prior centre
    assert panel.random_button.isEnabled() and panel.reset_button.isEnabled()


def test_toggling_a_binary_unit_changes_the_emitted_z(panel, qtbot) -> None:
    panel.set_latent(MIXED)
    before = panel.z()
    with qtbot.waitSignal(panel.z_changed) as blocker:
        panel.rows[2].toggle.click()
    z = blocker.args[0]
    assert z.dtype == np.float32 and z.shape == (MIXED.dim,)
    assert z[2] == 1.0 and panel.rows[2].toggle.text() == "1"
    np.testing.assert_array_equal(np.delete(z, 2), np.delete(before, 2))
    with qtbot.waitSignal(panel.z_changed) as blocker:
        panel.set_value(6, 1.0)  # as a user would
    np.testing.assert_array_equal(blocker.args[0][BINARY], [1.0, 1.0])
    with qtbot.waitSignal(panel.z_changed) as blocker:
        panel.rows[2].toggle.click()
    assert blocker.args[0][2] == 0.0
    with qtbot.waitSignal(panel.z_changed) as blocker:
        panel.categories[0].combo.setCurrentIndex(2)
    np.testing.assert_array_equal(blocker.args[0][3:6], [0.0, 0.0, 1.0])
    # z set from elsewhere (an encoder's probabilities): units shown as 0 or 1, the rest clipped
    panel.set_z(np.array([9.0, -1.0, 0.7, 0.1, 0.8, 0.1, 0.2, 5.0]), emit=False)
    np.testing.assert_allclose(panel.z(), [3.0, -1.0, 1.0, 0.1, 0.8, 0.1, 0.0, 2.0], atol=1e-6)
    assert panel.rows[2].toggle.isChecked() and not panel.rows[6].toggle.isChecked()
    assert panel.categories[0].combo.currentIndex() == 1


def test_random_and_reset_respect_each_kind(panel, qtbot) -> None:
    panel.set_latent(MIXED)
    seen = set()
    for seed in range(12):
        z = panel.random_z(seed=seed)
        seen.update(z[BINARY].tolist())
        assert set(z[BINARY].tolist()) <= {0.0, 1.0}
        assert z[3:6].sum() == 1.0 and set(z[3:6].tolist()) == {0.0, 1.0}
        assert (np.abs(z[:2]) <= 3).all() and 0.0 <= z[7] <= 2.0
        assert [r.toggle.isChecked() for r in (panel.rows[2], panel.rows[6])] == [bool(v) for v in z[BINARY]]
    assert seen == {0.0, 1.0}
    with qtbot.waitSignal(panel.z_changed) as blocker:
        panel.reset_button.click()
    np.testing.assert_array_equal(blocker.args[0], prior_centre(MIXED)[0])
    np.testing.assert_array_equal(panel.z(), [0, 0, 0, 1, 0, 0, 0, 1.0])  # units off, class 0, middle of [0, 2]
    assert panel.categories[0].combo.currentIndex() == 0


def test_binary_rows_take_part_in_the_kl_order(panel) -> None:
    panel.set_latent(MIXED)
    panel.set_latent_kl(np.array([0.5, 0.01, 2.0, 0.0, 0.0, 0.0, 1.0, 0.3]))
    panel.apply_order()
    assert panel.order[:2].tolist() == [2, 6] and panel.collapsed()[1]
    assert panel.rows[2].kl.text() == "2.00"


@pytest.mark.parametrize("spec, note", [(LatentSpec.image((1, 4, 4)), NOTES["directions"]),
                                        (LatentSpec.empty(), NOTES["completion"])])
def test_image_shaped_z_and_no_latent_have_no_per_dimension_controls(panel, qtbot, spec, note) -> None:
    panel.set_latent(MIXED)
    panel.set_latent(spec)  # the old controls go
    assert panel.rows == [] and panel.categories == [] and panel.rows_layout.count() == 1  # the stretch
    assert panel.codes_layout.count() == 0
    assert panel.header.text() == note
    assert note in ("z has the image's shape: explore it with directions and temperature",
                    "no latent: explored by conditional completion")
    assert panel.z().shape == (spec.dim,) and not panel.z().any() and panel.order.size == 0
    assert panel.random_button.isEnabled() == (spec.dim > 0)
    z = panel.random_z(seed=0)
    assert z.shape == (spec.dim,) and (z.std() > 0 if spec.dim else True)  # image: standard normal draws
    panel.reset()
    assert not panel.z().any()
    with qtbot.waitSignal(panel.z_changed) as blocker:  # an exact inverse (a flow's encode) sets it whole
        panel.set_z(np.arange(spec.dim, dtype=np.float32))
    np.testing.assert_array_equal(blocker.args[0], np.arange(spec.dim))
    with pytest.raises(ValueError):
        panel.set_z(np.zeros(spec.dim + 1))
    panel.set_latent_kl(np.ones(spec.dim))  # never crash
    panel.apply_order()
    assert panel.set_factor_labels(np.zeros((spec.dim, 2)), ["a", "b"]) == [None] * spec.dim
    assert panel.row_label(3) == "z3" and panel.collapsed().shape == (0,)
    panel.set_latent(spec)  # unchanged: kept
    assert panel.header.text() == note
    panel.set_latent(MIXED)  # and back
    assert len(panel.rows) == MIXED.dim and len(panel.categories) == 1 and not panel.header.text().startswith(note)
