"""Data-parallel training (issue 12): `train --nproc 2` runs two Gloo processes through torchrun's launcher; each
trains on its B examples of every 2B batch with averaged gradients, and the run equals one process on batch 2B."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch

import latent_studio
from engines.lib import distributed as D
from engines.lib.checkpoint import load_checkpoint


def losses(run: Path, term: str = "loss") -> np.ndarray:
    return np.array([float(r[term]) for r in csv.DictReader(open(run / "metrics.csv"))])


def test_two_gloo_processes_of_batch_b_equal_one_process_of_batch_2b(tmp_path: Path) -> None:
    common = ["train", "--data", "binarized:digits", "--model", "made", "--set", "n_masks=1", "--image-size", "8",
              "--steps", "12", "--seed", "3", "--threads", "1"]
    assert latent_studio.main([*common, "--batch-size", "32", "--out", str(tmp_path / "one")]) == 0
    assert latent_studio.main([*common, "--batch-size", "16", "--nproc", "2", "--out", str(tmp_path / "two")]) == 0
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(one) == len(two) == 12
    np.testing.assert_allclose(two, one, rtol=1e-5)  # float tolerance: the sum is taken in another order
    assert one[-1] < one[0]  # it trained
    a, _ = load_checkpoint(tmp_path / "one")
    b, manifest = load_checkpoint(tmp_path / "two")  # one checkpoint the studio opens
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-6, msg=name)
    run = json.loads((tmp_path / "two" / "run.json").read_text())
    assert run["train"]["batch_size"] == 32 and manifest["resume"]["run"]["nproc"] == 2


def test_a_global_batch_is_split_in_order_and_labels_follow() -> None:
    x, y = torch.arange(12).reshape(6, 2), torch.arange(6)
    assert D.shard(x, 1, 3).tolist() == [[4, 5], [6, 7]]
    xs, ys = D.shard((x, y), 2, 3)
    assert ys.tolist() == [4, 5] and xs.shape == (2, 2)
    assert D.world() == (0, 1, 0) and not D.is_distributed()


def test_nproc_is_checked_before_anything_starts(tmp_path: Path, capsys) -> None:
    assert latent_studio.main(["train", "--data", "digits", "--model", "vae", "--nproc", "0",
                               "--out", str(tmp_path / "x")]) == 2
    assert "--nproc must be from 1" in capsys.readouterr().err


def _made_losses(link, batch: int) -> list[float]:  # noqa: ANN001
    from engines.shared import protocol as P
    from workers import collect

    link.wait_for(P.Started, timeout=60)
    link.send(P.SetMetricSchedule(coverage_every=0, disentanglement_every=0))
    link.send(P.Configure(data="binarized:digits", model="made", image_size=8, latent_dim=0, seed=3, batch_size=batch,
                          options={"n_masks": 1}))
    ready = collect(link, lambda e: isinstance(e, (P.Ready, P.Error)), timeout=60)[-1]
    assert isinstance(ready, P.Ready), ready
    link.send(P.Train(steps=10))
    events = collect(link, lambda e: isinstance(e, (P.Stopped, P.Error)), timeout=120)
    assert isinstance(events[-1], P.Stopped) and events[-1].step == 10, events[-1]
    rows = {int(s): float(m.values[i, m.names.index("loss")])
            for m in events if isinstance(m, P.StepMetrics) for i, s in enumerate(m.steps)}
    return [rows[k] for k in sorted(rows)], ready.device


def test_a_worker_of_two_processes_trains_the_windows_model_like_one_of_the_doubled_batch(tmp_path: Path) -> None:
    """latent-studio worker --listen --nproc 2: process 0 talks to the window, both train data-parallel."""
    from engines.shared.link import WorkerLink
    from test_remote_worker import Listening

    server = Listening(tmp_path / "server", "--nproc", "2")
    try:
        assert "cpu x 2 processes" in server.printed[0]
        link = WorkerLink(remote=server.address, token=server.token, connect_timeout=30)
        link.start()
        try:
            two, device = _made_losses(link, 16)
        finally:
            link.close()
    finally:
        server.close()
    assert device == "cpu x 2 processes"
    local = WorkerLink(threads=1, device="cpu", connect_timeout=90)
    local.start()
    try:
        one, _ = _made_losses(local, 32)
    finally:
        local.close()
    assert len(two) == len(one) == 10
    np.testing.assert_allclose(two, one, rtol=1e-5)
