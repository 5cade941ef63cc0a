"""Probes are not duplicated by every replica: a lease per deployment in Redis."""

from __future__ import annotations

import asyncio

from tokenlane.clock import ManualClock
from tokenlane.config import StateSettings
from tokenlane.sim import SimProviderSpec
from tokenlane.state.leases import ProbeLeases
from tokenlane.state.redis_conn import RedisConnection

from ..redis_server import RedisServer
from .fleet import fleet, wait_for

SPECS = [SimProviderSpec(name=name, ttft_s=0.0, tokens_per_s=5000, output_tokens=3)
         for name in ("a", "b")]


def test_three_replicas_probe_each_new_deployment_once(redis_server: RedisServer) -> None:
    # Never measured: due a probe at once on every replica (without leases, three each).
    routing = {"probes": {"enabled": True}, "rechecks": {"first_s": 5.0}}
    with fleet(SPECS, {"m": ["a", "b"]}, redis_server.url, extra={"routing": routing}) as f:
        floor = [r.app.state.prober.rounds for r in f.replicas]
        # Every replica has run probe rounds for a while, and holds the probes' results.
        wait_for("every replica past several probe rounds, holding the probes' results",
                 lambda: all(r.app.state.prober.rounds >= n + 6 for r, n in
                             zip(f.replicas, floor, strict=True))
                 and all(r.estimate("m", p)["samples"] >= 1 for r in f.replicas
                         for p in ("a", "b")))
        assert [f.sim.counters(p).requests for p in ("a", "b")] == [1, 1]
        assert all(r.estimate("m", p)["samples"] == 1 for r in f.replicas for p in ("a", "b"))


async def test_a_lease_is_one_replicas_until_it_lapses(redis_server: RedisServer) -> None:
    settings = StateSettings(backend="redis", url=redis_server.url)
    conns = [RedisConnection(settings, ManualClock(), {}) for _ in range(3)]
    try:
        for conn in conns:
            assert await conn.ping()
        leases = [ProbeLeases(conn, f"replica-{i}", hold_s=0.3) for i, conn in enumerate(conns)]
        granted = await asyncio.gather(*(lease.grant(["p/x", "q/y"]) for lease in leases))
        for deployment in ("p/x", "q/y"):
            assert sum(deployment in g for g in granted) == 1
        lapsed = asyncio.Event()

        async def wait_lapse() -> None:  # Redis expires the key: watch for it, bounded
            while redis_server.client().exists("tokenlane:probe:p/x"):
                await asyncio.sleep(0.02)
            lapsed.set()

        await asyncio.wait_for(wait_lapse(), timeout=10)
        assert await leases[2].grant(["p/x"]) == {"p/x"}
        redis_server.kill()  # Redis gone: every replica probes for itself
        assert await leases[0].grant(["p/x"]) == {"p/x"}
        assert await leases[1].grant(["p/x"]) == {"p/x"}
    finally:
        for conn in conns:
            await conn.aclose()
