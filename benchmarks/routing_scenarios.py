"""The routing benchmark's scenarios and its oracle (pure: no engine, no I/O).

A scenario is four providers with known true speeds and a timeline of changes at fixed
scenario seconds (`Simulator.update`), the same for every arm. Each timeline has a full
length (minutes: long enough that history matters) and a compressed `--smoke` length.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from tokenlane.sim import SimProviderSpec

__all__ = ["ALL_POLICIES", "POLICIES", "SCENARIOS", "Change", "Phase", "Provider", "Scenario",
           "oracle_order", "usable"]

POLICIES = ("throughput", "latency", "price", "balanced")
ALL_POLICIES = POLICIES + ("weighted",)

STALL_S = 15.0
TRICKLE_TPS = 10.0  # decoding slower than this is a health failure, whatever the objective


@dataclass(frozen=True)
class Provider:
    name: str
    ttft_s: float
    tokens_per_s: float
    price: tuple[float, float]  # USD per 1M input, output tokens


@dataclass(frozen=True)
class Change:
    provider: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class Phase:
    """A stretch of the timeline: its changes apply at its start, then it lasts its length.

    `kind` names what the phase start is for the provider it changes: "degrade" (report how
    fast routing leaves) or "recover" (report how fast it returns)."""

    full_s: float
    smoke_s: float
    changes: tuple[Change, ...] = ()
    kind: str = ""


@dataclass(frozen=True)
class Scenario:
    name: str
    row: str  # which case of the table it reproduces
    description: str
    phases: tuple[Phase, ...]
    policies: tuple[str, ...] = POLICIES
    stream: bool = True
    # Sent by the policy arms in `provider`: {"require": {"max_latency": s}} or
    # {"preferred_max_latency": s}. The oracle ranks SLO-missing providers last.
    slo: dict[str, Any] | None = None
    slo_ttft_s: float | None = None
    providers: tuple[Provider, ...] = field(default=())

    def duration(self, smoke: bool) -> float:
        return sum(p.smoke_s if smoke else p.full_s for p in self.phases)

    def timeline(self, smoke: bool) -> list[tuple[float, Phase]]:
        """(scenario second, phase) for every phase, in order."""
        out, at = [], 0.0
        for phase in self.phases:
            out.append((at, phase))
            at += phase.smoke_s if smoke else phase.full_s
        return out


# Each policy has a clear best at steady state (about 500 prompt and 160 output tokens, $10/h
# of waiting): throughput → rapid, latency → swift, price → budget, balanced → swift
# (rapid is as quick overall but dear; steady and budget are slow).
FOUR = (
    Provider("rapid", 0.40, 600, (3.00, 6.00)),   # fastest decode, dearest
    Provider("swift", 0.15, 300, (0.60, 0.80)),   # first token soonest
    Provider("steady", 0.50, 150, (0.40, 0.50)),
    Provider("budget", 0.90, 60, (0.10, 0.20)),   # cheapest, slowest
)
BEST = {"throughput": "rapid", "latency": "swift", "price": "budget", "balanced": "swift",
        "weighted": "rapid"}


def _dip(name: str, row: str, description: str, provider: str, bad: dict[str, Any],
         good: dict[str, Any], before: tuple[float, float], during: tuple[float, float],
         after: tuple[float, float], **kwargs: Any) -> Scenario:
    return Scenario(name, row, description, (
        Phase(*before),
        Phase(*during, (Change(provider, bad),), "degrade"),
        Phase(*after, (Change(provider, good),), "recover"),
    ), providers=FOUR, **kwargs)


_STALL = {"fault": "stall_before_first_token", "stall_s": STALL_S}
_HEALTHY = {"fault": None}

SLO_TTFT_S = 1.2

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("steady", "steady speeds", "four providers at constant speeds (jitter 10%): "
             "what exploring costs", (Phase(180, 30),), providers=FOUR),
    _dip("decode_dip", "600→120 tok/s for 30 s", "rapid (fastest decoder) slows from 600 to "
         "120 tok/s for 30 s, then recovers", "rapid", {"tokens_per_s": 120},
         {"tokens_per_s": 600}, (90, 12), (30, 10), (90, 18)),
    _dip("decode_dip_long", "same, long history", "rapid decodes at 120 tok/s for 3 minutes "
         "after 2 healthy minutes, then recovers", "rapid", {"tokens_per_s": 120},
         {"tokens_per_s": 600}, (120, 10), (180, 15), (60, 15)),
    _dip("errors", "503 for 20 s", "rapid answers 503 to every request for 20 s, then "
         "recovers", "rapid", {"error_rate": 1.0}, {"error_rate": 0.0},
         (90, 12), (20, 8), (90, 20)),
    _dip("ttft_dip", "TTFT degrade", "swift (best TTFT) takes 1.5 s to its first token instead "
         "of 0.15 s for 30 s, then recovers", "swift", {"ttft_s": 1.5}, {"ttft_s": 0.15},
         (90, 12), (30, 10), (90, 18)),
    _dip("trickle", "2 tok/s for 30 s", "swift (best TTFT) decodes at 2 tok/s for 30 s, then "
         "recovers", "swift", {"tokens_per_s": 2}, {"tokens_per_s": 300},
         (90, 12), (30, 10), (90, 18)),
    _dip("trickle_nonstream", "2 tok/s, non-stream client", "as trickle, with non-streaming "
         "clients (`engine.complete`)", "swift", {"tokens_per_s": 2}, {"tokens_per_s": 300},
         (90, 12), (30, 10), (90, 18), stream=False),
    *(_dip(f"stall_{sort}", f"stall 15 s, sort {sort}", f"{BEST[sort]} (best for {sort}) sends "
           f"headers, then {STALL_S:g} s of silence before its first token, for {STALL_S:g} s; "
           f"then healthy", BEST[sort], _STALL, _HEALTHY, (90, 12), (STALL_S, 8), (90, 18),
           policies=(sort,))
      for sort in ALL_POLICIES),
    _dip("slo_require", "SLO (require)", f"sort price + require max_latency {SLO_TTFT_S:g} s: "
         "budget (cheapest) has TTFT 2.5 s for 30 s, then 0.9 s again", "budget",
         {"ttft_s": 2.5}, {"ttft_s": 0.9}, (90, 12), (30, 10), (90, 18),
         policies=("price",), slo={"require": {"max_latency": SLO_TTFT_S}},
         slo_ttft_s=SLO_TTFT_S),
    _dip("slo_preferred", "SLO (preferred)", f"as slo_require with preferred_max_latency "
         f"{SLO_TTFT_S:g} s", "budget", {"ttft_s": 2.5}, {"ttft_s": 0.9},
         (90, 12), (30, 10), (90, 18), policies=("price",),
         slo={"preferred_max_latency": SLO_TTFT_S}, slo_ttft_s=SLO_TTFT_S),
)


def usable(spec: SimProviderSpec, slo_ttft_s: float | None) -> bool:
    """Whether a user sent there now gets a timely answer: not failing, not stalling, not
    trickling (under `TRICKLE_TPS`), and (under an SLO) meeting it."""
    if spec.error_rate >= 0.5 or spec.fault is not None or spec.tokens_per_s < TRICKLE_TPS:
        return False
    return slo_ttft_s is None or spec.ttft_s <= slo_ttft_s


def oracle_order(specs: dict[str, SimProviderSpec], prices: dict[str, tuple[float, float]],
                 objective: str, prompt_tokens: int, output_tokens: int,
                 slo_ttft_s: float | None, value_of_time: float, rng: random.Random
                 ) -> list[str]:
    """Providers best first for `objective`, from the simulator's true current specs.

    Unusable ones (`usable`) go last, still listed: the engine may fall back to them.
    `weighted` (equal weights by default) is a random order of the usable ones.
    """
    def score(name: str) -> float:
        s = specs[name]
        ttft = s.ttft_s + s.ttft_per_1k_prompt_tokens_s * prompt_tokens / 1000
        duration = ttft + output_tokens / s.tokens_per_s
        p_in, p_out = prices[name]
        cost = (prompt_tokens * p_in + output_tokens * p_out) / 1e6
        if objective == "throughput":
            return -s.tokens_per_s
        if objective == "latency":
            return ttft
        if objective == "price":
            return cost
        if objective == "balanced":
            return cost + value_of_time / 3600 * duration
        return rng.random()  # weighted, equal weights

    keys = {name: (0 if usable(specs[name], slo_ttft_s) else 1, score(name)) for name in specs}
    return sorted(specs, key=keys.__getitem__)
