"""Explore panel: categorical codes as a class picker, and KL shown only for models that report it."""

from __future__ import annotations

import numpy as np

from engines.shared.spec import LatentDim, LatentSpec
from studio.features.explore.view import ExplorePanel


def _cgan_like_spec() -> LatentSpec:
    noise = [LatentDim(f"z{i}") for i in range(3)]
    classes = [LatentDim(name, "categorical", 0.0, 1.0, "class") for name in ("zero", "one", "two")]
    return LatentSpec(tuple(noise + classes + [LatentDim("c2", "uniform", -1.0, 1.0)]))


def test_class_picker_writes_a_one_hot_block(qtbot) -> None:
    panel = ExplorePanel()
    qtbot.addWidget(panel)
    panel.set_latent(_cgan_like_spec())
    assert len(panel.categories) == 1
    combo = panel.categories[0].combo
    assert [combo.itemText(i) for i in range(combo.count())] == ["zero", "one", "two"]
    assert all(panel.rows[i].isHidden() for i in (3, 4, 5)) and not panel.rows[0].isHidden()
    with qtbot.waitSignal(panel.z_changed) as blocker:
        combo.setCurrentIndex(2)
    z = blocker.args[0]
    np.testing.assert_array_equal(z[3:6], [0.0, 0.0, 1.0])
    panel.set_z(np.array([0, 0, 0, 0.0, 1.0, 0.0, 0.5]))  # e.g. from "Random z" or an encoder
    assert combo.currentIndex() == 1


def test_kl_column_appears_only_with_kl(qtbot) -> None:
    panel = ExplorePanel()
    qtbot.addWidget(panel)
    panel.set_latent(LatentSpec.gaussian(4))
    assert panel.kl_plot.isHidden() and "KL" not in panel.header.text()
    panel.set_latent_kl(np.array([0.1, 2.0, 0.0, 1.0]))
    assert not panel.kl_plot.isHidden() and "KL" in panel.header.text()
    panel.set_latent_kl(np.array([0.1, 2.0, 0.0, 1.0]))
    assert panel.header.text().count("KL") == 1
