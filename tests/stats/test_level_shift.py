"""Level shifts: a new regime replaces history within a few samples; jitter never does."""

from __future__ import annotations

import random

import pytest

from tokenlane.clock import ManualClock
from tokenlane.stats.decay import LevelShift
from tokenlane.stats.observation import Observation
from tokenlane.stats.store import StatsSettings, StatsStore


def test_jitter_never_looks_like_a_shift() -> None:
    rng = random.Random(7)
    detector = LevelShift(half_life=300, factor=1.5, samples=3)
    for i in range(5000):
        assert detector.add(900 * (1 + 0.1 * (2 * rng.random() - 1)), at=i) is None
        assert not detector.pending


def test_a_run_of_outliers_on_one_side_is_a_shift() -> None:
    detector = LevelShift(half_life=300, factor=1.5, samples=3)
    for i in range(100):
        detector.add(900, at=i)
    assert detector.add(250, at=100) is None and detector.pending
    assert detector.add(260, at=101) is None
    assert detector.add(240, at=102) == 100  # began with the first of the run
    assert not detector.pending
    assert detector.add(255, at=103) is None and not detector.pending  # the new normal


def test_an_isolated_outlier_or_mixed_sides_are_not() -> None:
    detector = LevelShift(half_life=300, factor=1.5, samples=3)
    for i in range(20):
        detector.add(100, at=i)
    for at, value in enumerate((300, 30, 300, 100, 300, 300, 100), start=20):
        assert detector.add(value, at=at) is None


def observe(store: StatsStore, clock: ManualClock, tps: float, ttft: float = 0.3,
            prompt: int = 100) -> None:
    clock.advance(1)
    store.observe(Observation("a", clock.now(), "ok", prompt, 100, ttft, tps, 1.0, 0.0))


def test_store_rebases_decode_speed_after_a_slowdown() -> None:
    clock = ManualClock(start=0)
    store = StatsStore(clock, StatsSettings(half_life_s=300))
    for _ in range(120):
        observe(store, clock, 900)
    for n in range(1, 4):
        observe(store, clock, 250)
        e = store.snapshot(["a"]).estimates["a"]
        assert e.shifting == (n < 3)
    assert e.decode_tps_p50 == pytest.approx(250)
    assert e.samples == 123  # counts and error rates keep their history


def test_long_prompts_are_not_mistaken_for_a_ttft_shift() -> None:
    clock = ManualClock(start=0)
    store = StatsStore(clock, StatsSettings(half_life_s=300))
    rng = random.Random(1)
    for _ in range(200):  # TTFT = 0.2 s + 0.5 s per 1k prompt tokens
        prompt = rng.choice((100, 2000, 8000))
        observe(store, clock, 300, ttft=0.2 + 0.5 * prompt / 1000, prompt=prompt)
    for _ in range(5):
        observe(store, clock, 300, ttft=0.2 + 0.5 * 8, prompt=8000)
        assert not store.snapshot(["a"]).estimates["a"].shifting


def test_bad_news_counts_at_once_for_a_while_and_good_news_waits() -> None:
    clock = ManualClock(start=0)
    store = StatsStore(clock, StatsSettings(half_life_s=300, bad_news_hold_s=60))
    for _ in range(50):
        observe(store, clock, 900, ttft=0.3)
    observe(store, clock, 200, ttft=1.0)  # one answer: slower on both counts
    e = store.snapshot(["a"]).estimates["a"]
    assert e.decode_tps_p50 == pytest.approx(900, rel=0.01)  # history still stands...
    assert e.decode_tps_slower == pytest.approx(200) and e.ttft_slower_s == pytest.approx(1.0)
    assert e.got_slower  # ...but predictions use what the latest answer showed
    clock.advance(60)
    assert store.snapshot(["a"]).estimates["a"].got_slower
    clock.advance(1)  # the hold is over: the estimates stand until the next sample says more
    e = store.snapshot(["a"]).estimates["a"]
    assert not e.got_slower and e.shifting
    observe(store, clock, 3000, ttft=0.05)  # faster: good news is not taken on one sample
    e = store.snapshot(["a"]).estimates["a"]
    assert not e.got_slower and e.decode_tps_slower is None and e.shifting


def test_a_return_to_the_level_before_a_shift_needs_one_sample_less() -> None:
    detector = LevelShift(half_life=300, factor=1.5, samples=3)
    for i in range(100):
        detector.add(900, at=i)
    for i in range(100, 103):
        detector.add(250, at=i)
    assert detector.level() == pytest.approx(250) and detector.previous() == pytest.approx(900)
    assert detector.add(880, at=103) is None and detector.pending  # back where it was...
    assert detector.add(910, at=104) == 103  # ...confirmed by a second sample, not a third
    # A new level it never held still takes the full three.
    for i, value in enumerate((3000, 3100), start=105):
        assert detector.add(value, at=i) is None
    assert detector.add(2900, at=107) == 105


def test_a_slowdown_is_remembered_with_its_usual_level_for_healthy_memory_s() -> None:
    clock = ManualClock(start=0)
    store = StatsStore(clock, StatsSettings(half_life_s=300, healthy_memory_s=1800))
    for _ in range(100):
        observe(store, clock, 900, ttft=0.3)
    for _ in range(3):
        observe(store, clock, 100, ttft=0.3)
    e = store.snapshot(["a"]).estimates["a"]
    assert e.decode_tps_p50 == pytest.approx(100) and e.decode_tps_healthy == pytest.approx(900)
    assert e.ttft_healthy_s is None and e.below_usual  # TTFT never moved
    clock.advance(1790)  # half an hour slow: what it was is still worth re-measuring for
    assert store.snapshot(["a"]).estimates["a"].decode_tps_healthy == pytest.approx(900)
    clock.advance(20)  # past healthy_memory_s: the slow level is simply what it is now
    e = store.snapshot(["a"]).estimates["a"]
    assert e.decode_tps_healthy is None and not e.below_usual


def test_a_timeout_without_a_first_token_is_overdue_news_until_one_arrives() -> None:
    clock = ManualClock(start=0)
    store = StatsStore(clock, StatsSettings(bad_news_hold_s=60))
    for _ in range(20):
        observe(store, clock, 900, ttft=0.3)
    clock.advance(1)
    store.observe(Observation("a", clock.now(), "timeout", 100, 0, None, None, 1.2, 0.0))
    e = store.snapshot(["a"]).estimates["a"]
    assert e.ttft_overdue_s == pytest.approx(1.2) and e.below_usual
    assert e.ttft_p50_s == pytest.approx(0.3)  # a censored wait is not a TTFT sample
    observe(store, clock, 900, ttft=0.3)  # first tokens come again
    assert store.snapshot(["a"]).estimates["a"].ttft_overdue_s is None
