"""Two gateway replicas on one real Redis, each with its own key store (its own data_dir, as
on two machines): a key made through A's admin API works on B, its rotation and revocation
are in force on B within a bounded wait, and a replica started afterwards catches up from
Redis's copy. What travels holds the hash of the secret, never the secret.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import openai

from tokenlane.config import parse_settings
from tokenlane.server import create_app
from tokenlane.sim import Simulator

from ..harness import MASTER_KEY, SIM_KEY, gateway_config
from ..loopback import serve
from ..redis_server import RedisServer
from .support import HELLO, quick

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
ENV = {"TL_TEST_KEYS": MASTER_KEY, "SIM_KEY": SIM_KEY}
DEADLINE_S = 20.0  # generous: the machine is loaded; a replica normally takes milliseconds
POLL_S = 0.02  # between two tries while waiting for a replica to take a change


@contextmanager
def replicas(redis: RedisServer, tmp_path: Path) -> Iterator[tuple[Simulator, str, ExitStack]]:
    """A simulated provider, and a way to start replicas on `redis` (each its own store)."""
    sim = Simulator([quick("a").model_copy(update={"api_key": SIM_KEY})])
    with ExitStack() as stack:
        yield sim, stack.enter_context(serve(sim.app)), stack


def start(stack: ExitStack, sim_url: str, redis: RedisServer, data_dir: Path, seed: int,
          timeout_s: float = 5) -> str:
    settings = parse_settings(gateway_config(sim_url, {"m": ["a"]}, extra={
        "keys": {"enabled": True, "data_dir": str(data_dir)},
        "state": {"backend": "redis", "url": redis.url, "timeout_s": timeout_s}}))
    app = create_app(settings, env=ENV, rng=random.Random(seed))
    return stack.enter_context(serve(app))


async def answer(url: str, secret: str) -> str:
    """"ok", "revoked" (401 saying so), "unknown" (401: not a key this replica knows)."""
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=secret, max_retries=0,
                                  timeout=30) as client:
        try:
            await client.chat.completions.create(model="m", messages=HELLO, max_tokens=5)
        except openai.AuthenticationError as exc:
            return "revoked" if "revoked" in exc.body["message"] else "unknown"
    return "ok"


async def until(url: str, secret: str, want: str) -> float:
    """Seconds until `url` answers `want` with `secret`; fails past DEADLINE_S."""
    began = time.monotonic()
    seen = []
    while time.monotonic() - began < DEADLINE_S:
        got = await answer(url, secret)
        if got == want:
            return time.monotonic() - began
        seen.append(got)
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"{url} never answered {want!r} (saw {sorted(set(seen))})")


def admin(url: str, method: str, path: str, **kwargs: object) -> dict:
    response = httpx.request(method, f"{url}/admin{path}", headers=ADMIN, timeout=30,
                             **kwargs)  # type: ignore[arg-type]
    assert response.status_code in (200, 201), response.text
    return response.json()


async def test_a_key_made_rotated_and_revoked_on_a_is_in_force_on_b(
        redis_server: RedisServer, tmp_path: Path) -> None:
    with replicas(redis_server, tmp_path) as (sim, sim_url, stack):
        a = start(stack, sim_url, redis_server, tmp_path / "a", 0)
        b = start(stack, sim_url, redis_server, tmp_path / "b", 1)
        created = admin(a, "POST", "/keys", json={"name": "team"})
        key_id, first = created["id"], created["secret"]
        await until(b, first, "ok")  # never in B's own store: it came through Redis
        assert admin(b, "GET", f"/keys/{key_id}")["name"] == "team"

        second = admin(a, "POST", f"/keys/{key_id}/rotate")["secret"]
        await until(b, second, "ok")
        assert await answer(b, first) == "unknown"  # the old secret is no key of B's now

        admin(a, "POST", f"/keys/{key_id}/revoke")
        took = await until(b, second, "revoked")
        print(f"revocation on A refused on B after {took * 1000:.0f} ms")
        assert await answer(a, second) == "revoked"

        # A replica started now (empty store of its own) reconciles from Redis's copy.
        c = start(stack, sim_url, redis_server, tmp_path / "c", 2)
        await until(c, second, "revoked")
        assert admin(c, "GET", f"/keys/{key_id}")["revoked_at"] is not None

        # The fleet's copy holds the hash, never a secret.
        stored = redis_server.client().hgetall("tokenlane:keys:records")
        assert len(stored) == 1
        assert not any(s.encode() in v for v in stored.values() for s in (first, second))
    assert sim.counters("a").requests >= 2


async def test_a_key_revoked_while_redis_was_away_is_revoked_everywhere_once_it_is_back(
        redis_server: RedisServer, tmp_path: Path) -> None:
    with replicas(redis_server, tmp_path) as (_, sim_url, stack):
        a = start(stack, sim_url, redis_server, tmp_path / "a", 0, timeout_s=0.5)
        b = start(stack, sim_url, redis_server, tmp_path / "b", 1, timeout_s=0.5)
        created = admin(a, "POST", "/keys", json={})
        await until(b, created["secret"], "ok")
        redis_server.kill()
        admin(a, "POST", f"/keys/{created['id']}/revoke")  # Redis away: A alone knows
        assert await answer(a, created["secret"]) == "revoked"
        # Back, empty (it kept nothing): each replica reconciles, the revocation wins.
        redis_server.start()
        await until(b, created["secret"], "revoked")
        stored = redis_server.client().hgetall("tokenlane:keys:records")
        assert set(stored) == {created["id"].encode()}
