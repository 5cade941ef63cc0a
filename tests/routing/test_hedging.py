"""Hedging, driven on the Engine itself: real simulated providers on loopback, no gateway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from tokenlane.config import parse_settings
from tokenlane.request import chat_request_from_body
from tokenlane.routing.engine import Engine
from tokenlane.routing.hedge import HedgeBudget
from tokenlane.sim import SimProviderSpec, Simulator
from tokenlane.sim.tokens import text_pieces
from tokenlane.stats.observation import Observation

from ..harness import SIM_KEY, gateway_config
from ..loopback import serve

HEDGED = {"policy": "order", "failover": {"hedge": True, "hedge_delay_s": 0.05}}


def spec(name: str, ttft_s: float) -> SimProviderSpec:
    return SimProviderSpec(name=name, ttft_s=ttft_s, tokens_per_s=1000, output_tokens=3,
                           api_key=SIM_KEY)


def ask(model: str = "m") -> Any:
    return chat_request_from_body({"model": model, "messages": [{"role": "user", "content": "hi"}]})


class Recorded:
    def __init__(self) -> None:
        self.observations: list[Observation] = []
        self.hedges: list[str] = []


@asynccontextmanager
async def engine(
    specs: Sequence[SimProviderSpec], models: dict[str, list[str]], budget: HedgeBudget
) -> AsyncIterator[tuple[Engine, Simulator, Recorded]]:
    sim = Simulator(specs)
    seen = Recorded()
    with serve(sim.app) as url:
        catalog = parse_settings(gateway_config(url, models, auth=False, model_extra=HEDGED)
                                 ).resolve({"SIM_KEY": SIM_KEY})
        e = Engine(catalog, hedge_budget=budget, on_observation=seen.observations.append,
                   on_hedge=seen.hedges.append)
        try:
            yield e, sim, seen
        finally:
            await e.aclose()


async def test_a_loser_that_got_its_first_token_in_the_same_pass_is_closed_and_recorded() -> None:
    # Both first tokens are due 0.3 s after the primary started (the hedge goes at 0.05 s).
    async with engine([spec("slow", 0.3), spec("quick", 0.25)], {"m": ["slow", "quick"]},
                      HedgeBudget(1.0)) as (e, sim, seen):
        opening = asyncio.ensure_future(e.open(ask()))
        await sim.await_counters("quick", lambda c: c.requests == 1)  # the hedge started
        # Hold the engine's loop until both replies are wholly on the wire: when it runs
        # again, both attempts find their first token in the same pass.
        sim.wait_counters("slow", lambda c: c.completed == 1)
        sim.wait_counters("quick", lambda c: c.completed == 1)
        stream = await opening
        async for _ in stream:
            pass
        await stream.aclose()
        estimates = e.stats.snapshot(["slow/slow-m", "quick/quick-m"]).estimates
        assert [estimates[d].in_flight for d in ("slow/slow-m", "quick/quick-m")] == [0, 0]
        outcomes = {o.deployment: o.outcome for o in seen.observations}
        winner = stream.deployment.id
        loser = ({"slow/slow-m", "quick/quick-m"} - {winner}).pop()
        assert outcomes == {winner: "ok", loser: "cancelled"}
        assert seen.hedges[0] == "started"


async def test_a_primary_that_answers_before_the_hedge_delay_is_served_whole() -> None:
    async with engine([spec("quick", 0.0), spec("slow", 0.3)], {"m": ["quick", "slow"]},
                      HedgeBudget(1.0)) as (e, sim, seen):
        done = await e.complete(ask())
        assert done.deployment.id == "quick/quick-m" and seen.hedges == []
        assert done.body["choices"][0]["message"]["content"] == "".join(text_pieces("quick", 3))
        assert [o.outcome for o in seen.observations] == ["ok"]
        assert sim.counters("slow").requests == 0


async def test_no_backup_to_start_spends_no_hedge_budget() -> None:
    specs = [spec("slow", 0.2), spec("quick", 0.0)]
    # One token to spend (a small share only trickles in): the first hedge that really
    # starts must still find it.
    async with engine(specs, {"solo": ["slow"], "m": ["slow", "quick"]},
                      HedgeBudget(0.01)) as (e, _, seen):
        alone = await e.complete(ask("solo"))  # slow to its first token, nothing to race
        assert alone.deployment.id == "slow/slow-solo" and seen.hedges == []
        raced = await e.complete(ask("m"))
        assert seen.hedges == ["started", "won"]
        assert raced.deployment.id == "quick/quick-m"
