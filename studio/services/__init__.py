"""What every feature may use, handed to it by the shell: never the window itself.

:class:`Services` bundles the worker client, fresh request ids, a background file writer, the
worker-rendered exports and one channel for notices (the shell shows them in the Messages log and
the status bar). Features take a ``Services`` in ``__init__`` and talk to each other only through
signals the shell connects.
"""

from __future__ import annotations

from studio.services.core import Services
from studio.services.exports import WorkerExports, write_in_background
from studio.services.requests import Requests

__all__ = ["Requests", "Services", "WorkerExports", "write_in_background"]
