"""The Energy tab driven in the real window (issue 16): an RBM's chains run and stop, a clamped chain completes a
held-out image, the filters show, log Z is estimated with progress; a VAE gets the reason the tab is off.

Set ``LATENT_STUDIO_SHOTS`` to a folder to keep the screenshot."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from engines.shared import protocol
from workers import real_window

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def test_an_rbms_chains_filters_and_partition_function_in_the_window(qtbot, tmp_path, one_torch_thread) -> None:
    with real_window(tmp_path / "home") as w:
        client, ev = w.client, w.energy.view
        w.resize(1500, 950)
        qtbot.waitUntil(lambda: client.state == "idle", timeout=90_000)
        with qtbot.waitSignal(client.ready, timeout=60_000):
            w.configure(protocol.Configure(data="binarized:digits", model="vae", image_size=16, latent_dim=2, seed=0,
                                           batch_size=32))
        assert not ev.note.isHidden() and "no Gibbs chains" in ev.note.text() and not ev.run_button.isEnabled()
        with qtbot.waitSignal(client.ready, timeout=60_000):
            w.configure(protocol.Configure(data="binarized:digits", model="rbm", image_size=16, latent_dim=64, seed=0,
                                           batch_size=32, options={"persistent": True}))
        assert ev.note.isHidden() and ev.run_button.isEnabled()
        assert not ev.layer_spin.isEnabled() and ev.log_z_button.isEnabled()  # one hidden layer; log Z by AIS
        with qtbot.waitSignal(client.stopped, timeout=120_000):
            w.train(2500)
        w.central_tabs.setCurrentWidget(ev)

        # the free energy of held-out and training images, measured while it trained
        qtbot.waitUntil(lambda: ev.gap_label.text().startswith("Held-out minus training free energy"), timeout=20_000)
        assert len(ev.history.values["free_energy_held_out"]) >= 1

        # the hidden units of a held-out example
        ev.index_spin.setValue(3)
        ev.hidden_button.click()
        qtbot.waitUntil(lambda: ev.hidden.title.text().startswith("Held-out #3 at step"), timeout=20_000)
        assert "layer 1 (64 units)" in ev.hidden.title.text() and ev.example.image() is not None

        # chains from random pixels, watched mixing, then stopped
        ev.n_spin.setValue(16)
        ev.run_button.click()
        qtbot.waitUntil(lambda: "after" in ev.chains.title.text() and ev.stop_button.isEnabled(), timeout=20_000)
        qtbot.waitUntil(lambda: int(ev.chains.title.text().split("after ")[1].split()[0].replace(",", "")) >= 20,
                        timeout=20_000)
        ev.stop_button.click()
        assert ev.run_button.isEnabled()

        # the filters, and log Z by AIS with its progress
        ev.filters_button.click()
        qtbot.waitUntil(lambda: "64 hidden units' filters" in ev.filters.title.text(), timeout=20_000)
        ev.runs_spin.setValue(50)
        ev.betas_spin.setValue(400)
        ev.log_z_button.click()
        assert ev.job.isVisible()
        qtbot.waitUntil(lambda: ev.log_z_label.text().startswith("log Z = "), timeout=60_000)
        assert "by AIS (50 runs, 400 temperatures" in ev.log_z_label.text() and "exact" not in ev.log_z_label.text()

        # clamp the top half of a held-out digit and sample the rest
        ev.mask_combo.setCurrentText("top half kept")
        ev.complete_button.click()
        qtbot.waitUntil(lambda: ev.stop_button.isEnabled(), timeout=20_000)
        qtbot.wait(1500)
        folder = Path(os.environ.get("LATENT_STUDIO_SHOTS") or tmp_path)
        assert w.grab().save(str(folder / "energy.png"))
        ev.stop_button.click()

        # a deep belief net: layers trained in turn, shown in the tab; filters and hidden units layer by layer
        with qtbot.waitSignal(client.ready, timeout=60_000):
            w.configure(protocol.Configure(data="binarized:digits", model="dbn", image_size=16, latent_dim=16, seed=0,
                                           batch_size=32, options={"layers": 1, "hidden": 49, "layer_steps": 400}))
        assert ev.note.isHidden() and ev.layer_spin.isEnabled() and ev.layer_spin.maximum() == 2
        assert not ev.log_z_button.isEnabled() and "no partition function" in ev.log_z_button.toolTip()
        with qtbot.waitSignal(client.stopped, timeout=120_000):
            w.train(1000)
        assert ev.stage_label.text().startswith("Greedy training: layer 2 of 2")
        ev.layer_spin.setValue(2)
        ev.filters_button.click()
        qtbot.waitUntil(lambda: "16 hidden units' filters (layer 2 of 2" in ev.filters.title.text(), timeout=20_000)
        ev.hidden_button.click()
        qtbot.waitUntil(lambda: "layer 2 (16 units)" in ev.hidden.title.text(), timeout=20_000)
        assert "layer 1 (49 units)" in ev.hidden.title.text()
        ev.n_spin.setValue(16)
        ev.run_button.click()
        qtbot.waitUntil(lambda: "after" in ev.chains.title.text() and ev.stop_button.isEnabled(), timeout=20_000)
        qtbot.wait(1500)
        assert w.grab().save(str(folder / "energy-dbn.png"))
        ev.stop_button.click()

        # a Helmholtz machine: wake-sleep and its ELBO-trained twin as two held-out curves on the loss plot
        with qtbot.waitSignal(client.ready, timeout=60_000):
            w.configure(protocol.Configure(data="binarized:digits", model="helmholtz", image_size=16, latent_dim=16,
                                           seed=0, batch_size=32))
        assert not ev.note.isHidden()  # no Gibbs chains: the Energy tab says so
        with qtbot.waitSignal(client.stopped, timeout=120_000):
            w.train(1200)
        qtbot.waitUntil(lambda: {"held_out_neg_elbo", "held_out_neg_elbo_vae"} <= set(w.history.names), timeout=20_000)
        for name in ("held_out_neg_elbo", "held_out_neg_elbo_vae", "wake", "sleep"):
            _, values = w.history.series(name)
            assert np.isfinite(values).sum() >= 1, name  # held-out curves: a point every few seconds
        assert w.grab().save(str(folder / "helmholtz.png"))
