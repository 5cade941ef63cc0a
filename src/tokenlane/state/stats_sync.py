"""Measurements shared across replicas: every replica routes on what the whole fleet measured.

What is shared are the observations themselves, the sufficient statistics of every estimate
the stats store keeps: replayed into each replica's own store (`StatsStore.observe_peer`),
they give the decayed quantiles, error rates, TTFT regression and level-shift detection the
fleet's traffic would give one process, with the same half-life and staleness rules. A
replica that stops publishing simply stops adding samples, and what it measured fades like
any other sample; it also drops out of `live_peers` after `peer_stale_s`.

Off the request path: finishing an attempt appends the observation to an outbox (a deque,
bounded). Every `sync_interval_s` one pipelined round trip XADDs the outbox as one entry of
a Redis stream (capped in length) and XREADs what the others added since the last read.
While Redis is down the outbox keeps filling (bounded: the oldest go first) and is published
when it answers again; the stream keeps what this replica missed, up to its cap. A replica
that joins starts with the fleet's last minute. A long catch-up yields to the event loop
after every entry, so requests in flight are not held up by it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from ..stats.observation import Observation
from ..stats.store import StatsStore
from ..tracebacks import one_line
from .redis_conn import RedisConnection, StateUnavailable
from .wire import decode_observations, encode_observations

__all__ = ["StatsSync"]

log = logging.getLogger("tokenlane.state")

_PUBLISH_AT_MOST = 2000  # observations in one stream entry (a backlog goes over several ticks)
_READ_COUNT = 500  # stream entries per XREAD
_READS_PER_TICK = 8  # a replica catching up reads this many pages, then waits a tick
_HISTORY_S = 60  # a replica's first read: the fleet's observations of the last minute


class StatsSync:
    def __init__(self, conn: RedisConnection, store: StatsStore, replica: str,
                 deployments: frozenset[str], *, backlog: int = 20_000,
                 stream_entries: int = 5_000) -> None:
        self.conn = conn
        self.store = store
        self.replica = replica
        self.deployments = deployments
        self.stream = conn.key("observations")
        self._stream_entries = stream_entries
        self._outbox: deque[Observation] = deque(maxlen=backlog)
        self._last_id: bytes | str | None = None  # set by the first sync (see `_start_id`)
        self._peers: dict[str, float] = {}  # replica -> local time it was last heard from
        self.synced = 0  # sync rounds completed (the fleet's view is at most this old)
        self._sequence = 0  # the number of the last batch published
        self._batch: tuple[int, list[Observation]] | None = None  # taken from the outbox, unsent
        self._taken: dict[str, int] = {}  # replica -> the number of its last batch taken

    def publish(self, observation: Observation) -> None:
        """An observer of the engine (the request path): an append, nothing more."""
        self._outbox.append(observation)

    def live_peers(self) -> int:
        """Other replicas heard from within `peer_stale_s`."""
        cutoff = self.store.clock.now() - self.conn.settings.peer_stale_s
        for replica in [r for r, at in self._peers.items() if at < cutoff]:
            del self._peers[replica]
        return len(self._peers)

    async def sync_once(self) -> int:
        """Publish the outbox and take the others' new observations; returns how many were
        taken. Raises StateUnavailable (the outbox kept) when Redis is down or fails."""
        if self._batch is None and self._outbox:
            count = min(len(self._outbox), _PUBLISH_AT_MOST)
            self._batch = (self._sequence + 1, [self._outbox.popleft() for _ in range(count)])
        # A batch whose XADD timed out may have landed all the same: it is sent again under
        # its number, and readers skip a number they already took. (Empty: number 0.)
        number, outgoing = self._batch or (0, [])
        batch = encode_observations(outgoing, self.store.clock.now())
        if self._last_id is None:
            self._last_id = await self._start_id()

        async def exchange(redis: Any) -> list[Any]:
            pipe = redis.pipeline(transaction=False)
            pipe.time()
            # Published every tick, empty or not: the entry is also this replica's heartbeat.
            pipe.xadd(self.stream, {"r": self.replica, "n": number, "b": batch},
                      maxlen=self._stream_entries, approximate=True)
            pipe.xread({self.stream: self._last_id}, count=_READ_COUNT)
            return list(await pipe.execute())

        server_time, _, read = await self.conn.call(exchange)
        if number:
            self._sequence, self._batch = number, None
        server_ms = int(server_time[0]) * 1000 + int(server_time[1]) // 1000
        entries = _entries(read)
        taken = await self._take(entries, server_ms)
        for _ in range(_READS_PER_TICK - 1):  # catching up: the next pages, at once
            if len(entries) < _READ_COUNT:
                break
            entries = _entries(await self.conn.call(
                lambda redis: redis.xread({self.stream: self._last_id}, count=_READ_COUNT)))
            taken += await self._take(entries, server_ms)
        self.synced += 1
        return taken

    async def _start_id(self) -> str:
        """Where a replica's first read starts: the fleet's last `_HISTORY_S` seconds (from
        Redis's clock), enough to route on at once without replaying a long stream."""
        seconds, micros = await self.conn.call(lambda redis: redis.time())
        return f"{max(0, int(seconds) * 1000 + int(micros) // 1000 - _HISTORY_S * 1000)}-0"

    async def _take(self, entries: list[Any], server_ms: int) -> int:
        now = self.store.clock.now()
        taken = 0
        for entry_id, fields in entries:
            self._last_id = entry_id
            replica = _text(fields.get(b"r", fields.get("r")))
            if replica is None or replica == self.replica:
                continue
            self._peers[replica] = now
            number = _number(fields.get(b"n", fields.get("n")))
            if number and number <= self._taken.get(replica, 0):
                continue  # sent twice (its first XADD timed out, yet landed)
            if number:
                self._taken[replica] = number
            # Its observations are aged as of publication; add how long it sat in the stream.
            waited_s = max(0, server_ms - _entry_ms(entry_id)) / 1000
            data = fields.get(b"b", fields.get("b")) or b"[]"
            for observation in decode_observations(data, now - waited_s, self.deployments):
                self.store.observe_peer(observation)
                taken += 1
            await asyncio.sleep(0)  # a long catch-up must not hold up the requests in flight
        return taken

    async def run(self) -> None:
        """Sync every `sync_interval_s` (a lifespan task; cancel to stop). Real time: the
        fleet's replicas meet in wall seconds, whatever clock each one measures with."""
        while True:
            if self.conn.up:
                try:
                    await self.sync_once()
                except StateUnavailable:
                    pass  # logged once by the connection; the outbox waits for its return
                except Exception as exc:  # noqa: BLE001 - sharing must never take routing down
                    log.error("stats sync failed: %s", one_line(exc))
            await asyncio.sleep(self.conn.settings.sync_interval_s)


def _entries(read: Any) -> list[Any]:
    """The stream's entries from an XREAD reply, RESP2 (a list) or RESP3 (a dict)."""
    if not read:
        return []
    if isinstance(read, dict):
        return list(next(iter(read.values()))[0])
    return list(read[0][1])


def _entry_ms(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


def _number(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None
