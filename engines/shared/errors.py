"""The project's exception types. Each message names the file (where there is one) and the problem."""

from __future__ import annotations


class LatentStudioError(Exception):
    """Base class of every error that Latent Studio raises on purpose."""


class DataError(LatentStudioError, ValueError):
    """A data spec or data file that cannot be used: unknown spec, unreadable or malformed file.

    The message names the file and what is wrong with it, e.g.
    ``"mnist/train-images.gz: truncated gzip stream"``.
    """


class CheckpointError(LatentStudioError, ValueError):
    """A checkpoint that cannot be loaded: missing, corrupt, truncated or for another model."""


class ProtocolError(LatentStudioError, ValueError):
    """A message between the window and the worker that cannot be encoded or decoded."""


class ConfigError(LatentStudioError, ValueError):
    """An unknown model name, bad hyperparameter name or a value outside its range."""


class ExportError(LatentStudioError, ValueError):
    """An export or re-render that cannot be done: a bad sidecar, a missing checkpoint, a checkpoint
    whose SHA-256 does not match the sidecar's, or settings out of range. The message names the file."""


class ExportCancelled(LatentStudioError):
    """An export stopped because its cancel event was set; any partial output file has been removed."""
