"""The routing benchmark's scenarios and its oracle (pure: no engine, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tokenlane.sim import SimProviderSpec

__all__ = ["ARMS", "POLICIES", "SCENARIOS", "VALUE_OF_TIME", "Change", "Provider", "Scenario",
           "true_scores"]

POLICIES = ("throughput", "latency", "price", "balanced")
BASELINES = ("random", "round-robin", "best-at-start")
ARMS = POLICIES + BASELINES + tuple(f"oracle-{p}" for p in POLICIES)
VALUE_OF_TIME = 10.0  # USD per hour of waiting: the gateway's default, used by `balanced`


@dataclass(frozen=True)
class Provider:
    name: str
    ttft_s: float
    tokens_per_s: float
    price: tuple[float, float]  # USD per 1M input, output tokens


@dataclass(frozen=True)
class Change:
    at: float  # fraction of the run
    provider: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    providers: tuple[Provider, ...]
    changes: tuple[Change, ...] = ()
    # Policies and oracles send provider.require.max_latency, once each provider has been
    # measured (the first len(providers) requests go without: see `cold_slo_check`).
    slo_ttft_s: float | None = None


FOUR = (
    Provider("rapid", 0.40, 900, (0.85, 1.20)),   # fastest decode, dearer
    Provider("swift", 0.15, 400, (0.60, 0.80)),   # first token soonest
    Provider("steady", 0.50, 120, (0.90, 0.90)),
    Provider("budget", 0.90, 45, (0.25, 0.40)),   # cheapest, slowest
)

SCENARIOS = (
    Scenario("steady", "four providers at constant speeds (jitter 10%)", FOUR),
    Scenario("slowdown", "the fastest decoder (rapid, 900 tok/s) drops to 250 tok/s at 40%, "
             "below swift (400)", FOUR, (Change(0.4, "rapid", {"tokens_per_s": 250}),)),
    Scenario("outage", "rapid and swift fail every request (error_rate 1.0) from 25% to 50% "
             "of the run, then recover", FOUR,
             (Change(0.25, "rapid", {"error_rate": 1.0}), Change(0.25, "swift", {"error_rate": 1.0}),
              Change(0.5, "rapid", {"error_rate": 0.0}), Change(0.5, "swift", {"error_rate": 0.0}))),
    Scenario("trickle", "snappy answers first (TTFT 0.08 s) but decodes at 12 tok/s",
             (Provider("snappy", 0.08, 12, (0.50, 0.80)),
              Provider("solid", 0.45, 300, (0.60, 0.90)),
              Provider("budget", 0.90, 45, (0.25, 0.40)))),
    Scenario("slo", "cheap slow economy (TTFT 1.5 s) vs dear fast premium under a 1.0 s TTFT "
             "SLO; at 50% economy's TTFT improves to 0.5 s and it meets the SLO",
             (Provider("economy", 1.5, 35, (0.10, 0.20)),
              Provider("standard", 0.6, 150, (0.60, 1.00)),
              Provider("premium", 0.2, 800, (3.00, 6.00))),
             (Change(0.5, "economy", {"ttft_s": 0.5}),), slo_ttft_s=1.0),
)


def true_scores(specs: dict[str, SimProviderSpec], prices: dict[str, tuple[float, float]],
                objective: str, prompt_tokens: int, output_tokens: int,
                slo: float | None) -> list[str]:
    """Providers best first for `objective`, from the simulator's current truth.

    Failing providers (error_rate >= 0.5) and, under an SLO, those whose true TTFT misses it
    go last (still in the list: the engine may fall back to them).
    """
    def key(name: str) -> tuple[int, float]:
        s = specs[name]
        ttft = s.ttft_s + s.ttft_per_1k_prompt_tokens_s * prompt_tokens / 1000
        duration = ttft + output_tokens / s.tokens_per_s
        p_in, p_out = prices[name]
        cost = (prompt_tokens * p_in + output_tokens * p_out) / 1e6
        score = {
            "throughput": -s.tokens_per_s,
            "latency": ttft,
            "price": cost,
            "balanced": cost + VALUE_OF_TIME / 3600 * duration,
        }[objective]
        unusable = s.error_rate >= 0.5 or (slo is not None and ttft > slo)
        return (1 if unusable else 0, score)

    return sorted(specs, key=key)
