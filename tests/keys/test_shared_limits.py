"""Three gateway replicas on one real Redis (`state: {backend: redis}`), one virtual key:
its rate limit and its budget hold for the fleet, not per replica; Redis killed mid-traffic
fails no request, and what was spent meanwhile is in the fleet's budget once Redis is back.

The replicas share one `ManualClock` (their clock and their wall clock): nothing refills
because the machine was slow, and the minute passes when the test says.
"""

from __future__ import annotations

import asyncio
import random
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from tokenlane.clock import ManualClock
from tokenlane.config import parse_settings
from tokenlane.server import create_app
from tokenlane.sim import Simulator

from ..harness import MASTER_KEY, SIM_KEY, gateway_config
from ..loopback import serve
from ..redis_server import RedisServer
from .support import HELLO, quick
from .test_budgets import COST

START = 1_800_000_000.0  # 2027-01-15 08:00 UTC
ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server that keeps its data through a kill -9 (AOF, fsync on every write), as a
    production Redis holding budgets would be run."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    (tmp_path / "redis").mkdir()
    server = RedisServer(binary, args=["--appendonly", "yes", "--appendfsync", "always",
                                       "--dir", str(tmp_path / "redis")])
    server.start()
    try:
        yield server
    finally:
        server.kill()


@dataclass
class Fleet:
    sim: Simulator
    urls: list[str]
    clock: ManualClock

    def client(self, replica: int, secret: str) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.urls[replica]}/v1", api_key=secret,
                                  max_retries=0)

    def usage(self, replica: int, key_id: str) -> dict:
        """The key as replica `replica`'s admin API shows it (its numbers are the fleet's)."""
        response = httpx.get(f"{self.urls[replica]}/admin/keys/{key_id}", headers=ADMIN,
                             timeout=30)
        assert response.status_code == 200, response.text
        return response.json()["usage"]

    def resynced(self, replica: int, key_id: str, pushed: float) -> None:
        """Replica `replica` is back on Redis and has pushed `pushed` USD it spent locally.
        Its admin reads try Redis (a few: Redis may still be settling its restart)."""
        for _ in range(10):
            self.usage(replica, key_id)
            shown = self.metrics(replica)
            if (shown["tokenlane_state_backend_up"] == 1.0 and
                    shown["tokenlane_limits_reconciled_usd_total"] == pytest.approx(pushed)):
                return
        raise AssertionError(f"replica {replica} did not resync: {shown}")

    def metrics(self, replica: int) -> dict[str, float]:
        text = httpx.get(f"{self.urls[replica]}/metrics", headers=ADMIN, timeout=30).text
        return {line.split("{")[0].split(" ")[0]: float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith(("tokenlane_limits_", "tokenlane_state_backend_up"))}


@contextmanager
def fleet(redis: RedisServer, data_dir: Path, replicas: int = 3,
          prices: dict[str, tuple[float, float]] | None = None, **key_spec) -> Iterator[
        tuple[Fleet, str, str]]:
    """`replicas` gateways on one Redis, one simulated provider, one key store; and a key
    made with `key_spec` through the first one's admin API before the others start (each
    replica reads the keys at start-up)."""
    clock = ManualClock(START)
    sim = Simulator([quick("a").model_copy(update={"api_key": SIM_KEY})], clock=clock)
    with ExitStack() as stack:
        sim_url = stack.enter_context(serve(sim.app))
        settings = parse_settings(gateway_config(sim_url, {"m": ["a"]}, prices=prices, extra={
            "keys": {"enabled": True, "data_dir": str(data_dir)},
            # A generous bound: on this loaded machine a replica's thread may wait longer
            # than 250 ms for the GIL, and a timeout would (rightly) count locally.
            "state": {"backend": "redis", "url": redis.url, "timeout_s": 5}}))
        env = {"TL_TEST_KEYS": MASTER_KEY, "SIM_KEY": SIM_KEY}

        def start(i: int) -> str:
            app = create_app(settings, env=env, clock=clock, rng=random.Random(i),
                             wall=clock.now)
            return stack.enter_context(serve(app))

        urls = [start(0)]
        created = httpx.post(f"{urls[0]}/admin/keys", json=key_spec, headers=ADMIN, timeout=30)
        assert created.status_code == 201, created.text
        urls += [start(i) for i in range(1, replicas)]
        yield Fleet(sim, urls, clock), created.json()["id"], created.json()["secret"]


async def _burst(f: Fleet, secret: str, per_replica: int) -> list[object]:
    """`per_replica` concurrent requests through every replica at once."""
    async def one(client: openai.AsyncOpenAI) -> object:
        try:
            return await client.chat.completions.with_raw_response.create(
                model="m", messages=HELLO, max_tokens=10)
        except openai.RateLimitError as exc:
            return exc

    clients = [f.client(i, secret) for i in range(len(f.urls))]
    return await asyncio.gather(*(one(c) for _ in range(per_replica) for c in clients))


def _split(results: list[object]) -> tuple[list, list[openai.RateLimitError]]:
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    return [r for r in results if not isinstance(r, openai.RateLimitError)], refused


async def test_a_10_rpm_key_admits_exactly_10_a_minute_across_replicas(
        redis_server: RedisServer, tmp_path: Path) -> None:
    with fleet(redis_server, tmp_path / "data", rpm=10) as (f, _, secret):
        served, refused = _split(await _burst(f, secret, 10))  # 30 at once, 10 per replica
        assert len(served) == 10 and len(refused) == 20
        assert f.sim.counters("a").requests == 10
        remaining = sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in served)
        assert remaining == list(range(10))  # one bucket, whichever replica answered
        for exc in refused:
            assert exc.status_code == 429
            assert exc.body["code"] == "rate_limit_exceeded" and exc.body["type"] == "requests"
            headers = exc.response.headers
            assert headers["x-ratelimit-limit-requests"] == "10"
            assert headers["x-ratelimit-remaining-requests"] == "0"
            assert headers["retry-after"] == "6"  # one request back every 60/10 s
        f.clock.advance(60)  # the next minute: ten more, however many ask
        served, refused = _split(await _burst(f, secret, 10))
        assert len(served) == 10 and len(refused) == 20
        assert f.sim.counters("a").requests == 20


async def test_a_budget_holds_across_replicas(redis_server: RedisServer,
                                              tmp_path: Path) -> None:
    # Output priced, input free: a request's reservation (its 10 output tokens; the prompt
    # bound costs nothing) is then exactly its cost. Room for three requests, not four:
    # whatever order they settle in, a fourth never fits (4 x cost > budget). Three replicas
    # each counting alone would admit three each.
    cost = 10 * 2.0 / 1e6
    budget = 3.5 * cost
    with fleet(redis_server, tmp_path / "data", prices={"a": (0.0, 2.0)},
               budget_usd={"total": budget}) as (f, key_id, secret):
        served, refused = _split(await _burst(f, secret, 10))
        assert len(served) == 3 and f.sim.counters("a").requests == 3
        assert {e.body["code"] for e in refused} == {"budget_exceeded"}
        for replica in range(3):  # each has sent its own settlements
            f.usage(replica, key_id)
        usage = f.usage(0, key_id)
        assert usage["spent_usd"]["total"] == pytest.approx(3 * cost)
        # Float sums in Redis: three reservations added and taken back leave ~1e-20.
        assert usage["reserved_usd"] == pytest.approx(0.0, abs=1e-12)
        assert usage["spent_usd"]["total"] <= budget
        # Now spent: a next request does not fit on any replica.
        for replica in range(3):
            with pytest.raises(openai.RateLimitError) as err:
                await f.client(replica, secret).chat.completions.create(
                    model="m", messages=HELLO, max_tokens=10)
            assert err.value.body["code"] == "budget_exceeded"


async def test_redis_killed_fails_nothing_and_the_spend_is_reconciled(
        durable_redis: RedisServer, tmp_path: Path) -> None:
    with fleet(durable_redis, tmp_path / "data", rpm=1000,
               budget_usd={"total": 100 * COST}) as (f, key_id, secret):
        for _ in range(2):
            await f.client(0, secret).chat.completions.create(model="m", messages=HELLO,
                                                              max_tokens=10)
        assert f.usage(0, key_id)["spent_usd"]["total"] == pytest.approx(2 * COST)
        durable_redis.kill()
        served, refused = _split(await _burst(f, secret, 3))  # every replica, 3 each
        assert len(served) == 9 and not refused  # zero failed requests
        for replica in range(3):
            shown = f.metrics(replica)
            assert shown["tokenlane_state_backend_up"] == 0.0
            assert shown["tokenlane_limits_local_admissions_total"] == 3
        durable_redis.start()
        # Each replica's admin read finds Redis again (as its watcher would within retry_s)
        # and first pushes what it spent alone.
        for replica in range(3):
            f.resynced(replica, key_id, 3 * COST)
        usage = f.usage(0, key_id)
        assert usage["spent_usd"]["total"] == pytest.approx(11 * COST)
        assert usage["reserved_usd"] == 0.0
        served, _ = _split(await _burst(f, secret, 1))  # shared again
        assert all(r.headers["x-ratelimit-limit-requests"] == "1000" for r in served)
