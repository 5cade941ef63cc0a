"""The spend ledger's writer: rows queue in memory and reach the store in batches, off the
request path (a request appends to a list; a background task commits every `interval_s`, or
sooner once `max_rows` are waiting, in a worker thread)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from .store import KeyStore, LedgerRow

__all__ = ["LedgerWriter"]

log = logging.getLogger("tokenlane.keys")

# Rows kept for a retry while the store fails (a full disk): past this, the oldest are dropped
# and the loss is logged, rather than the gateway's memory growing without bound.
_MAX_BACKLOG = 100_000

Offload = Callable[..., Awaitable[Any]]


class LedgerWriter:
    def __init__(self, store: KeyStore, offload: Offload, *, interval_s: float,
                 max_rows: int) -> None:
        self._store = store
        self._offload = offload  # runs a blocking store call off the event loop
        self._interval = interval_s
        self._max_rows = max_rows
        self._pending: list[LedgerRow] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # one batch at a time, in order

    def add(self, row: LedgerRow) -> None:
        self._pending.append(row)
        if len(self._pending) >= self._max_rows:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def run(self) -> None:
        """Flush on a timer until cancelled (the lifespan then calls `flush` once more)."""
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self._interval)
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Commit everything queued so far (a spend query calls it: reads see every request
        that has ended)."""
        async with self._lock:
            rows, self._pending = self._pending, []
            if not rows:
                return
            try:
                await self._offload(self._store.append, rows)
            except (sqlite3.Error, OSError) as exc:  # keep serving; retry these rows next time
                log.error("ledger write of %d rows failed: %s", len(rows), exc)
                self._pending[:0] = rows
                if len(self._pending) > _MAX_BACKLOG:
                    dropped = len(self._pending) - _MAX_BACKLOG
                    del self._pending[:dropped]
                    log.error("ledger backlog full: %d rows dropped", dropped)
