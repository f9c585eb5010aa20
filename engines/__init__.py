"""Latent Studio's engines: models, data, metrics, latent maths, the worker and its protocol.

This package never imports Qt or :mod:`studio`. Importing ``engines`` itself is cheap: torch is
only loaded by the modules that need it (models, training, worker, checkpoints), so the window can
use :mod:`engines.shared.protocol`, :mod:`engines.shared.spec` and :mod:`engines.data` without loading torch.
"""

from __future__ import annotations

__version__ = "0.1.0"
