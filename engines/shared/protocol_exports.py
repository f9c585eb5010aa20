"""Messages of the exports the worker renders on its job thread (re-exported by :mod:`engines.shared.protocol`).

Export is answered by Exported (with the files' bytes for a window on another machine), Cancel stops a
job. numpy and the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engines.shared.codec import Command, Event


@dataclass(frozen=True)
class Export(Command):
    """Render an animation or strip on the worker's job thread; answered by :class:`Exported`.

    The worker saves the current weights beside ``out`` (``<out without suffix>.safetensors``,
    reusing the last checkpoint it wrote when the weights have not changed), renders with
    :func:`engines.lib.export.export`, writes ``out`` and its sidecar ``out + ".json"``, and sends
    Progress (task "export") on the way. :class:`Cancel` stops it and leaves no partial file.

    Attributes
    ----------
    kind : {"interpolation", "traversal", "morph", "samples"}
    out : str
        Path of the file to write; its suffix (.gif, .mp4, .png) picks the format.
    latents : dict
        The sidecar's kind-specific ``latents`` (see :mod:`engines.lib.export`).
    settings : dict
        ``fps``, ``size``, ``resample``, ``labels`` (see :mod:`engines.lib.export`).
    deliver : bool
        The window is on another machine: render in a temporary folder and send the files back in
        :class:`Exported` (``out`` is then a path on the window's machine, only its name is used here).
    """

    request_id: int = 0
    kind: str = "interpolation"
    out: str = ""
    latents: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    deliver: bool = False


@dataclass(frozen=True)
class Exported(Event):
    """Answer to :class:`Export`: the file written, its sidecar, its frame count and the wall time in s.

    For a delivered export, ``names`` (the file, its sidecar, its weights: plain file names), their
    ``sizes`` in bytes and their bytes one after another in ``blob`` (uint8), to write beside ``path``.
    """

    request_id: int = 0
    path: str = ""
    sidecar: str = ""
    frames: int = 0
    seconds: float = 0.0
    names: list = field(default_factory=list)
    sizes: list = field(default_factory=list)
    blob: np.ndarray | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Cancel(Command):
    """Cancel the job (Export, projecting Encode) of ``request_id``, queued or running; no reply if none."""

    request_id: int = 0
