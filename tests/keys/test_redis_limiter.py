"""`RedisLimiter` against a real redis-server: two limiters on one Redis are two replicas.

Time is a `ManualClock` shared by the replicas (their wall clock and their monotonic one), so
refills, leases and retries happen when the test says, never because the machine was slow.
"""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from tokenlane.clock import ManualClock
from tokenlane.config import StateSettings
from tokenlane.keys import BudgetExceeded, KeySpec, RateLimitExceeded, VirtualKey
from tokenlane.keys.budgets import PeriodStarts
from tokenlane.keys.limiter import LocalLimiter
from tokenlane.keys.redis_layout import KeyLayout, period_ttls, settle_args
from tokenlane.keys.redis_limiter import RedisLimiter
from tokenlane.keys.redis_lua import SETTLE
from tokenlane.state.redis_conn import RedisConnection

from ..redis_server import RedisServer

START = 1_800_000_000.0  # 2027-01-15 08:00 UTC
period_starts = PeriodStarts()


def _key(key_id: str = "k1", **spec) -> VirtualKey:
    return VirtualKey(key_id, "hash", "tl-…", KeySpec(**spec), START)


async def _replica(server: RedisServer, clock: ManualClock, *, timeout_s: float = 5.0,
                   **kwargs) -> RedisLimiter:
    """A replica's limiter on its own connection, which has found Redis (as at start-up).
    A generous bound by default: on a loaded machine a call may take longer than 250 ms, and
    a timeout would (rightly) make the replica count locally."""
    settings = StateSettings(backend="redis", url=server.url, timeout_s=timeout_s)
    conn = RedisConnection(settings, clock, {})
    assert await conn.ping()
    return RedisLimiter(conn, clock=clock, wall=clock.now, **kwargs)


async def _try(limiter, key: VirtualKey, cost: float = 0.0, tokens: int = 1):
    try:
        return await limiter.admit(key, cost, tokens)
    except (RateLimitExceeded, BudgetExceeded) as exc:
        return exc


async def test_rpm_is_exact_across_replicas_under_concurrency(redis_server) -> None:
    clock = ManualClock(START)
    a, b, c = [await _replica(redis_server, clock) for _ in range(3)]
    key = _key(rpm=10)
    results = await asyncio.gather(*(_try(r, key) for _ in range(10) for r in (a, b, c)))
    admitted = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, RateLimitExceeded)]
    assert len(admitted) == 10 and len(refused) == 20
    assert all(x.reservation for x in admitted)  # every one counted in Redis
    remaining = sorted(int(dict(x.headers)[b"x-ratelimit-remaining-requests"]) for x in admitted)
    assert remaining == list(range(10))
    headers = refused[0].headers()
    assert headers["x-ratelimit-limit-requests"] == "10"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["retry-after"] == "6"  # one request back every 60/10 s
    clock.advance(6)
    again = await asyncio.gather(*(_try(r, key) for r in (a, b, c, a)))
    assert sum(not isinstance(r, Exception) for r in again) == 1
    clock.advance(60)  # a minute later: ten more, no more
    later = await asyncio.gather(*(_try(r, key) for _ in range(5) for r in (a, b, c)))
    assert sum(not isinstance(r, Exception) for r in later) == 10


async def test_same_answers_as_the_local_limiter(redis_server) -> None:
    """One scripted sequence of admissions and settlements through the in-process limiter
    and through Redis: the same admitted / refused, the same headers and messages."""
    local_clock, shared_clock = ManualClock(START), ManualClock(START)
    local = LocalLimiter(local_clock, local_clock.now)
    shared = await _replica(redis_server, shared_clock)
    keys = [_key("rpm", rpm=4), _key("tpm", tpm=300), _key("both", rpm=3, tpm=200),
            _key("usd", budget_usd={"day": 0.01, "total": 0.02})]
    for limiter, spent in ((local, {"total": 0.004}), (shared, {"total": 0.004})):
        limiter.load("usd", spent)
    rng = random.Random(3)
    open_: dict[str, list] = {"local": [], "shared": []}
    for step in range(120):
        key = rng.choice(keys)
        cost, tokens = rng.choice((0.001, 0.002, 0.004)), rng.randint(10, 120)
        got = []
        for name, limiter in (("local", local), ("shared", shared)):
            result = await _try(limiter, key, cost, tokens)
            if isinstance(result, Exception):
                got.append((type(result).__name__, result.message, result.headers()))
            else:
                open_[name].append(result)
                got.append(("ok", result.cost, result.tokens, result.headers))
        assert got[0] == got[1], step
        if rng.random() < 0.5 and open_["local"]:  # settle the oldest, at a real cost
            i = 0
            used_cost, used = rng.choice((0.0, 0.001, 0.003)), rng.randint(0, 150)
            local.settle(open_["local"].pop(i), used_cost, used)
            shared.settle(open_["shared"].pop(i), used_cost, used)
            await shared.usage("usd")  # the settlement has been sent
        step_s = rng.choice((0.0, 0.5, 3.0))
        local_clock.advance(step_s)
        shared_clock.advance(step_s)
    for key in keys:
        (ls, lr), (ss, sr) = await local.usage(key.id), await shared.usage(key.id)
        assert ss == pytest.approx(ls) and sr == pytest.approx(lr)


async def test_budgets_hold_across_replicas(redis_server) -> None:
    clock = ManualClock(START)
    a, b = await _replica(redis_server, clock), await _replica(redis_server, clock)
    key = _key(budget_usd={"total": 1.0})
    first = await a.admit(key, 0.4, 1)
    second = await b.admit(key, 0.4, 1)
    assert isinstance(await _try(a, key, 0.4), BudgetExceeded)  # 0.8 held: 0.4 more is over
    a.settle(first, 0.1, 1)
    spent, reserved = await a.usage(key.id)
    assert spent["total"] == pytest.approx(0.1) and reserved == pytest.approx(0.4)
    assert (await b.usage(key.id))[0]["total"] == pytest.approx(0.1)
    third = await b.admit(key, 0.4, 1)  # 0.1 + 0.4 + 0.4 fits
    refused = await _try(a, key, 0.2)
    assert isinstance(refused, BudgetExceeded)
    assert "$0.100000 spent and $0.800000 reserved" in refused.message
    b.settle(second, 0.4, 1)
    b.settle(third, 0.4, 1)
    await b.usage(key.id)  # b's settlements sent
    assert (await a.usage(key.id)) == ({"day": pytest.approx(0.9), "month": pytest.approx(0.9),
                                        "total": pytest.approx(0.9)}, 0.0)


async def test_a_crashed_replicas_reservation_lapses(redis_server) -> None:
    clock = ManualClock(START)
    crashed = await _replica(redis_server, clock, lease_s=60)
    alive = await _replica(redis_server, clock, lease_s=60)
    key = _key(budget_usd={"total": 1.0})
    held = await crashed.admit(key, 0.9, 1)  # and the replica is never heard of again
    assert isinstance(await _try(alive, key, 0.5), BudgetExceeded)
    clock.advance(61)
    assert (await alive.usage(key.id))[1] == 0.0
    late = await alive.admit(key, 0.5, 1)
    crashed.settle(held, 0.3, 1)  # a request that outlived its lease still has its spend counted
    alive.settle(late, 0.5, 1)
    await crashed.usage(key.id)
    assert (await alive.usage(key.id))[0]["total"] == pytest.approx(0.8)
    assert (await crashed.usage(key.id))[0]["total"] == pytest.approx(0.8)


async def test_redis_killed_goes_local_and_reconciles_when_back(redis_server, caplog) -> None:
    clock = ManualClock(START)
    a, b = await _replica(redis_server, clock), await _replica(redis_server, clock)
    key = _key(rpm=100, budget_usd={"total": 1.0})
    before = await a.admit(key, 0.1, 1)
    a.settle(before, 0.1, 1)
    assert (await a.usage(key.id))[0]["total"] == pytest.approx(0.1)
    in_flight = await a.admit(key, 0.1, 1)  # admitted by Redis, ends during the outage
    caplog.set_level(logging.INFO)
    redis_server.kill()  # and with it everything Redis held (no persistence)
    local = [await a.admit(key, 0.05, 1) for _ in range(4)]
    assert all(x.reservation is None for x in local)  # counted here, not in Redis
    assert a.health.local_admissions == 4
    assert len([r for r in caplog.records if "unreachable" in r.message]) == 1
    for x in local:
        a.settle(x, 0.05, 1)
    a.settle(in_flight, 0.1, 1)
    # Local counting started from the fleet's spend as last seen: 0.1, and 0.3 since.
    assert (await a.usage(key.id))[0]["total"] == pytest.approx(0.4)
    assert isinstance(await _try(a, key, 0.7), BudgetExceeded)  # the budget holds locally
    redis_server.start()  # empty
    spent, reserved = await a.usage(key.id)  # an admin read tries Redis: back, resynced
    assert a._redis.up
    # The spend key Redis lost starts again from what `a` last saw (0.1), plus what it
    # settled and spent while Redis was away.
    assert spent["total"] == pytest.approx(0.4) and reserved == 0.0
    assert a.health.reconciled_usd == pytest.approx(0.2)
    assert (await _view(b, key))[0]["total"] == pytest.approx(0.4)
    assert isinstance(await _try(b, key, 0.7), BudgetExceeded)  # and holds for the fleet


async def test_stuck_redis_is_bounded_and_spend_pushed_when_back(redis_server) -> None:
    clock = ManualClock(START)
    a = await _replica(redis_server, clock, timeout_s=0.25)  # the default bound
    b = await _replica(redis_server, clock)
    key = _key(budget_usd={"total": 1.0})
    redis_server.pause()  # connections open, nothing answers
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        admission = await a.admit(key, 0.6, 1)
        assert loop.time() - started < 2.0  # the 0.25 s bound, with room for a loaded machine
        assert admission.reservation is None and not a._redis.up
        started = loop.time()
        assert (await a.admit(key, 0.1, 1)).reservation is None
        assert loop.time() - started < 0.25  # while down, nobody waits out a timeout
    finally:
        redis_server.resume()
    a.settle(admission, 0.2, 1)  # the local admissions' spend waits to be pushed
    assert (await _view(a, key, tries=10)) == (
        {"day": pytest.approx(0.2), "month": pytest.approx(0.2), "total": pytest.approx(0.2)},
        0.0)
    assert not a._unsent
    assert (await _view(b, key))[0]["total"] == pytest.approx(0.2)


async def test_a_retried_settlement_is_counted_once(redis_server) -> None:
    """A settlement whose answer was lost in a timeout is sent again: the reservation it
    removed tells Redis it landed the first time."""
    clock = ManualClock(START)
    a = await _replica(redis_server, clock)
    key = _key(budget_usd={"total": 1.0})
    admission = await a.admit(key, 0.4, 1)
    starts = period_starts(START)
    keys = KeyLayout(a._redis.key("limits", "{k1}")).limit_keys(starts)
    settle = a._redis.client.register_script(SETTLE)
    seeds, ttls = ["0", "0", "0"], period_ttls(starts, START)
    first = settle_args(admission.reservation, 0.3, 1, START, seeds, ttls, fresh=True)
    retry = settle_args(admission.reservation, 0.3, 1, START, seeds, ttls, fresh=False)
    assert await settle(keys=keys, args=first) == 1
    assert await settle(keys=keys, args=retry) == 0
    assert (await a.usage(key.id)) == ({"day": pytest.approx(0.3), "month": pytest.approx(0.3),
                                        "total": pytest.approx(0.3)}, 0.0)
    # A fresh settlement of a reservation Redis never knew (lost with its data) still counts.
    assert await settle(keys=keys, args=first) == 1
    assert (await a.usage(key.id))[0]["total"] == pytest.approx(0.6)


async def _view(limiter: RedisLimiter, key: VirtualKey, tries: int = 2):
    """The fleet's numbers through `limiter`. Its pooled connection may have died with
    Redis: then its first call fails (it goes local) and the second, after its watcher's
    PING, reads Redis. (More tries for a short bound on a loaded machine.)"""
    for _ in range(tries):
        usage = await limiter.usage(key.id)
        if limiter._redis.up:
            return usage
    raise AssertionError("Redis did not answer")


async def test_more_concurrent_admissions_than_pooled_connections_all_go_to_redis(
        redis_server) -> None:
    """A burst wider than the connection pool waits for a connection; it does not take the
    backend down (redis-py's default pool refuses the 101st at once)."""
    clock = ManualClock(START)
    a = await _replica(redis_server, clock)
    key = _key(rpm=250)
    results = await asyncio.gather(*(_try(a, key) for _ in range(300)))
    admitted = [r for r in results if not isinstance(r, Exception)]
    assert a._redis.up and a.health.local_admissions == 0
    assert len(admitted) == 250 and all(x.reservation for x in admitted)


async def test_scripts_forgotten_by_redis_are_loaded_again(redis_server) -> None:
    clock = ManualClock(START)
    a = await _replica(redis_server, clock)
    key = _key(rpm=5)
    assert (await a.admit(key, 0.0, 1)).reservation
    redis_server.client().script_flush()  # as a restarted Redis has
    burst = await asyncio.gather(*(a.admit(key, 0.0, 1) for _ in range(4)))  # one pipeline
    assert all(x.reservation for x in burst) and a._redis.up
    assert isinstance(await _try(a, key), RateLimitExceeded)


async def test_a_second_outage_counts_on_from_what_the_first_pushed(redis_server) -> None:
    clock = ManualClock(START)
    a = await _replica(redis_server, clock, timeout_s=0.25)
    key = _key(budget_usd={"total": 1.0})
    a.settle(await a.admit(key, 0.1, 1), 0.1, 1)  # seen through Redis: 0.1 spent
    for outage in range(2):
        redis_server.pause()
        try:
            local = await a.admit(key, 0.3, 1)
            assert local.reservation is None
        finally:
            redis_server.resume()
        a.settle(local, 0.3, 1)
        assert (await _view(a, key, tries=10))[0]["total"] == pytest.approx(0.4 + 0.3 * outage)
    # 0.1 + 0.3 + 0.3: the second outage started from 0.4, so 0.3 more does not fit locally.
    redis_server.pause()
    try:
        assert isinstance(await _try(a, key, 0.4), BudgetExceeded)
    finally:
        redis_server.resume()
