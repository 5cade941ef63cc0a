"""What a replica spent while Redis was out of reach (pure bookkeeping; the Redis limiter
does the I/O).

A replica that cannot reach Redis admits from its own counts (`LocalLimiter`) rather than
failing a request. What those requests spent is kept here, per key and per period, until it
can be added to the fleet's numbers in Redis. (Requests that Redis had admitted and that ended
during the outage wait in the limiter instead, to be settled by their reservation ids.)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Batch", "LocalSpend"]


@dataclass(frozen=True, slots=True)
class Batch:
    """USD a key spent locally in one day (and month), pushed to Redis once (by its id)."""

    key_id: str
    day: float  # period starts, Unix seconds
    month: float
    usd: float
    id: str


class LocalSpend:
    """Spend counted locally, waiting to be pushed. A batch whose push failed comes back with
    its id, so a push that did land but whose reply was lost is not added twice."""

    def __init__(self, new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self._new_id = new_id
        self._open: dict[tuple[str, float, float], float] = {}
        self._sealed: list[Batch] = []

    def add(self, key_id: str, day: float, month: float, usd: float) -> None:
        if usd > 0:
            slot = (key_id, day, month)
            self._open[slot] = self._open.get(slot, 0.0) + usd

    def take(self) -> list[Batch]:
        """Everything waiting, as batches to push (each push once; `unsent` the failures)."""
        batches = self._sealed + [Batch(k, d, m, usd, self._new_id())
                                  for (k, d, m), usd in self._open.items()]
        self._open.clear()
        self._sealed = []
        return batches

    def unsent(self, batches: list[Batch]) -> None:
        self._sealed = batches + self._sealed

    def usd(self) -> float:
        return sum(self._open.values()) + sum(b.usd for b in self._sealed)

    def __bool__(self) -> bool:
        return bool(self._open or self._sealed)
