"""Virtual keys shared across replicas: a key created, updated, rotated or revoked through
one replica's admin API is in force on every replica within a second (pub/sub delivers in
milliseconds), whatever store each replica keeps its keys in.

What travels is the key's record as the store keeps it (the hash of its secret, never the
secret). Each change made here (`KeyService.on_change`) is written to the hash
`<prefix>:keys:records` (the fleet's current copy of every key) and published on
`<prefix>:keys`; each replica applies the others' records to its in-memory table (at once)
and its own store (for its next start). On every (re)connection a replica reconciles with the
hash: it takes what it missed, and pushes what the hash lacks or has older (keys made here
while Redis was away, a revocation the hash does not show yet). A revocation is final: no
older record brings a key back (`KeyService.adopt`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..keys.records import VirtualKey
from .pubsub import send, serve_channel
from .redis_conn import RedisConnection
from .wire import decode_key, encode_key

if TYPE_CHECKING:
    from ..keys.service import KeyService

__all__ = ["KeySync"]


class KeySync:
    def __init__(self, conn: RedisConnection, keys: KeyService, replica: str) -> None:
        self.conn = conn
        self.keys = keys
        self.replica = replica
        self.channel = conn.key("keys")
        self.records = conn.key("keys", "records")
        # Keys whose record here Redis does not have yet (kept while Redis is down: pushed
        # when it is back). Ids only: what is pushed is the record as it is when sent.
        self._outbox: dict[str, None] = {}
        self._wake = asyncio.Event()
        self._up = asyncio.Event()
        self.applied = 0  # key records taken from other replicas (for tests and operators)
        keys.on_change = self._changed_here
        conn.health.on_change(self._backend_changed)

    def _changed_here(self, key: VirtualKey) -> None:
        self._outbox[key.id] = None
        self._wake.set()

    def _backend_changed(self, up: bool) -> None:
        if up:
            self._up.set()
            self._wake.set()
        else:
            self._up.clear()

    async def publish_pending(self) -> int:
        """Write and publish what changed here; returns how many. Stops (keeping the rest)
        when Redis fails."""
        sent = 0
        while self._outbox and self.conn.up:
            key_id = next(iter(self._outbox))
            key = self.keys.get(key_id)
            message = encode_key(self.replica, key)

            if not await send(self.conn, self.channel, message,
                              lambda pipe, k=key_id, m=message: pipe.hset(self.records, k, m)):
                return sent
            if self.keys.get(key_id) == key:  # else it changed again meanwhile: once more
                self._outbox.pop(key_id, None)
            sent += 1
        return sent

    async def catch_up(self) -> int:
        """Reconcile with the fleet's copy: take the keys others changed (except those changed
        here since, which are pushed instead), then push what the copy lacks or has older."""
        stored = await self.conn.call(lambda redis: redis.hgetall(self.records))
        fleet = {key.id: key for _, key in filter(None, map(decode_key, stored.values()))}
        taken = await self._adopt([k for k in fleet.values() if k.id not in self._outbox])
        self._push_differing(fleet, self.keys.list())
        return taken

    async def take(self, message: bytes) -> bool:
        """Apply one published record (another replica's); False when it was ours, malformed
        or changed nothing."""
        decoded = decode_key(message)
        if decoded is None or decoded[0] == self.replica:
            return False
        return await self._adopt([decoded[1]]) > 0

    async def _adopt(self, keys: list[VirtualKey]) -> int:
        taken = await self.keys.adopt(keys, persist=True)
        self.applied += taken
        # A record older than ours (it lacks a revocation made here): ours goes back out, or
        # the fleet's copy would keep the key alive for the next replica to start.
        self._push_differing({k.id: k for k in keys}, [self.keys.get(k.id) for k in keys])
        return taken

    def _push_differing(self, fleet: dict[str, VirtualKey], ours: list[VirtualKey]) -> None:
        for key in ours:
            if fleet.get(key.id) != key:
                self._outbox[key.id] = None
                self._wake.set()

    async def run(self) -> None:
        """Publishing and listening (a lifespan task; cancel to stop)."""
        await serve_channel(self.conn, self.channel, "keys", up=self._up, wake=self._wake,
                            publish=self.publish_pending, catch_up=self.catch_up,
                            take=self.take)
