"""Active probes: the recheck schedule, sent as tiny measured requests to a real simulator
over loopback, on a lockstep manual clock (no sleeps; simulated seconds cost no wall time)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from tokenlane.clock import ManualClock
from tokenlane.config import parse_settings
from tokenlane.routing.build import build_engine
from tokenlane.routing.engine import Engine
from tokenlane.routing.probes import Prober, ProbeSettings
from tokenlane.sim import SimProviderSpec, Simulator
from tokenlane.stats.observation import Observation

from ..harness import SIM_KEY, gateway_config
from ..loopback import serve

A, B = "a/a-m", "b/b-m"


@dataclass
class Probing:
    engine: Engine
    prober: Prober
    sim: Simulator
    clock: ManualClock

    async def round(self) -> list[str]:
        """One prober round, waited to its end: the deployments it probed."""
        due = [d for _, d in self.prober.due()]
        started = await self.prober.run_once()
        await self.prober.wait_idle()
        return due[:started]

    def estimate(self, deployment: str):
        return self.engine.stats.snapshot([deployment], self.engine.circuits.state
                                          ).estimates[deployment]


@asynccontextmanager
async def probing(spend_cap: float = 1.0, **routing: object) -> AsyncIterator[Probing]:
    clock = ManualClock(lockstep=True)
    specs = [SimProviderSpec(name=n, ttft_s=0.1, tokens_per_s=100, api_key=SIM_KEY)
             for n in ("a", "b")]
    sim = Simulator(specs, clock=clock)
    with serve(sim.app) as url:
        settings = parse_settings(gateway_config(url, {"m": ["a", "b"]}, auth=False,
                                                 extra={"routing": routing}))
        engine = build_engine(settings, settings.resolve({"SIM_KEY": SIM_KEY}), clock=clock)
        prober = Prober(engine, ProbeSettings(max_tokens=16, spend_cap_usd_per_day=spend_cap))
        try:
            yield Probing(engine, prober, sim, clock)
        finally:
            await engine.aclose()


def slowdown(p: Probing, deployment: str, usual: float, now: float) -> None:
    """A long healthy history at `usual` tok/s, then a confirmed drop to `now` tok/s."""
    for speed in [usual] * 30 + [now] * 3:
        p.clock.advance(1)
        p.engine.stats.observe(Observation(deployment, p.clock.now(), "ok", 20, 16, 0.1,
                                           speed, 0.1 + 15 / speed, 0.0))


async def test_every_deployment_is_probed_once_then_when_its_numbers_age() -> None:
    async with probing() as p:
        assert await p.round() == [A, B]  # never measured: at once
        assert p.estimate(A).samples == 1 and p.sim.counters("a").requests == 1
        assert await p.round() == []  # fresh, healthy: nothing due
        p.clock.advance(59)
        assert await p.round() == []
        p.clock.advance(1)  # rechecks.idle_s
        assert await p.round() == [A, B]


async def test_a_slowed_deployment_is_rechecked_on_a_backing_off_schedule_and_found_again(
) -> None:
    async with probing() as p:
        await p.round()
        slowdown(p, A, usual=1000, now=100)
        p.sim.update("a", tokens_per_s=100)
        e = p.estimate(A)
        assert e.decode_tps_p50 == pytest.approx(100, rel=0.01)
        assert e.decode_tps_healthy == pytest.approx(1000, rel=0.01)  # what it can win back
        sent = [p.clock.now()]  # the slowdown's last measurement
        for _ in range(4):  # still slow after every recheck
            while True:
                at = p.clock.now()
                if await p.round() == [A]:
                    sent.append(at)
                    break
                p.clock.advance(0.25)
                assert at - sent[-1] < 10
        gaps = [b - a for a, b in itertools.pairwise(sent)]
        # first_s, then doubled to the cap, send to send (to the 0.25 s the test steps by).
        assert gaps == pytest.approx([1.0, 2.0, 2.0, 2.0], abs=0.05)
        p.sim.update("a", tokens_per_s=1000)  # recovered
        p.clock.advance(2)
        assert await p.round() == [A]
        assert p.estimate(A).getting_better  # good news, not yet confirmed
        p.clock.advance(1)
        assert await p.round() == [A]  # a return to its usual level: two samples confirm
        e = p.estimate(A)
        assert e.decode_tps_p50 == pytest.approx(1000, rel=0.15) and not e.below_usual
        p.clock.advance(2)
        assert await p.round() == []  # healthy again: back to the idle schedule
        assert p.engine.rechecks.interval(A) is None  # the next slowdown starts at first_s


async def test_a_probe_closes_an_open_circuit_without_waiting_for_the_cool_down() -> None:
    async with probing(circuit={"consecutive_failures": 1, "open_s": 8}) as p:
        await p.round()
        p.sim.update("a", error_rate=1.0)
        p.clock.advance(60)
        assert await p.round() == [A, B]
        # (b's probe in the same round moved the clock a little)
        assert p.estimate(A).circuit == "open"
        assert p.engine.circuits.retry_in(A) == pytest.approx(8, abs=0.5)
        p.clock.advance(1)
        assert await p.round() == [A]  # rechecked while open: still failing
        assert p.engine.circuits.retry_in(A) == pytest.approx(16)  # users' cool-down backs off
        p.sim.update("a", error_rate=0.0)
        p.clock.advance(2)
        assert await p.round() == [A]
        assert p.estimate(A).circuit == "closed"  # 3 s after the recovery, not 16


async def test_probes_stop_at_the_spend_cap_and_leave_rate_limited_deployments_alone() -> None:
    # Probes cost ~$0.00005 (a: $1/$2 per 1M) and ~$0.00002 (b: half that): one round > cap.
    async with probing(spend_cap=0.00006) as p:
        assert await p.round() == [A, B]
        assert p.prober.spent_today() > 0.00006
        p.clock.advance(60)
        assert [d for _, d in p.prober.due()] == [A, B]
        assert await p.prober.run_once() == 0  # cap reached: no spending until it rolls over
        p.clock.advance(86_401)
        p.engine.circuits.record(B, "429", retry_after=1e6)  # b asked us to stay away
        assert await p.round() == [A]
        assert p.sim.counters("a").requests == 2 and p.sim.counters("b").requests == 1
