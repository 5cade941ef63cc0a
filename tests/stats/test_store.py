"""Stats: decayed estimates with a clock the test controls."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from tokenlane.clock import ManualClock
from tokenlane.stats.decay import DecayedMean, DecayedQuantiles, DecayedRegression
from tokenlane.stats.observation import Observation
from tokenlane.stats.store import StatsSettings, StatsStore


def ok(d: str, at: float, ttft: float = 0.2, tps: float = 100.0, prompt: int = 100,
       out: int = 50, cost: float = 0.0001, outcome: str = "ok") -> Observation:
    return Observation(d, at, outcome, prompt, out, ttft, tps, ttft + out / tps, cost)


def test_decayed_mean_halves_old_weight() -> None:
    m = DecayedMean(half_life=10)
    m.add(0.0, at=0)
    m.add(1.0, at=10)  # the first sample now weighs 1/2
    assert m.value() == pytest.approx(1 / 1.5)
    assert m.weight(now=20) == pytest.approx(0.75)


def test_decayed_quantiles_follow_recent_samples() -> None:
    q = DecayedQuantiles(half_life=10)
    for i in range(5):
        q.add(100.0, at=i)
    for i in range(3):
        q.add(10.0, at=100 + i)  # five old samples at ~2^-10 weight each
    assert q.quantiles((0.5,), now=103) == (10.0,)


def test_regression_learns_ttft_growth() -> None:
    r = DecayedRegression(half_life=1e9)
    for prompt in (100, 1000, 2000, 4000):
        r.add(prompt, 0.1 + 0.2 * prompt / 1000, at=0)
    assert r.slope(min_spread=50) * 1000 == pytest.approx(0.2)
    flat = DecayedRegression(half_life=1e9)
    flat.add(100, 0.5, at=0)
    flat.add(101, 0.9, at=0)
    assert flat.slope(min_spread=50) == 0.0  # no spread, no claim


def test_store_estimates_counts_ages_and_staleness() -> None:
    clock = ManualClock(start=0)
    # TTFTs spread 0.1..1.0 on purpose (quantiles), not a level shift: detection off.
    store = StatsStore(clock, StatsSettings(half_life_s=60, stale_after_s=100, shift_samples=0))
    for i in range(10):
        store.observe(ok("a", at=i, ttft=0.1 * (i + 1), tps=200, cost=0.001, out=100))
    store.observe(ok("a", at=10, outcome="5xx", out=0))
    store.observe(ok("a", at=10, outcome="429", out=0))
    clock.advance(10)
    e = store.snapshot(["a", "b"]).estimates
    assert e["a"].samples == 12 and e["a"].age_s == pytest.approx(0)
    assert 0.5 <= e["a"].ttft_p50_s <= 0.6 and e["a"].ttft_p90_s == pytest.approx(0.9)
    assert e["a"].decode_tps_p50 == 200
    assert e["a"].error_rate == pytest.approx(2 / 12, rel=0.1)
    assert e["a"].rate_limit_rate == pytest.approx(1 / 12, rel=0.1)
    assert e["a"].usd_per_m_output == pytest.approx(10.0)  # $0.001 per 100 tokens
    assert not e["a"].stale and e["b"].stale and e["b"].samples == 0
    clock.advance(150)
    assert store.snapshot(["a"]).estimates["a"].stale


@dataclass(eq=False)
class Live:
    sent_at: float
    first_at: float | None
    chunks: int


def test_streams_in_flight_show_a_trickle_before_they_finish() -> None:
    clock = ManualClock(start=5)
    store = StatsStore(clock)
    for i in range(5):
        store.observe(ok("a", at=i, tps=1000))
    trickle = Live(sent_at=5, first_at=6, chunks=5)
    waiting = Live(sent_at=5, first_at=None, chunks=0)
    store.track("a", trickle)
    store.track("a", waiting)
    clock.advance(10)  # now = 15: 4 tokens after the first in 9 s
    e = store.snapshot(["a"]).estimates["a"]
    assert e.in_flight == 2
    assert e.live_decode_tps == pytest.approx(4 / 9)
    assert e.live_wait_s == pytest.approx(10)
    store.untrack("a", trickle)
    store.untrack("a", waiting)
    assert store.snapshot(["a"]).estimates["a"].live_decode_tps is None


def test_streams_in_flight_count_tokens_not_chunks() -> None:
    """A provider that packs 4 tokens per chunk, streaming at its usual 100 tokens/s, is not
    a trickle: its chunk rate is converted with the tokens per chunk its answers showed."""
    clock = ManualClock(start=10)
    store = StatsStore(clock)
    for i in range(5):
        store.observe(replace(ok("packs", at=i, tps=100, out=400), chunks=100))
    stream = Live(sent_at=10, first_at=10, chunks=26)  # 25 chunks after the first in 1 s
    store.track("packs", stream)
    clock.advance(1)
    e = store.snapshot(["packs"]).estimates["packs"]
    assert e.live_decode_tps == pytest.approx(100) and e.decode_tps_p50 == 100


def test_each_speed_estimate_has_its_own_sample_count_and_age() -> None:
    clock = ManualClock(start=0)
    store = StatsStore(clock)
    for i in range(4):
        store.observe(ok("a", at=i))
    for i in range(4, 10):  # failures: samples, but no TTFT or decode speed measured
        store.observe(Observation("a", i, "5xx", 100, 0, None, None, 0.1, 0.0, 503))
    store.observe(Observation("a", 10, "ok", 100, 1, 0.2, None, 0.2, 0.0))  # one token
    clock.advance(12)
    e = store.snapshot(["a"]).estimates["a"]
    assert (e.samples, e.age_s) == (11, 2)
    assert (e.ttft_samples, e.ttft_age_s) == (5, 2)
    assert (e.decode_samples, e.decode_age_s) == (4, 9)


def test_a_recovered_deployment_forgets_its_outage() -> None:
    clock = ManualClock(start=0)
    store = StatsStore(clock)
    for i in range(20):
        store.observe(ok("a", at=i, outcome="5xx", out=0))
    store.observe(ok("a", at=21))
    assert store.snapshot(["a"]).estimates["a"].error_rate > 0.9
    store.forget_failures("a")
    store.observe(ok("a", at=22))
    e = store.snapshot(["a"]).estimates["a"]
    assert e.error_rate == 0.0 and e.samples == 22  # speed history stays, failures go


def test_a_trickle_shows_within_a_quarter_second_as_a_bound_on_its_speed() -> None:
    clock = ManualClock(start=10)
    store = StatsStore(clock)
    for i in range(5):
        store.observe(ok("a", at=i, tps=300))
    stream = Live(sent_at=10, first_at=10, chunks=1)  # one token, then nothing
    store.track("a", stream)
    clock.advance(0.2)
    assert store.snapshot(["a"]).estimates["a"].live_decode_tps is None  # too early to say
    clock.advance(0.05)
    # At most 1 token in 0.25 s: 4 tok/s, whatever comes next.
    assert store.snapshot(["a"]).estimates["a"].live_decode_tps == pytest.approx(4)


def test_streams_sent_before_a_later_healthy_answer_are_old_news() -> None:
    """A trickle sent into a slowdown keeps trickling after the provider recovered; once a
    request sent later came back well, the leftovers no longer speak for the deployment."""
    clock = ManualClock(start=100)
    store = StatsStore(clock)
    for i in range(5):
        store.observe(ok("a", at=i, tps=300))
    leftover = Live(sent_at=100, first_at=100.2, chunks=3)
    stalled = Live(sent_at=100, first_at=None, chunks=0)
    store.track("a", leftover)
    store.track("a", stalled)
    clock.advance(5)
    e = store.snapshot(["a"]).estimates["a"]
    assert e.live_decode_tps == pytest.approx(2 / 4.8) and e.live_wait_s == pytest.approx(5)
    store.observe(ok("a", at=clock.now(), tps=300, ttft=0.2, out=50))  # sent at ~104.6
    e = store.snapshot(["a"]).estimates["a"]
    assert e.live_decode_tps is None and e.live_wait_s is None and e.in_flight == 2


def test_a_peers_failure_from_before_the_outage_ended_here_is_history() -> None:
    clock = ManualClock(start=100)
    store = StatsStore(clock)
    store.observe(ok("d", 100))
    store.forget_failures("d")  # the circuit closed here at 100
    late = Observation("d", 99.5, "5xx", total_s=0.1)  # another replica's, arriving late
    store.observe_peer(late)
    store.observe_peer(ok("d", 99.0))  # its successes still count
    assert store.snapshot(["d"]).estimates["d"].samples == 2
    store.observe_peer(replace(late, at=100.5))  # a failure since: news
    e = store.snapshot(["d"]).estimates["d"]
    assert e.samples == 3 and e.error_rate and e.error_rate > 0


def test_with_many_streams_in_flight_their_signals_are_reused_for_a_moment() -> None:
    """Walking hundreds of streams per estimate was per-request work growing with load; past
    `live_cache_min` the walk is reused for `live_refresh_s`, and only then."""
    clock = ManualClock(start=10)
    settings = StatsSettings(live_cache_min=64, live_refresh_s=0.1)
    store = StatsStore(clock, settings)
    for i in range(5):
        store.observe(ok("a", at=i, tps=300))
    streams = [Live(sent_at=10, first_at=10, chunks=11) for _ in range(64)]
    for stream in streams:
        store.track("a", stream)
    clock.advance(1)  # 10 tokens after the first in 1 s
    assert store.snapshot(["a"]).estimates["a"].live_decode_tps == pytest.approx(10)
    for stream in streams:
        stream.chunks = 101  # now 100 tokens/s
    clock.advance(0.05)
    e = store.snapshot(["a"]).estimates["a"]
    assert e.live_decode_tps == pytest.approx(10) and e.in_flight == 64  # reused; count exact
    clock.advance(0.06)
    assert store.snapshot(["a"]).estimates["a"].live_decode_tps == pytest.approx(100 / 1.11)
    store.untrack("a", streams[0])  # below the threshold: exact again at once
    for stream in streams[1:]:
        stream.chunks = 1
    assert store.snapshot(["a"]).estimates["a"].live_decode_tps == pytest.approx(0)
