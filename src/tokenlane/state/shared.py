"""One replica's share of the fleet's state through Redis: built in `create_app`, run by the
lifespan, never on the request path.

    stats   observations out and in, every sync_interval_s      (stats_sync)
    circuits opens and closes, at once, by pub/sub              (circuit_sync)
    keys    virtual keys' records, at once, by pub/sub            (key_sync)
    probes  a lease per deployment before a probe round         (leases)
    health  the connection's watcher: down, one log line, back  (redis_conn)

Two steps, because the engine takes its observers when it is built: `SharedState(...)` first
(its `observe` joins the engine's observers), then `attach(engine, prober)`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..routing.engine import Engine
from ..routing.probes import Prober
from ..stats.observation import Observation
from .circuit_sync import CircuitSync
from .key_sync import KeySync
from .leases import ProbeLeases
from .redis_conn import RedisConnection
from .stats_sync import StatsSync

if TYPE_CHECKING:
    from ..keys.service import KeyService

__all__ = ["SharedState"]


class SharedState:
    def __init__(self, conn: RedisConnection, deployments: Iterable[str],
                 replica: str | None = None, keys: KeyService | None = None) -> None:
        self.conn = conn
        # Unique per process: a replica's own messages are told apart from its peers'.
        self.replica = replica or uuid.uuid4().hex[:12]
        self.deployments = frozenset(deployments)
        self.stats: StatsSync | None = None
        self.circuits: CircuitSync | None = None
        self._pending: list[Observation] = []  # observations before `attach` (none, normally)
        self.keys = KeySync(conn, keys, self.replica) if keys is not None else None

    def observe(self, observation: Observation) -> None:
        """The engine's observer: queue what this replica measured for the others."""
        if self.stats is not None:
            self.stats.publish(observation)
        else:
            self._pending.append(observation)

    def attach(self, engine: Engine, prober: Prober) -> None:
        self.stats = StatsSync(self.conn, engine.stats, self.replica, self.deployments)
        for observation in self._pending:
            self.stats.publish(observation)
        self._pending.clear()
        self.circuits = CircuitSync(self.conn, engine.circuits, engine.stats, self.replica,
                                    self.deployments)
        # Held for the shortest recheck interval plus the time a probe's result takes to reach
        # every replica (two sync ticks): no one probes again before it has seen the result.
        hold_s = engine.rechecks.settings.first_s + 2 * self.conn.settings.sync_interval_s
        prober.leases = ProbeLeases(self.conn, self.replica, hold_s).grant

    def live_peers(self) -> int:
        return self.stats.live_peers() if self.stats is not None else 0

    def report(self) -> dict[str, object]:
        """For /v1/router/stats: which replica this is, whether Redis answers, who else."""
        return {"backend": "redis", "up": self.conn.up, "replica": self.replica,
                "peers": self.live_peers(),
                "synced": self.stats.synced if self.stats is not None else 0,
                "circuit_changes_applied": self.circuits.applied if self.circuits else 0,
                "key_changes_applied": self.keys.applied if self.keys else 0}

    async def run(self) -> None:
        """Every loop (a lifespan task; cancel to stop); Redis is tried first if the lifespan
        has not reached it yet."""
        assert self.stats is not None and self.circuits is not None, "attach() first"
        if not self.conn.up:
            await self.conn.ping()
        await asyncio.gather(self.conn.run(), self.stats.run(), self.circuits.run(),
                             *([self.keys.run()] if self.keys is not None else []))
