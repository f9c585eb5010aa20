"""Request bookkeeping: "is this answer mine, and is it the newest?", written once.

Every request a feature sends carries a fresh id; only the answer to the newest request of each
purpose is shown, older ones are dropped (napari's asynchronous slicer does the same). A request
may keep a payload (what was asked, e.g. the labels of a traversal's rows) until its answer comes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Requests:
    """The newest request id of each purpose, and what it asked.

    Parameters
    ----------
    next_id : callable
        Gives a fresh request id (an int > 0) each call, e.g. ``WorkerClient.next_id``.

    Examples
    --------
    >>> ids = iter(range(1, 100))
    >>> r = Requests(lambda: next(ids))
    >>> a = r.ask("traverse", payload=["z0"]); b = r.ask("traverse", payload=["z1"])
    >>> r.is_current("traverse", a), r.is_current("traverse", b)
    (False, True)
    >>> r.payload("traverse", a), r.take("traverse", b)
    (['z0'], ['z1'])
    """

    def __init__(self, next_id: Callable[[], int]) -> None:
        self._next_id = next_id
        self._asked: dict[str, int] = {}
        self._shown: dict[str, int] = {}
        self._payload: dict[tuple[str, int], Any] = {}

    def ask(self, purpose: str, payload: Any = None) -> int:
        """A fresh id for a new request of ``purpose``; it supersedes the older ones (whose answers may still
        be shown, with their payloads, until a newer one is)."""
        rid = int(self._next_id())
        self._asked[purpose] = rid
        if payload is not None:
            self._payload[(purpose, rid)] = payload
        return rid

    def asked(self, purpose: str) -> int:
        """The newest id asked for ``purpose`` (0: none)."""
        return self._asked.get(purpose, 0)

    def is_current(self, purpose: str, rid: int) -> bool:
        """Whether ``rid`` answers the newest request of ``purpose``."""
        return rid != 0 and self._asked.get(purpose) == rid

    def is_newer(self, purpose: str, rid: int) -> bool:
        """Whether an answer ``rid`` is newer than the last one shown for ``purpose`` (and was asked here)."""
        return 0 < rid <= self._asked.get(purpose, 0) and rid > self._shown.get(purpose, 0)

    def shown(self, purpose: str, rid: int) -> None:
        """Remember that the answer to ``rid`` is on screen now; payloads of it and older requests are dropped."""
        self._shown[purpose] = max(self._shown.get(purpose, 0), int(rid))
        for key in [k for k in self._payload if k[0] == purpose and k[1] <= rid]:
            del self._payload[key]

    def payload(self, purpose: str, rid: int, default: Any = None) -> Any:
        """What request ``rid`` of ``purpose`` asked, if it is still kept."""
        return self._payload.get((purpose, rid), default)

    def take(self, purpose: str, rid: int, default: Any = None) -> Any:
        """:meth:`payload`, forgetting it; the request of ``purpose`` is answered."""
        if self._asked.get(purpose) == rid:
            del self._asked[purpose]
        return self._payload.pop((purpose, rid), default)

    def forget(self, purpose: str | None = None) -> None:
        """Drop every request of ``purpose`` (all purposes with None): a new model makes them stale."""
        if purpose is None:
            self._asked.clear(), self._shown.clear(), self._payload.clear()
            return
        self._asked.pop(purpose, None)
        self._shown.pop(purpose, None)
        for key in [k for k in self._payload if k[0] == purpose]:
            del self._payload[key]
