"""The Energy tab's Qt-free part: whether it applies, the masks of a clamped chain, what log Z reads, the hidden
units of one image laid out as a picture, a deep belief net's training stage, and the free-energy curves."""

from __future__ import annotations

import math

import numpy as np

from studio.state import known_mask  # noqa: F401 - the controller takes it from here

#: Which part of a held-out image a clamped chain keeps (the rest is sampled given it).
MASKS = ("top half kept", "left half kept", "top-left quarter kept", "nothing kept")
#: Loss terms of the free energy of held-out and of training data (an RBM's held-out probe).
FREE_ENERGY_TERMS = ("free_energy_held_out", "free_energy_train")


def energy_reason(ready) -> str:  # noqa: ANN001 - a protocol.Ready or None
    """Why the tab is off ("" when it applies): it needs a model with Gibbs chains (an RBM)."""
    if ready is None:
        return "Build or open an energy model (rbm, grbm, dbn) to watch its chains, filters and partition function"
    if not ready.capabilities.has("chains"):
        return ("This model has no Gibbs chains: the Energy tab is for energy models (rbm, grbm, dbn), whose "
                "samples come from Markov chains")
    return ""


def log_z_reason(ready) -> str:  # noqa: ANN001 - a protocol.Ready or None
    """Why Estimate log Z is off ("" when the model's likelihood is estimated by AIS)."""
    if ready is None or "ais" not in ready.capabilities.likelihood:
        return "This model has no partition function to estimate here (a deep belief net's needs a bound)"
    return ""


def log_z_text(event) -> str:  # noqa: ANN001 - a protocol.LogZEstimated
    """``"log Z = 412.30 +- 0.41 nats by AIS (100 runs, 1,000 temperatures, 2.1 s), exact 412.12, at step 1,500"``."""
    text = (f"log Z = {event.log_z:.2f} +- {event.stderr:.2f} nats by AIS ({event.runs:,} runs, "
            f"{event.betas:,} temperatures, {event.seconds:.1f} s)")
    if math.isfinite(event.exact):
        text += f", exact {event.exact:.2f}"
    return text + f", at step {event.step:,}"


def layer_count(config: dict) -> int:
    """Hidden layers of a model from its config: a deep belief net's ``layers`` lower layers plus its top one
    (it trains them in turn, ``layer_steps`` steps each); 1 for a model without them."""
    if "layer_steps" not in config:
        return 1
    try:
        return max(0, int(config.get("layers", 0))) + 1
    except (TypeError, ValueError):
        return 1


def stage_text(layer: float, layers: int, layer_steps: int) -> str:
    """What a deep belief net is training: ``"Greedy training: layer 2 of 3 (each layer 1,000 steps; the top
    one goes on)"``; "" for a model trained all at once."""
    if layers <= 1 or not math.isfinite(layer):
        return ""
    return (f"Greedy training: layer {int(layer)} of {layers} (each layer {layer_steps:,} steps, the lower layers "
            f"frozen; the top one goes on)")


def hidden_picture(probs: np.ndarray, sizes: np.ndarray, gap: int = 1) -> np.ndarray:
    """Each layer's p(h = 1 | v) as a near-square grid of cells (white 1, black 0), layers side by side from
    the first, separated by ``gap`` grey columns and padded grey below: (H, W) float32 in [0, 1]."""
    tiles, start = [], 0
    for size in (int(s) for s in sizes):
        p = np.asarray(probs[start:start + size], np.float32)
        start += size
        cols = max(1, int(math.ceil(math.sqrt(size))))
        rows = int(math.ceil(size / cols))
        tile = np.full(rows * cols, 0.5, np.float32)
        tile[:size] = p
        tiles.append(tile.reshape(rows, cols))
    if not tiles:
        return np.full((1, 1), 0.5, np.float32)
    height = max(t.shape[0] for t in tiles)
    parts = []
    for i, t in enumerate(tiles):
        if i:
            parts.append(np.full((height, gap), 0.5, np.float32))
        parts.append(np.vstack([t, np.full((height - t.shape[0], t.shape[1]), 0.5, np.float32)]))
    return np.hstack(parts)


def hidden_title(index: int, probs: np.ndarray, sizes: np.ndarray, step: int) -> str:
    """``"Held-out #3 at step 1,500: layer 1 (64 units) 12 on, mean 0.21; ..."`` (on: p > 0.5)."""
    parts, start = [], 0
    for i, size in enumerate(int(s) for s in sizes):
        p = np.asarray(probs[start:start + size])
        start += size
        parts.append(f"layer {i + 1} ({size} units) {int((p > 0.5).sum())} on, mean {float(p.mean()):.2f}")
    return f"Held-out #{index} at step {step:,}: " + "; ".join(parts)


class FreeEnergyHistory:
    """The free energy of the held-out probe and of training images over steps (nats), from StepMetrics."""

    def __init__(self) -> None:
        self.steps: dict[str, list[int]] = {t: [] for t in FREE_ENERGY_TERMS}
        self.values: dict[str, list[float]] = {t: [] for t in FREE_ENERGY_TERMS}

    def clear(self) -> None:
        """Forget every point (a new model)."""
        for t in FREE_ENERGY_TERMS:
            self.steps[t].clear()
            self.values[t].clear()

    def add(self, steps: np.ndarray, names: list, values: np.ndarray) -> bool:
        """Take the free-energy terms of one StepMetrics; whether any point was new."""
        new = False
        for t in FREE_ENERGY_TERMS:
            if t not in names:
                continue
            col = np.asarray(values)[:, list(names).index(t)]
            ok = np.isfinite(col)
            self.steps[t].extend(int(s) for s in np.asarray(steps)[ok])
            self.values[t].extend(float(v) for v in col[ok])
            new = new or bool(ok.any())
        return new

    def gap_text(self) -> str:
        """``"held-out - training free energy: 4.31 nats at step 2,000 (0.52 at the first measurement)"``."""
        held, train = self.values[FREE_ENERGY_TERMS[0]], self.values[FREE_ENERGY_TERMS[1]]
        if not held or not train:
            return ""
        gap, first = held[-1] - train[-1], held[0] - train[0]
        return (f"Held-out minus training free energy: {gap:.2f} nats at step {self.steps[FREE_ENERGY_TERMS[0]][-1]:,}"
                f" ({first:.2f} at the first measurement; a gap that grows is overfitting)")
