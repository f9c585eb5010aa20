"""The training watchdog (issue 12): each failure injected (a NaN in a batch, an absurd learning rate, a spike,
a coverage collapse) is caught, training rolls back to the last good state, and pauses or halves the learning
rate and trains on."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from engines.data.base import DataInfo, Dataset, split_indices
from engines.lib.training import BatchStream
from engines.shared import protocol as P
from engines.shared.registry import create_engine
from engines.worker.host import Snapshot
from engines.worker.trainer import Session, Trainer
from engines.worker.watchdog import MAX_AUTO_TRIPS, StateRing, TrainState, Watchdog, WatchdogSettings
from workers import Inbox


class FakeHost:
    grid_seconds = 0.0

    def request_grid(self) -> None:
        pass


def images(n: int = 120, nan_at: int | None = None) -> Dataset:
    """Random 8x8 grey images; example ``nan_at`` (a training example) is all NaN."""
    x = np.random.default_rng(0).random((n, 1, 8, 8), dtype=np.float32)
    train, test = split_indices(n)
    if nan_at is not None:
        x[train[nan_at]] = np.nan
    info = DataInfo(spec="test", kind="image", shape=(1, 8, 8), size=n, n_train=len(train), n_test=len(test))
    return Dataset(info, x=x, train_indices=train, test_indices=test)


def session(dataset: Dataset, model: str = "vae", **config) -> Session:
    torch.manual_seed(0)
    config = config or {"latent_dim": 2, "arch": "mlp"}
    engine = create_engine(model, dataset.info, **config)
    s = Session(engine=engine, snapshot=Snapshot(engine, 0), dataset=dataset, data_spec="test", image_size=None,
                seed=0, batch_size=8)
    s.batches = BatchStream(dataset, 8, 0, prefetch=False)
    return s


def run(s: Session, wd: Watchdog, steps: int) -> tuple[Trainer, Inbox]:
    inbox = Inbox()
    trainer = Trainer(s, inbox, FakeHost(), lambda path, auto: None, s.step + steps, watchdog=wd)
    trainer.start()
    return trainer, inbox


def tripped_as(event: P.WatchdogTripped):  # noqa: ANN201 - the Trip the event reports
    from engines.worker.watchdog import Trip

    return Trip(event.cause, event.step, event.message)


def finite(engine) -> bool:  # noqa: ANN001
    return all(bool(torch.isfinite(p).all()) for p in engine.parameters())


# -- the checks ----------------------------------------------------------------------------------
def test_a_nan_or_inf_loss_term_trips_at_once() -> None:
    wd = Watchdog()
    assert wd.check_losses(0, {"recon": 3.0, "kl": 1.0}) is None
    trip = wd.check_losses(1, {"recon": float("nan"), "kl": 1.0})
    assert trip.kind == "nan" and trip.step == 1 and "'recon'" in trip.message
    assert wd.check_losses(2, {"kl": float("inf")}).kind == "nan"
    wd.settings = WatchdogSettings(enabled=False)
    assert wd.check_losses(3, {"kl": float("nan")}) is None


def test_a_spike_trips_after_the_warm_up_and_ordinary_noise_does_not() -> None:
    wd = Watchdog()
    rng = np.random.default_rng(0)
    for step in range(200):  # a noisy, falling loss: never a trip
        assert wd.check_losses(step, {"loss": float(100 / (1 + step) + rng.random())}) is None
    trip = wd.check_losses(200, {"loss": 5e5})
    assert trip.kind == "spike" and "times its running average" in trip.message
    small = Watchdog()
    for step in range(50):
        small.check_losses(step, {"kl/z0": 1e-4})
    assert small.check_losses(50, {"kl/z0": 5.0}) is None  # a term near 0 may grow (the floor)


def test_a_coverage_collapse_trips_at_the_next_step_and_names_the_last_good_measurement() -> None:
    wd = Watchdog()
    wd.report_coverage(100, 3, 8)  # a best of 3 is too little to judge
    wd.report_coverage(200, 8, 8)
    wd.report_coverage(300, 6, 8)  # down, but above half
    assert wd.check_losses(301, {"loss": 1.0}) is None
    wd.report_coverage(400, 2, 8)
    trip = wd.check_losses(401, {"loss": 1.0})
    assert trip.kind == "collapse" and trip.good_before == 300 and "2 of 8" in trip.message


def test_nan_parameters_and_gradients_are_named() -> None:
    s = session(images())
    wd = Watchdog()
    s.engine.training_step(next(s.batches), 0)
    assert wd.check_tensors(0, s.engine) is None
    name, p = next(iter(s.engine.named_parameters()))
    p.grad[0] = float("inf")
    assert f"gradient of {name!r}" in wd.check_tensors(1, s.engine).message
    with torch.no_grad():
        p[0] = float("nan")
    assert f"parameter {name!r}" in wd.check_tensors(2, s.engine).message


def test_a_good_state_restored_replays_the_same_steps() -> None:
    s = session(images())
    for step in range(3):
        s.engine.training_step(next(s.batches), step)
        s.step += 1
    state = TrainState.capture(s)
    after = [s.engine.training_step(next(s.batches), step)["loss"] for step in range(3, 6)]
    s.step = 6
    state.restore(s)
    assert s.step == 3
    assert [s.engine.training_step(next(s.batches), step)["loss"] for step in range(3, 6)] == after
    ring = StateRing(max_bytes=2 * state.nbytes)
    for step in (1, 2, 3):
        ring.add(TrainState(step, state.weights, state.optimizers, state.resume, state.nbytes))
    assert len(ring) == 2 and ring.latest().step == 3 and ring.latest(before=2).step == 2
    ring.add(TrainState(2, state.weights, state.optimizers, state.resume, state.nbytes))  # a rollback to 2
    assert [ring.latest().step, len(ring)] == [2, 1]


# -- in the trainer ------------------------------------------------------------------------------
def test_a_nan_in_a_batch_rolls_back_and_pauses() -> None:
    s = session(images(nan_at=5))  # in the first epoch's batches: the trip comes within ~13 steps
    trainer, inbox = run(s, Watchdog(), 200)
    tripped = inbox.wait(P.WatchdogTripped, timeout=30)[0]
    paused = inbox.wait(P.TrainingState, timeout=30)
    assert paused[-1].state == "paused"
    assert tripped.cause == "nan" and not tripped.auto and tripped.rolled_back_to <= tripped.step
    assert {row[1] for row in tripped.suggestions} >= {"lr", "beta"}
    wgan = create_engine("wgan", images().info, latent_dim=2)
    fixes = {row[1]: row[2] for row in Watchdog.suggestions(tripped_as(tripped), wgan)}
    assert fixes["n_critic"] == 2 and fixes["g_lr"] == wgan.h("g_lr") / 2 and "clip" in fixes
    assert s.step == tripped.rolled_back_to and finite(s.engine)  # the weights of the good state
    trainer.stop()
    trainer.join(10)
    assert inbox.of(P.Stopped)[-1].reason == "stopped"


def test_auto_resume_halves_the_learning_rate_and_gives_up_on_a_batch_that_always_fails() -> None:
    s = session(images(nan_at=5))
    wd = Watchdog(WatchdogSettings(auto_resume=True))
    trainer, inbox = run(s, wd, 200)
    inbox.wait(P.TrainingState, timeout=60)  # paused in the end: the same batch fails whatever the rate
    trips = inbox.of(P.WatchdogTripped)
    assert len(trips) == MAX_AUTO_TRIPS + 1 and all(t.auto for t in trips[:-1]) and not trips[-1].auto
    lrs = [e.value for e in inbox.of(P.HyperparameterChanged)]
    assert lrs == pytest.approx([1e-3 / 2 ** (i + 1) for i in range(MAX_AUTO_TRIPS)])
    assert [h[1] for h in s.hyper_history] == ["lr"] * MAX_AUTO_TRIPS  # saved with the next checkpoint
    trainer.stop()
    trainer.join(10)


def test_an_absurd_learning_rate_is_caught_and_halving_it_recovers() -> None:
    """RealNVP at lr 0.1 (the slider's top) explodes within a few steps; halving until it holds trains on."""
    from engines.data import load_dataset

    s = session(load_dataset("digits", 8), model="realnvp", lr=0.1)
    wd = Watchdog(WatchdogSettings(auto_resume=True))
    trainer, inbox = run(s, wd, 150)
    trainer.join(120)
    stopped = inbox.of(P.Stopped)[-1]
    assert stopped.reason == "finished" and stopped.step == 150
    trips = inbox.of(P.WatchdogTripped)
    assert trips and trips[0].cause in ("nan", "spike") and all(t.auto for t in trips)
    assert s.engine.h("lr") < 0.1 and finite(s.engine)
    markers = inbox.of(P.HyperparameterChanged)
    assert len(markers) == len(trips) and markers[-1].value == s.engine.h("lr")
