"""Circuit breakers and the hedge budget: pure state machines on a manual clock."""

from __future__ import annotations

from tokenlane.clock import ManualClock
from tokenlane.routing.circuit import CircuitBoard, CircuitSettings
from tokenlane.routing.hedge import HedgeBudget


def board(**kw: float) -> tuple[CircuitBoard, ManualClock]:
    clock = ManualClock(start=0)
    return CircuitBoard(clock, CircuitSettings(**kw)), clock  # type: ignore[arg-type]


def test_consecutive_failures_open_then_half_open_trial_closes() -> None:
    b, clock = board(consecutive_failures=3, open_s=10)
    for _ in range(2):
        b.record("d", "5xx")
    assert b.state("d") == "closed" and b.acquire("d")
    b.record("d", "timeout")
    assert b.state("d") == "open" and not b.acquire("d")
    assert b.retry_in("d") == 10
    clock.advance(10)
    assert b.state("d") == "half_open"
    assert b.acquire("d")  # the single trial
    assert not b.acquire("d")  # nobody else while it runs
    b.record("d", "ok")
    assert b.state("d") == "closed" and b.acquire("d") and b.acquire("d")


def test_slow_failed_trial_reopens_for_longer() -> None:
    b, clock = board(consecutive_failures=1, open_s=10, max_open_s=25, slow_trial_s=2)
    b.record("d", "connect")
    clock.advance(10)
    assert b.acquire("d")
    clock.advance(5)  # the trial made its request wait, then timed out
    b.record("d", "timeout")
    assert b.state("d") == "open" and b.retry_in("d") == 20
    clock.advance(20)
    assert b.acquire("d")
    clock.advance(5)
    b.record("d", "timeout")
    assert b.retry_in("d") == 25  # capped


def test_fast_failed_trials_keep_the_short_cool_down() -> None:
    # A 10-minute outage of instant 503s: a failed trial costs its request a quick fallback,
    # so trials keep coming every open_s and the recovered deployment is back within open_s.
    b, clock = board(consecutive_failures=1, open_s=30, max_open_s=300)
    b.record("d", "5xx")
    trials = 0
    while clock.now() < 600:
        clock.advance(b.retry_in("d"))
        assert b.acquire("d")
        trials += 1
        b.record("d", "5xx")
    assert trials == 20 and b.retry_in("d") == 30
    clock.advance(30)
    assert b.acquire("d") and b.record("d", "ok") and b.state("d") == "closed"


def test_error_rate_in_window_opens_without_a_streak() -> None:
    b, _ = board(consecutive_failures=100, error_rate=0.5, min_requests=10)
    for i in range(11):
        b.record("d", "5xx" if i % 3 else "ok")  # 7 of 11 fail, never 3 in a row
    assert b.state("d") == "open"


def test_old_failures_leave_the_window() -> None:
    b, clock = board(consecutive_failures=100, error_rate=0.5, min_requests=4, window_s=60)
    for _ in range(3):
        b.record("d", "5xx")
    clock.advance(61)
    b.record("d", "ok")
    b.record("d", "5xx")
    assert b.state("d") == "closed"


def test_retry_after_opens_for_exactly_that_long() -> None:
    b, clock = board(open_s=30)
    b.record("d", "429", retry_after=7)
    assert b.state("d") == "open" and b.retry_in("d") == 7
    clock.advance(7)
    assert b.acquire("d")


def test_client_faults_and_cancellations_do_not_count() -> None:
    b, _ = board(consecutive_failures=2)
    for _ in range(5):
        b.record("d", "4xx")
        b.record("d", "cancelled")
    assert b.state("d") == "closed"


def test_cancelled_trial_frees_the_half_open_slot() -> None:
    b, clock = board(consecutive_failures=1, open_s=1)
    b.record("d", "5xx")
    clock.advance(1)
    assert b.acquire("d")
    b.record("d", "cancelled")
    assert b.acquire("d")


def test_hedge_budget_caps_the_share_of_hedged_requests() -> None:
    budget = HedgeBudget(share=0.1)
    hedged = 0
    for _ in range(1000):
        budget.on_request()
        hedged += budget.try_spend()
    assert 95 <= hedged <= 102
    assert not HedgeBudget(share=0.0).try_spend()
