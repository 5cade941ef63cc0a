"""One construction path for the engine: the gateway's `create_app` and the in-process `Router`
both build theirs here, so a library user routes exactly as the server would.

What is built from `settings.routing`: the stats store (half-life, staleness), the circuit
board, the hedge budget, health gates, the recheck schedule and the planner's exploration
share. Observers (metrics, a user's
callback) are passed in: nothing here is global.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from ..clock import Clock, MonotonicClock
from ..config import Settings
from ..stats.observation import Observation
from ..stats.store import StatsSettings, StatsStore
from ..types import Catalog
from .attempt_trace import AttemptTracer
from .circuit import CircuitBoard, CircuitSettings
from .engine import Engine
from .health import HealthSettings
from .hedge import HedgeBudget
from .planner import PlannerSettings
from .probes import Prober, ProbeSettings
from .rechecks import RecheckSchedule, RecheckSettings

__all__ = ["build_engine", "build_prober"]


def build_engine(
    settings: Settings,
    catalog: Catalog,
    *,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    on_observation: Callable[[Observation], None] | None = None,
    on_overhead: Callable[[float], None] | None = None,
    on_hedge: Callable[[str], None] | None = None,
    on_refusal: Callable[[str, str], None] | None = None,
    tracer: AttemptTracer | None = None,
) -> Engine:
    """Build the routing engine for `catalog` (from `settings.resolve(env)`) as configured by
    `settings.routing`.

    `clock` and `rng` default to real time and a fresh `random.Random()`; tests inject both.
    The callbacks run on the engine's event loop for every finished attempt (`on_observation`),
    every request's routing overhead in seconds (`on_overhead`) and every hedge event
    (`on_hedge`: "started" or "won") and every provider refusal (`on_refusal(deployment,
    kind)`: a retired model, an unsupported parameter); keep them quick and non-blocking.
    `tracer` is told of each attempt's start, first token and end (tokenlane.telemetry).
    """
    clock = clock or MonotonicClock()
    r = settings.routing
    return Engine(
        catalog,
        clock=clock,
        stats=StatsStore(clock, StatsSettings(half_life_s=r.half_life_s,
                                              stale_after_s=r.stale_after_s,
                                              bad_news_hold_s=r.bad_news_hold_s,
                                              healthy_memory_s=r.health.healthy_memory_s)),
        planner=PlannerSettings(exploration_share=r.exploration_share,
                                recheck_after_s=r.recheck_after_s),
        circuits=CircuitBoard(clock, CircuitSettings(**r.circuit.model_dump())),
        hedge_budget=HedgeBudget(r.hedge_budget),
        health=HealthSettings(overdue_factor=r.health.overdue_factor,
                              trickle_factor=r.health.trickle_factor,
                              timeout_p99_multiple=r.health.ttft_timeout_p99_multiple,
                              timeout_min_s=r.health.min_ttft_timeout_s),
        rechecks=RecheckSchedule(RecheckSettings(**r.rechecks.model_dump())),
        rng=rng or random.Random(),
        on_observation=on_observation,
        on_overhead=on_overhead,
        on_hedge=on_hedge,
        on_refusal=on_refusal,
        tracer=tracer,
    )


def build_prober(settings: Settings, engine: Engine) -> Prober:
    """The active prober configured by `settings.routing.probes` (run it only when
    `prober.settings.enabled`)."""
    return Prober(engine, ProbeSettings(**settings.routing.probes.model_dump()))
