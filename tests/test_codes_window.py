"""The Codes tab driven in the real window (issue 16): a VQ-VAE's codebook usage with its dead codes, two encoded
images' code grids (a click paints a code, a dragged region swaps), and the categorical VAE's estimators' variance
on one plot; an RBM gets the reason the tab is off.

Set ``LATENT_STUDIO_SHOTS`` to a folder to keep the screenshots."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QItemSelection, QItemSelectionModel, Qt
from PySide6.QtWidgets import QMessageBox

from engines.shared import protocol
from workers import real_window

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def test_codes_of_a_vq_vae_and_the_variance_of_a_categorical_vaes_estimators(qtbot, tmp_path, one_torch_thread) -> None:
    folder = Path(os.environ.get("LATENT_STUDIO_SHOTS") or tmp_path)
    with real_window(tmp_path / "home") as w:
        client, cv = w.client, w.codes.view
        w.resize(1500, 950)
        qtbot.waitUntil(lambda: client.state == "idle", timeout=90_000)
        with qtbot.waitSignal(client.ready, timeout=60_000):
            w.configure(protocol.Configure(data="binarized:digits", model="rbm", image_size=16, latent_dim=8, seed=0))
        assert not cv.note.isHidden() and "no discrete codes" in cv.note.text()

        with qtbot.waitSignal(client.ready, timeout=60_000):
            w.configure(protocol.Configure(data="binarized:digits", model="vq-vae", image_size=16, latent_dim=8, seed=0,
                                           batch_size=32, options={"n_categories": 32, "width": 32}))
        assert cv.note.isHidden() and cv.grids_box.isEnabled()
        with qtbot.waitSignal(client.stopped, timeout=120_000):
            w.train(600)
        w.central_tabs.setCurrentWidget(cv)

        # the usage, refreshed live while the tab is shown
        qtbot.waitUntil(lambda: cv.usage_label.text().endswith("at step 600"), timeout=20_000)
        assert "of 32 codes over 180 held-out images" in cv.usage_label.text() and cv.usage_bars is not None

        # encode two held-out images, paint one position of A, swap a region
        cv.index_spins["A"].setValue(0)
        cv.encode_buttons["A"].click()
        cv.index_spins["B"].setValue(5)
        cv.encode_buttons["B"].click()
        qtbot.waitUntil(lambda: w.codes.codes["A"] is not None and w.codes.codes["B"] is not None, timeout=20_000)
        qtbot.waitUntil(lambda: cv.images["B"].image() is not None, timeout=20_000)
        a0, b0 = w.codes.codes["A"].copy(), w.codes.codes["B"].copy()
        assert a0.shape == (4, 4) and cv.grids["A"].rowCount() == 4
        before = cv.images["A"].image().copy()
        cv.paint_spin.setValue(int((a0[1, 1] + 7) % 32))
        rect = cv.grids["A"].visualItemRect(cv.grids["A"].item(1, 1))
        qtbot.mouseClick(cv.grids["A"].viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        assert w.codes.codes["A"][1, 1] == (a0[1, 1] + 7) % 32 and cv.grids["A"].item(1, 1).text() == str((a0[1, 1] + 7) % 32)
        qtbot.waitUntil(lambda: not np.array_equal(cv.images["A"].image(), before), timeout=20_000)
        a1 = w.codes.codes["A"].copy()
        model = cv.grids["A"].model()
        selection = QItemSelection(model.index(0, 0), model.index(1, 3))  # the top half of the grid
        cv.grids["A"].selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        cv.swap_button.click()
        assert np.array_equal(w.codes.codes["A"][:2], b0[:2]) and np.array_equal(w.codes.codes["A"][2:], a1[2:])
        assert np.array_equal(w.codes.codes["B"][:2], a1[:2]) and np.array_equal(w.codes.codes["B"][2:], b0[2:])
        qtbot.wait(1000)
        assert w.grab().save(str(folder / "codes.png"))

        # a categorical VAE trained by NVIL, built from the form with its settings typed in: the four
        # estimators' variance, one curve each
        dm = w.data_model.view
        dm.set_data_spec("digits")
        dm.binarize_check.setChecked(True)
        dm.set_model("gumbel-vae")
        dm.size_spin.setValue(16)
        dm.latent_spin.setValue(6)
        dm.batch_spin.setValue(32)
        dm.settings_edit.setText("estimator")  # not KEY=VALUE: said under the form, nothing built
        dm.build_button.click()
        assert "KEY=VALUE" in dm.summary.text() and w.data_model.confirm is None
        dm.settings_edit.setText("estimator=nvil variance_every=20, variance_draws=4")
        with qtbot.waitSignal(client.ready, timeout=60_000) as built:
            dm.build_button.click()
            qtbot.waitUntil(lambda: w.data_model.confirm is not None, timeout=5_000)  # the VQ-VAE has trained
            w.data_model.confirm.button(QMessageBox.StandardButton.Discard).click()
        config = built.args[0].config
        assert (config["estimator"], config["variance_every"], config["variance_draws"]) == ("nvil", 20, 4)
        assert "estimator=nvil" in dm.settings_edit.toolTip()
        assert cv.note.isHidden() and not cv.grids_box.isVisible()
        with qtbot.waitSignal(client.stopped, timeout=120_000):
            w.train(300)
        qtbot.waitUntil(lambda: len(cv.variance_curves) == 4, timeout=20_000)
        assert cv.variance_label.text().startswith("Latest gradient variance per logit: gumbel")
        values = cv.history.values
        assert np.median(values["reinforce"]) > np.median(values["gumbel"])
        assert w.grab().save(str(folder / "codes-variance.png"))
