"""The measurement sync on its own, against a real redis-server: a replica that joins late
starts with what the fleet measured lately; its own entries are never taken twice."""

from __future__ import annotations

from tokenlane.clock import ManualClock
from tokenlane.config import StateSettings
from tokenlane.state.redis_conn import RedisConnection
from tokenlane.state.stats_sync import StatsSync
from tokenlane.stats.observation import Observation
from tokenlane.stats.store import StatsStore

from ..redis_server import RedisServer

KNOWN = frozenset({"p/m"})


def sync(url: str, name: str) -> StatsSync:
    clock = ManualClock(start=1000)
    conn = RedisConnection(StateSettings(backend="redis", url=url), clock, {})
    return StatsSync(conn, StatsStore(clock), name, KNOWN)


def samples(s: StatsSync) -> int:
    return s.store.snapshot(["p/m"]).estimates["p/m"].samples


async def test_a_late_replica_starts_with_the_fleets_recent_measurements(
        redis_server: RedisServer) -> None:
    a, b = sync(redis_server.url, "a"), sync(redis_server.url, "b")
    try:
        assert await a.conn.ping() and await b.conn.ping()
        for i in range(5):
            obs = Observation("p/m", 990.0 + i, "ok", 10, 20, 0.2, 300.0, 0.27, 0.0)
            a.store.observe(obs)
            a.publish(obs)
        await a.sync_once()
        assert samples(a) == 5  # its own entry is not taken back
        assert await b.sync_once() == 5  # joined after: reads the last minute
        assert samples(b) == 5
        e = b.store.snapshot(["p/m"]).estimates["p/m"]
        assert e.decode_tps_p50 == 300.0
        # Aged, not re-timed: the newest was measured 6 s (A's clock) before publication.
        assert e.age_s is not None and 6.0 <= e.age_s < 16.0
        assert await b.sync_once() == 0 and await a.sync_once() == 0  # nothing new
        assert b.live_peers() == 1 and a.live_peers() == 1
    finally:
        await a.conn.aclose()
        await b.conn.aclose()
