"""The Energy tab's Qt-free part: whether it applies, the masks of a clamped chain, and what log Z reads."""

from __future__ import annotations

import math

from studio.state import known_mask  # noqa: F401 - the controller takes it from here

#: Which part of a held-out image a clamped chain keeps (the rest is sampled given it).
MASKS = ("top half kept", "left half kept", "top-left quarter kept", "nothing kept")


def energy_reason(ready) -> str:  # noqa: ANN001 - a protocol.Ready or None
    """Why the tab is off ("" when it applies): it needs a model with Gibbs chains (an RBM)."""
    if ready is None:
        return "Build or open an energy model (rbm) to watch its chains, filters and partition function"
    if not ready.capabilities.has("chains"):
        return ("This model has no Gibbs chains: the Energy tab is for energy models (rbm), whose samples come "
                "from Markov chains")
    return ""


def log_z_text(event) -> str:  # noqa: ANN001 - a protocol.LogZEstimated
    """``"log Z = 412.30 +- 0.41 nats by AIS (100 runs, 1,000 temperatures, 2.1 s), exact 412.12, at step 1,500"``."""
    text = (f"log Z = {event.log_z:.2f} +- {event.stderr:.2f} nats by AIS ({event.runs:,} runs, "
            f"{event.betas:,} temperatures, {event.seconds:.1f} s)")
    if math.isfinite(event.exact):
        text += f", exact {event.exact:.2f}"
    return text + f", at step {event.step:,}"
