"""Circuits shared across replicas: an open or a close decided on one reaches all within a
second (Redis pub/sub delivers in milliseconds).

Each change the local board decides (`CircuitBoard.on_change`, on the request path: an
append and a wake-up) is published by a background task, and also written as the key
`<prefix>:circuit:<deployment>` that expires with the cool-down (deleted on a close): the
current state of every circuit, for a replica that was not listening when it changed (one
just started, or one whose Redis connection was away), read on every (re)connection. Changes
from others are applied to the local board (`CircuitBoard.apply`); a close also forgets the
deployment's failures here, as a local close does.

While Redis is down nothing is queued: the board's own decisions stand locally, and on the
way back up what is still open here is published again (`CircuitBoard.opened`), so a change
missed in between is caught up by its current state, not by a stale event.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from ..routing.circuit import CircuitBoard, CircuitChange
from ..stats.store import StatsStore
from .pubsub import send, serve_channel
from .redis_conn import RedisConnection
from .wire import decode_circuit_change, encode_circuit_change

__all__ = ["CircuitSync"]


class CircuitSync:
    def __init__(self, conn: RedisConnection, board: CircuitBoard, store: StatsStore,
                 replica: str, deployments: frozenset[str]) -> None:
        self.conn = conn
        self.board = board
        self.store = store
        self.replica = replica
        self.deployments = deployments
        self.channel = conn.key("circuits")
        self._outbox: deque[CircuitChange] = deque(maxlen=1000)
        self._wake = asyncio.Event()
        self._up = asyncio.Event()
        self.applied = 0  # changes taken from other replicas (for tests and operators)
        board.on_change = self._changed_here
        conn.health.on_change(self._backend_changed)

    def _changed_here(self, change: CircuitChange) -> None:
        self._outbox.append(change)
        self._wake.set()

    def _backend_changed(self, up: bool) -> None:
        if up:
            self._outbox.clear()  # replaced by the current state, published again
            self._outbox.extend(self.board.opened())
            self._up.set()
            self._wake.set()
        else:
            self._up.clear()

    def _key(self, deployment: str) -> str:
        return self.conn.key("circuit", deployment)

    async def publish_pending(self) -> int:
        """Publish what changed here; returns how many. Stops (keeping the rest) when Redis
        fails."""
        sent = 0
        while self._outbox and self.conn.up:
            change = self._outbox[0]
            message = encode_circuit_change(self.replica, change)

            def write(pipe: Any, change: CircuitChange = change, message: bytes = message
                      ) -> None:
                if change.state == "open" and change.seconds > 0:
                    pipe.set(self._key(change.deployment), message,
                             px=max(1, int(change.seconds * 1000)))
                else:
                    pipe.delete(self._key(change.deployment))

            if not await send(self.conn, self.channel, message, write):
                return sent
            self._outbox.popleft()
            sent += 1
        return sent

    async def catch_up(self) -> int:
        """Apply the circuits other replicas hold open now (read from their keys)."""
        ids = sorted(self.deployments)

        async def read(redis: Any) -> list[Any]:
            pipe = redis.pipeline(transaction=False)
            for d in ids:
                pipe.get(self._key(d))
                pipe.pttl(self._key(d))
            return list(await pipe.execute())

        replies = await self.conn.call(read)
        applied = 0
        for message, ttl_ms in zip(replies[::2], replies[1::2], strict=True):
            if message is None or not isinstance(ttl_ms, int) or ttl_ms <= 0:
                continue
            decoded = decode_circuit_change(message, self.deployments)
            if decoded is not None and decoded[0] != self.replica:
                change = decoded[1]
                # What is left of the cool-down is the key's own time to live.
                self._apply(CircuitChange(change.deployment, "open", ttl_ms / 1000,
                                          change.open_for, change.rate_limited,
                                          change.auth_failed))
                applied += 1
        return applied

    def take(self, message: bytes) -> bool:
        """Apply one published change (another replica's); False when it was ours or
        malformed."""
        decoded = decode_circuit_change(message, self.deployments)
        if decoded is None or decoded[0] == self.replica:
            return False
        self._apply(decoded[1])
        return True

    def _apply(self, change: CircuitChange) -> None:
        if self.board.apply(change):
            self.store.forget_failures(change.deployment)
        self.applied += 1

    async def run(self) -> None:
        """Publishing and listening (a lifespan task; cancel to stop)."""
        await serve_channel(self.conn, self.channel, "circuit", up=self._up, wake=self._wake,
                            publish=self.publish_pending, catch_up=self.catch_up,
                            take=self.take)
