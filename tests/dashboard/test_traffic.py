"""TrafficWindow: attempts in time buckets over a window, memory bounded, time passed in."""

from __future__ import annotations

from tokenlane.server.traffic import TrafficWindow
from tokenlane.stats.observation import Observation


def obs(at: float, outcome: str = "ok", ttft: float | None = 0.2, tps: float | None = 100.0,
        deployment: str = "a/m", **kw: object) -> Observation:
    return Observation(deployment=deployment, at=at, outcome=outcome, ttft_s=ttft,
                       decode_tps=tps, **kw)  # type: ignore[arg-type]


def test_buckets_quantiles_and_totals() -> None:
    w = TrafficWindow(["a/m", "b/m"], span_s=60, bucket_s=10)
    for i, ttft in enumerate([0.1, 0.2, 0.3, 0.4, 1.0]):
        w.observe(obs(100 + i, ttft=ttft, tps=50.0 + i, prompt_tokens=10, output_tokens=90,
                      cost=0.001))
    w.observe(obs(112, outcome="429", ttft=None, tps=None))
    w.observe(obs(113, outcome="5xx", ttft=None, tps=None))
    w.observe(obs(114, outcome="cancelled", ttft=None, tps=None))
    view = w.view(now=115)
    series = view["a/m"]["series"]
    assert series["t"] == [100, 110]
    assert series["attempts"] == [5, 3]
    assert series["ttft_p50_s"] == [0.3, None] and series["ttft_p90_s"] == [1.0, None]
    assert series["decode_tps_p50"] == [52.0, None]
    totals = view["a/m"]["totals"]
    assert totals["attempts"] == 8 and totals["errors"] == 2 and totals["rate_limited"] == 1
    assert totals["error_rate"] == 2 / 7 and totals["rate_limit_rate"] == 1 / 7  # not cancelled
    assert totals["usd_per_request"] == 0.005 / 5
    assert totals["usd_per_m_tokens"] == 0.005 / 500 * 1e6
    assert view["b/m"]["totals"]["attempts"] == 0 and view["b/m"]["series"]["t"] == []


def test_old_buckets_leave_the_window() -> None:
    w = TrafficWindow(["a/m"], span_s=60, bucket_s=10)
    w.observe(obs(0))
    w.observe(obs(35))
    assert w.view(now=55)["a/m"]["series"]["t"] == [0, 30]
    assert w.view(now=60)["a/m"]["series"]["t"] == [30]  # the window is 60..0 exclusive
    assert w.view(now=1000)["a/m"]["totals"]["attempts"] == 0


def test_memory_is_bounded_however_busy() -> None:
    w = TrafficWindow(["a/m"], span_s=60, bucket_s=10, samples_per_bucket=8)
    for i in range(10_000):
        w.observe(obs(i / 100, ttft=i / 10_000))  # 100 s of traffic, 100 attempts a second
    lane = w._lanes["a/m"]
    assert len(lane.buckets) <= 7
    assert all(len(b.ttft) <= 8 for b in lane.buckets.values())
    assert w.view(now=100)["a/m"]["totals"]["attempts"] == 5000  # the buckets from 50 s on


def test_unknown_deployments_are_ignored() -> None:
    w = TrafficWindow(["a/m"])
    w.observe(obs(1, deployment="not/configured"))
    assert set(w.view(now=2)) == {"a/m"}
