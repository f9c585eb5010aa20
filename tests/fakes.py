"""A stand-in WorkerClient for window tests that need no worker process."""

from __future__ import annotations

import itertools

import numpy as np

from engines.shared import protocol
from engines.shared.capabilities import Capabilities
from engines.shared.registry import MODELS
from studio.client import ClientSignals


def caps(encoder: bool = True) -> Capabilities:
    """A VAE's declared capabilities (an encoder), or a GAN's (none)."""
    return MODELS["vae" if encoder else "gan"].capabilities


class FakeClient(ClientSignals):
    """The WorkerClient's signals, ``send``, ``next_id`` and ``request_*``, recording commands instead of sending them."""

    def __init__(self, state: str = "ready", last_checkpoint: str | None = None) -> None:
        super().__init__()
        self.state, self.step, self.sent, self.decodes = state, 0, [], []
        self.last_checkpoint, self.last_configure = last_checkpoint, None
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    def send(self, command: protocol.Command) -> bool:
        self.sent.append(command)
        return True

    def request_decode(self, z: np.ndarray, view: str = "explore") -> int:
        self.decodes.append((view, np.array(z)))
        return len(self.decodes)

    def request_encode(self, indices: list[int], view: str = "explore", split: str = "test") -> int:
        self.sent.append(protocol.Encode(request_id=900 + len(self.sent), view=view, indices=list(indices), split=split))
        return self.sent[-1].request_id

    def request_encode_images(self, images: np.ndarray, view: str = "explore") -> int:
        self.sent.append(protocol.Encode(request_id=900 + len(self.sent), view=view, images=np.array(images, np.float32)))
        return self.sent[-1].request_id

    def cancel(self, request_id: int) -> bool:
        return self.send(protocol.Cancel(request_id=int(request_id)))

    def shutdown(self, timeout: float = 3.0) -> None:
        pass

    def traverses(self) -> list[protocol.Traverse]:
        return [c for c in self.sent if isinstance(c, protocol.Traverse)]

    def of(self, cls: type) -> list:
        """The commands of type ``cls`` sent so far."""
        return [c for c in self.sent if isinstance(c, cls)]
