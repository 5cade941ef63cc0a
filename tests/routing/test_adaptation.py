"""How fast routing follows change, with production defaults: the real stats store and
planner, simulated provider speeds (10% jitter), a manual clock, one request per second."""

from __future__ import annotations

import random
from dataclasses import replace

from tokenlane.clock import ManualClock
from tokenlane.request import chat_request_from_body
from tokenlane.routing.planner import PlannerSettings, plan
from tokenlane.stats.observation import Observation
from tokenlane.stats.store import StatsStore
from tokenlane.types import ModelRoute

from .test_planner import deployment


class World:
    """Providers of known speed; every request is served by the planner's first choice."""

    def __init__(self, speeds: dict[str, tuple[float, float, float]], seed: int = 0) -> None:
        self.speeds = dict(speeds)  # name -> (ttft s, decode tokens/s, $ per 1M output)
        self.route = ModelRoute("m", tuple(deployment(n, p, p) for n, (_, _, p) in
                                           speeds.items()),
                                policy="balanced", value_of_time=10.0, expected_output_tokens=100)
        self.clock = ManualClock(start=0)
        self.store = StatsStore(self.clock)
        self.rng = random.Random(seed)
        self.jitter = random.Random(seed + 1)

    def request(self, provider: dict[str, object]) -> tuple[str, float]:
        self.clock.advance(1.0)
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                "provider": provider}
        request = chat_request_from_body(body)
        snapshot = self.store.snapshot(d.id for d in self.route.deployments)
        decision = plan(self.route, request, request.options, snapshot, self.rng,
                        PlannerSettings())
        chosen = decision.plan[0].deployment
        ttft, tps, _ = self.speeds[chosen.provider.name]
        ttft *= 1 + 0.1 * (2 * self.jitter.random() - 1)
        tps *= 1 + 0.1 * (2 * self.jitter.random() - 1)
        self.store.observe(Observation(chosen.id, self.clock.now(), "ok", 10, 100, ttft, tps,
                                       ttft + 100 / tps, 0.0))
        return chosen.provider.name, ttft


FOUR = {"rapid": (0.40, 900.0, 1.2), "swift": (0.15, 400.0, 0.8),
        "steady": (0.50, 120.0, 0.9), "budget": (0.90, 45.0, 0.4)}
THROUGHPUT = {"sort": "throughput"}


def test_steady_speeds_keep_traffic_on_the_best() -> None:
    world = World(FOUR)
    served = [world.request(THROUGHPUT)[0] for _ in range(300)]
    assert served[10:].count("rapid") >= 0.9 * 290  # the rest is bounded exploration


def test_the_fastest_decoder_slowing_below_the_second_loses_its_traffic_quickly() -> None:
    for seed in range(3):
        world = World(FOUR, seed=seed)
        for _ in range(120):
            world.request(THROUGHPUT)
        world.speeds["rapid"] = (0.40, 250.0, 1.2)  # now slower than swift (400)
        after = [world.request(THROUGHPUT)[0] for _ in range(40)]
        assert "swift" in after[:5], after  # three slow answers confirm the shift
        assert after[5:].count("swift") >= 0.9 * 35, after


def test_a_provider_excluded_by_an_slo_wins_its_traffic_back_after_improving() -> None:
    world = World({"economy": (1.5, 35.0, 0.2), "standard": (0.6, 150.0, 1.0),
                   "premium": (0.2, 800.0, 6.0)})
    slo = {"sort": "price", "require": {"max_latency": 1.0}}
    first = [world.request(slo) for _ in range(300)]
    misses = sum(1 for _, ttft in first if ttft > 1.0)
    # Re-measuring the excluded one costs about a request per recheck interval (60 s),
    # never the exploration share of every request.
    assert 1 <= misses <= 300 / 60 + 1
    world.speeds["economy"] = (0.5, 35.0, 0.2)  # now meets the SLO, and is the cheapest
    after = [world.request(slo)[0] for _ in range(200)]
    moved = next(i for i in range(len(after)) if after[i:i + 20].count("economy") >= 16)
    assert moved <= 120, after  # within a recheck interval and an exploration draw or two


def test_one_slow_answer_is_confirmed_or_dismissed_by_the_next_one() -> None:
    """A one-off slow answer from the best deployment: the next request re-checks it (as
    `confirm`), and its normal speed puts all traffic back at once."""
    world = World({"rapid": (0.40, 900.0, 1.2), "swift": (0.15, 400.0, 0.8)})
    world.route = replace(world.route, policy="throughput")
    for _ in range(30):
        world.request({})
    world.speeds["rapid"] = (0.40, 350.0, 1.2)  # one slow answer (slower, not a trickle)
    assert world.request({})[0] == "rapid"
    world.speeds["rapid"] = (0.40, 900.0, 1.2)  # a hiccup: back to normal
    assert world.request({})[0] == "rapid"
    assert [world.request({})[0] for _ in range(20)].count("rapid") >= 19
