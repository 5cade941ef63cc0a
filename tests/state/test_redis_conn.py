"""The Redis connection against a real redis-server: bounded calls, down at the first
failure with one log line, fast local fallback while down, back up after Redis returns."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tokenlane.clock import ManualClock
from tokenlane.config import StateSettings
from tokenlane.state.redis_conn import RedisConnection, StateUnavailable

from ..redis_server import RedisServer


def connection(url: str, **kw: object) -> RedisConnection:
    settings = StateSettings(backend="redis", url=url, retry_s=0.05, **kw)  # type: ignore[arg-type]
    return RedisConnection(settings, ManualClock(), {})


async def test_calls_are_namespaced_and_answered(redis_server: RedisServer) -> None:
    conn = connection(redis_server.url, prefix="fleet-a")
    try:
        assert not conn.up  # nothing contacted yet
        assert await conn.ping() and conn.up
        await conn.call(lambda r: r.set(conn.key("probe", "p/m"), "1"))
        assert redis_server.client().get("fleet-a:probe:p/m") == b"1"
    finally:
        await conn.aclose()


async def test_a_killed_redis_means_local_at_once_and_one_log_line(
        redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    conn = connection(redis_server.url)
    changes: list[bool] = []
    back = asyncio.Event()
    conn.health.on_change(lambda up: (changes.append(up), up and back.set()))
    assert await conn.ping()
    assert changes == [True]  # the first contact: listeners start sharing
    # The watcher starts once Redis is up, so it only PINGs while down: started before, its
    # own first PING could still be in flight at the kill and count a second failure.
    watcher = asyncio.create_task(conn.run())
    try:
        back.clear()
        redis_server.kill()
        caplog.set_level(logging.INFO, "tokenlane.state")
        with pytest.raises(StateUnavailable):
            await conn.call(lambda r: r.get("k"))
        assert not conn.up and conn.health.errors == 1
        for _ in range(50):  # while down, callers fail fast without touching the network
            with pytest.raises(StateUnavailable):
                await conn.call(lambda r: r.get("k"))
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "running on local state" in warnings[0].getMessage()
        redis_server.start()
        await asyncio.wait_for(back.wait(), timeout=30)  # the watcher's PING finds it
        assert conn.up and changes == [True, False, True]
        assert await conn.call(lambda r: r.set("k", "v"))
        assert any("reachable: sharing state" in r.getMessage() for r in caplog.records)
    finally:
        watcher.cancel()
        await conn.aclose()


async def test_a_stuck_redis_costs_one_bounded_timeout(redis_server: RedisServer) -> None:
    conn = connection(redis_server.url, timeout_s=0.2)
    try:
        assert await conn.ping()
        redis_server.pause()
        began = time.monotonic()
        with pytest.raises(StateUnavailable):
            await conn.call(lambda r: r.get("k"))
        # The bound is timeout_s (0.2 s); the margin is for a machine under heavy load.
        assert time.monotonic() - began < 3.0
        assert not conn.up
    finally:
        redis_server.resume()
        await conn.aclose()


async def test_unreachable_from_the_start_is_down_without_a_resync(
        redis_server: RedisServer) -> None:
    redis_server.kill()
    conn = connection(redis_server.url)
    changes: list[bool] = []
    conn.health.on_change(changes.append)
    try:
        assert not await conn.ping()
        assert not conn.up and changes == []  # nothing was shared yet, nothing to resync
    finally:
        await conn.aclose()
