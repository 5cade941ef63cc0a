"""Routing that comes back, end to end on virtual time: the real gateway app (its lifespan and
prober running, defaults everywhere), simulated providers streaming real SSE, and the official
openai SDK as the client, all in one virtual-time event loop (seconds of scenario time cost
no wall time, and every timeout fires exactly when the scenario says). No sleeps, no mocks."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import openai

from tokenlane.config import parse_settings
from tokenlane.providers import build_dialect
from tokenlane.routing.engine import Engine
from tokenlane.server import create_app
from tokenlane.sim import SimProviderSpec, Simulator

from ..virtual import LoopClock, StreamingASGITransport, run_virtual

MESSAGES = [{"role": "user", "content": "Tell me about rivers."}]


@dataclass
class World:
    client: openai.AsyncOpenAI
    sim: Simulator
    engine: Engine
    clock: LoopClock

    async def ask(self, stream: bool = False, **provider: Any
                  ) -> tuple[str, str, float, float]:
        """One request: (deployment that answered, decision header, TTFT, total seconds)."""
        t0 = self.clock.now()
        extra = {"provider": provider} if provider else {}
        if not stream:
            raw = await self.client.chat.completions.with_raw_response.create(
                model="m", messages=MESSAGES, max_tokens=64, extra_body=extra)
            raw.parse()
            done = self.clock.now() - t0
            return raw.headers["x-tokenlane-deployment"], raw.headers["x-tokenlane-route"], \
                done, done
        async with self.client.chat.completions.with_streaming_response.create(
                model="m", messages=MESSAGES, max_tokens=64, stream=True,
                extra_body=extra) as response:
            first = None
            async for chunk in await response.parse():
                if first is None and chunk.choices and chunk.choices[0].delta.content:
                    first = self.clock.now() - t0
            return (response.headers["x-tokenlane-deployment"],
                    response.headers["x-tokenlane-route"], first or 0.0, self.clock.now() - t0)

    async def warm_up(self, names: list[str], rounds: int = 12) -> None:
        """Measure every provider a dozen times (each alone), as a day's traffic would."""
        for _ in range(rounds):
            for name in names:
                await self.ask(order=[name], allow_fallbacks=False)


@asynccontextmanager
async def world(specs: list[SimProviderSpec], policy: str, **routing: Any
                ) -> AsyncIterator[World]:
    clock = LoopClock(asyncio.get_running_loop())
    sim = Simulator(specs, clock=clock)
    config = {
        "server": {"auth": {"enabled": False}},
        "providers": {s.name: {"base_url": f"http://sim/{s.name}/v1"} for s in specs},
        "routing": {"policy": policy, **routing},
        "models": {"m": {"deployments": [
            {"provider": s.name, "model": f"{s.name}-m", "price": {"input": 1, "output": 2}}
            for s in specs]}},
    }
    app = create_app(parse_settings(config), env={}, clock=clock, rng=random.Random(1))
    engine: Engine = app.state.engine
    upstream = StreamingASGITransport(sim.app)
    engine.dialects = {name: build_dialect(p, upstream)
                       for name, p in engine.catalog.providers.items()}
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=StreamingASGITransport(app), base_url="http://gateway") as http:
        client = openai.AsyncOpenAI(base_url="http://gateway/v1", api_key="unused",
                                    http_client=http, max_retries=0)
        yield World(client, sim, engine, clock)


def provider(name: str, ttft: float, tps: float) -> SimProviderSpec:
    return SimProviderSpec(name=name, ttft_s=ttft, tokens_per_s=tps, output_tokens=64,
                           jitter=0.05, seed=len(name))


def test_a_non_stream_request_caught_in_a_trickle_restarts_elsewhere() -> None:
    async def main() -> None:
        specs = [provider("snappy", 0.05, 300), provider("solid", 0.4, 200)]
        async with world(specs, "latency") as w:
            await w.warm_up(["snappy", "solid"])
            w.sim.update("snappy", tokens_per_s=2)  # the best TTFT now trickles
            served, route, _, took = await w.ask()
            assert served == "solid/solid-m"
            assert "note=restarted: snappy/snappy-m decoding at" in route
            # Not the ~32 s the trickle would have taken: about 1 s of it, then solid's 0.7 s.
            assert took < 2.5
            # The abandoned attempt is on snappy's record (as a stall), not forgotten.
            snappy = w.engine.stats.snapshot(["snappy/snappy-m"]).estimates["snappy/snappy-m"]
            assert snappy.error_rate is not None and snappy.error_rate > 0
            served, route, _, _ = await w.ask()  # and the next one avoids it at once
            assert served == "solid/solid-m" and "demoted=snappy/snappy-m trickling" in route

    run_virtual(main())


def test_a_stall_costs_about_two_usual_ttfts_and_the_stalled_provider_comes_back() -> None:
    async def main() -> None:
        specs = [provider("rapid", 0.2, 600), provider("swift", 0.3, 300)]
        async with world(specs, "throughput") as w:
            await w.warm_up(["rapid", "swift"])
            w.sim.update("rapid", fault="stall_before_first_token", stall_s=15)
            served, _, ttft, _ = await w.ask(stream=True)
            # Overdue at 2 x rapid's p90 (~0.42 s): swift raced beside it and answered.
            assert served == "swift/swift-m" and 0.6 < ttft < 1.0
            # Under `throughput`, which ignores TTFT: the stalled deployment is demoted at once.
            served, route, ttft, _ = await w.ask(stream=True)
            assert served == "swift/swift-m" and ttft < 0.5
            assert "demoted=rapid/rapid-m first token overdue" in route
            recovered_at = w.clock.now()
            w.sim.update("rapid", fault=None)
            back_at = None
            for _ in range(40):  # 4 requests a second for 10 s
                served, _, _, _ = await w.ask(stream=True)
                if served == "rapid/rapid-m" and back_at is None:
                    back_at = w.clock.now()
            assert back_at is not None and back_at - recovered_at < 5
            # The probes that timed out during the stall never opened its circuit for long:
            assert w.engine.circuits.state("rapid/rapid-m") == "closed"

    run_virtual(main())


def test_the_ttft_deadline_is_learnt_from_the_providers_own_ttft() -> None:
    async def main() -> None:
        specs = [provider("rapid", 0.2, 600), provider("swift", 0.3, 300)]
        async with world(specs, "throughput", failover={"hedge_overdue": False}) as w:
            await w.warm_up(["rapid", "swift"])
            w.sim.update("rapid", fault="stall_before_first_token", stall_s=60)
            served, _, ttft, _ = await w.ask(stream=True)
            # Given up on after 4 x its TTFT p99 (~0.21 s), floored at 1 s, then swift: not
            # the 30 s default deadline.
            assert served == "swift/swift-m" and 1.2 < ttft < 1.6
            # An explicit deadline still wins.
            served, _, ttft, _ = await w.ask(stream=True, order=["rapid", "swift"],
                                            sort="order", ttft_timeout_s=5)
            assert served == "swift/swift-m" and 5.2 < ttft < 5.6

    run_virtual(main())
