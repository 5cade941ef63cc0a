"""Probe leases: one replica re-measures a deployment, not every replica at once.

Before a probe round sends its probes, the prober asks for a lease on each deployment due
(`SET <prefix>:probe:<deployment> <replica> NX PX <hold>`, pipelined in one round trip). A
lease someone else holds means another replica is probing it now; its measurement reaches
this replica through the shared stats. The lease is never released early: it lapses after
`hold_s` (the shortest recheck interval, plus the time a result takes to reach every
replica), so a deployment is probed at most once per
interval by the whole fleet, and a replica that dies mid-probe blocks nobody for longer.

Redis down: every lease is granted (each replica probes for itself, as without Redis).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .redis_conn import RedisConnection, StateUnavailable

__all__ = ["ProbeLeases"]


class ProbeLeases:
    def __init__(self, conn: RedisConnection, replica: str, hold_s: float) -> None:
        self.conn = conn
        self.replica = replica
        self.hold_ms = max(1, int(hold_s * 1000))

    async def grant(self, deployments: Sequence[str]) -> set[str]:
        """The deployments of `deployments` this replica may probe now."""
        if not deployments:
            return set()

        async def take(redis: Any) -> list[Any]:
            pipe = redis.pipeline(transaction=False)
            for d in deployments:
                pipe.set(self.conn.key("probe", d), self.replica, nx=True, px=self.hold_ms)
            return list(await pipe.execute())

        try:
            taken = await self.conn.call(take)
        except StateUnavailable:
            return set(deployments)
        return {d for d, ok in zip(deployments, taken, strict=True) if ok}
