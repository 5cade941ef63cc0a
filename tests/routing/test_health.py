"""Health gates and learned deadlines: pure verdicts on estimates, under every policy."""

from __future__ import annotations

import random

import pytest

from tokenlane.request import chat_request_from_body
from tokenlane.routing.health import HealthSettings, degraded, ttft_timeout, unhealthy
from tokenlane.routing.planner import plan
from tokenlane.stats.snapshot import Snapshot

from .test_planner import NO_EXPLORE, ROUTE, SNAPSHOT, estimate, order

HEALTH = HealthSettings()


def test_overdue_first_tokens_trickles_and_failures_are_unhealthy() -> None:
    well = estimate("fast", 0.5, 1000, ttft_samples=20)
    assert unhealthy(well, HEALTH) is None and not degraded(well, HEALTH)
    # Waiting 1.4 s where p90 is 0.75 s: not yet twice p90; 1.6 s is.
    assert unhealthy(estimate("fast", 0.5, 1000, ttft_samples=20, live_wait_s=1.4),
                     HEALTH) is None
    assert unhealthy(estimate("fast", 0.5, 1000, ttft_samples=20, live_wait_s=1.6),
                     HEALTH) == "first token overdue"
    assert unhealthy(estimate("fast", 0.5, 1000, ttft_overdue_s=1.6), HEALTH) == (
        "first token overdue")
    # Too few first tokens to know what "late" means: no verdict.
    assert unhealthy(estimate("fast", 0.5, 1000, ttft_samples=1, live_wait_s=9), HEALTH) is None
    for trickle in ({"live_decode_tps": 50.0}, {"decode_tps_slower": 50.0},
                    {"decode_tps_p50": 50.0, "decode_tps_healthy": 1000.0}):
        assert unhealthy(estimate("fast", 0.5, 1000, **trickle), HEALTH) == "trickling"
    assert unhealthy(estimate("fast", 0.5, 1000, live_decode_tps=400.0), HEALTH) is None
    assert unhealthy(estimate("fast", 0.5, 1000, error_rate=0.6), HEALTH) == "failing"
    # Degraded: unhealthy, or below its usual self, or its circuit not closed.
    assert degraded(estimate("fast", 0.5, 300, decode_tps_healthy=1000.0), HEALTH)
    assert degraded(estimate("fast", 0.5, 1000, circuit="open"), HEALTH)


@pytest.mark.parametrize("sort", ["throughput", "latency", "price", "balanced", "weighted"])
@pytest.mark.parametrize("sickness", [{"live_wait_s": 5.0, "ttft_samples": 20},
                                      {"ttft_overdue_s": 5.0},
                                      {"live_decode_tps": 1.0}])
def test_an_unhealthy_deployment_is_demoted_under_every_adaptive_policy(
        sort: str, sickness: dict[str, object]) -> None:
    # Each policy's own favourite falls sick; the plan puts it last and says why.
    favourite = {"throughput": "fast", "latency": "snappy", "price": "cheap",
                 "balanced": "snappy", "weighted": "fast"}[sort]
    profile = next(p for p in SNAPSHOT.estimates.values() if p.deployment == f"{favourite}/m")
    sick = estimate(favourite, profile.ttft_p50_s or 0, profile.decode_tps_p50 or 0, **sickness)
    snapshot = Snapshot(0.0, {**SNAPSHOT.estimates, sick.deployment: sick})
    request = chat_request_from_body({"model": "m", "messages": [{"role": "user", "content": "x"}],
                                      "provider": {"sort": sort}})
    for seed in range(5):  # weighted draws: whatever it draws, the sick one goes last
        decision = plan(ROUTE, request, request.options, snapshot, random.Random(seed),
                        NO_EXPLORE, health=HEALTH)
        assert order(decision)[-1] == favourite, (sort, seed)
        assert dict(decision.demoted)[sick.deployment] in ("first token overdue", "trickling")
        assert "demoted=" in decision.header()


def test_order_is_followed_to_the_letter() -> None:
    sick = estimate("cheap", 1.0, 30, live_decode_tps=0.5)
    snapshot = Snapshot(0.0, {**SNAPSHOT.estimates, "cheap/m": sick})
    request = chat_request_from_body({"model": "m", "messages": [{"role": "user", "content": "x"}],
                                      "provider": {"sort": "order", "order": ["cheap"]}})
    decision = plan(ROUTE, request, request.options, snapshot, random.Random(0), NO_EXPLORE,
                    health=HEALTH)
    assert order(decision)[0] == "cheap" and decision.demoted == ()


def test_the_ttft_deadline_is_learnt_from_p99_and_bounded() -> None:
    fast = estimate("fast", 0.2, 1000, ttft_p99_s=0.25, ttft_samples=50)
    assert ttft_timeout(fast, 100, HEALTH, cap=30) == pytest.approx(1.0)  # 4 x p99
    slow = estimate("slow", 3.0, 100, ttft_p99_s=6.0, ttft_samples=50)
    assert ttft_timeout(slow, 100, HEALTH, cap=30) == pytest.approx(24.0)
    assert ttft_timeout(slow, 100, HEALTH, cap=10) == 10  # never past the configured bound
    tiny = estimate("fast", 0.01, 1000, ttft_p99_s=0.02, ttft_samples=50)
    assert ttft_timeout(tiny, 100, HEALTH, cap=30) == HEALTH.timeout_min_s
    # Longer prompts take longer: the deadline grows with the learnt slope.
    growing = estimate("fast", 0.2, 1000, ttft_p99_s=0.25, ttft_samples=50,
                       ttft_per_1k_prompt_s=0.5, ttft_mean_prompt_tokens=100.0)
    assert ttft_timeout(growing, 4100, HEALTH, cap=30) == pytest.approx(4 * (0.25 + 2.0))
    # Before enough first tokens are measured: the bound.
    assert ttft_timeout(estimate("new", 0.2, 1000, ttft_p99_s=0.25, ttft_samples=3), 100,
                        HEALTH, cap=30) == 30
    assert ttft_timeout(None, 100, HEALTH, cap=30) == 30


def test_a_probe_may_take_a_few_times_what_the_deployment_usually_needs() -> None:
    from tokenlane.routing.health import probe_deadline

    fast = estimate("fast", 0.2, 1000, ttft_p90_s=0.3)
    assert probe_deadline(fast, 16, HEALTH) == 2.0  # 3 x 0.316 s, floored at 2 s
    # Trickling at 2 tok/s, 10 usually: judged by the usual level, not the trickle.
    trickling = estimate("fast", 0.2, 2, ttft_p90_s=1.0, decode_tps_healthy=10.0)
    assert probe_deadline(trickling, 16, HEALTH) == pytest.approx(3 * (1.0 + 1.6))
    assert probe_deadline(estimate("new", 0.2, 1000, ttft_p90_s=None), 16, HEALTH) is None
