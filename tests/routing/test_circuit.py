"""Circuit breakers and the hedge budget: pure state machines on a manual clock."""

from __future__ import annotations

from tokenlane.clock import ManualClock
from tokenlane.routing.circuit import CircuitBoard, CircuitChange, CircuitSettings
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


def test_failed_trials_back_off_from_a_short_cool_down_to_the_cap() -> None:
    b, clock = board(consecutive_failures=1, open_s=1, max_open_s=30)
    b.record("d", "5xx")
    cool_downs = []
    for _ in range(7):
        cool_downs.append(b.retry_in("d"))
        clock.advance(b.retry_in("d"))
        assert b.state("d") == "half_open" and b.acquire("d")
        b.record("d", "5xx")
    assert cool_downs == [1, 2, 4, 8, 16, 30, 30]
    clock.advance(30)
    assert b.acquire("d") and b.record("d", "ok") and b.state("d") == "closed"
    b.record("d", "5xx")
    assert b.retry_in("d") == 1  # a new outage starts short again


def test_a_probe_is_the_trial_of_an_open_circuit_without_waiting_for_the_cool_down() -> None:
    b, clock = board(consecutive_failures=1, open_s=8)
    b.record("d", "connect")
    assert not b.acquire("d")  # users wait out the cool-down
    assert b.acquire("d", probe=True) and b.acquire("d", probe=True)  # probes take no slot
    b.record("d", "5xx", probe=True)  # still failing: users' cool-down doubles
    assert b.state("d") == "open" and b.retry_in("d") == 16
    clock.advance(1)
    assert b.record("d", "ok", probe=True)  # recovered: closed at once, not 15 s later
    assert b.state("d") == "closed" and b.acquire("d")


def test_a_deadline_hit_by_an_attempt_older_than_the_latest_success_does_not_count() -> None:
    # Requests sent into a stall time out after the provider has recovered (a later request
    # already succeeded): their timeouts describe the stall, not the provider now.
    b, clock = board(consecutive_failures=2)
    stalled_at = clock.now()
    clock.advance(1)
    b.record("d", "ok")
    clock.advance(1)
    for _ in range(5):
        b.record("d", "timeout", started_at=stalled_at)
    assert b.state("d") == "closed"
    b.record("d", "timeout", started_at=clock.now())  # a fresh one counts
    b.record("d", "5xx", started_at=stalled_at)  # and a provider error always does
    assert b.state("d") == "open"


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
    b, clock = board(open_s=1)
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


def test_changes_are_told_and_another_boards_are_applied_without_echo() -> None:
    a, clock_a = board(consecutive_failures=2, open_s=4)
    b, clock_b = board(consecutive_failures=2, open_s=4)
    told_a: list[CircuitChange] = []
    told_b: list[CircuitChange] = []
    a.on_change, b.on_change = told_a.append, told_b.append
    a.record("d", "5xx")
    a.record("d", "5xx")
    assert [(c.state, c.seconds, c.open_for) for c in told_a] == [("open", 4, 4)]
    clock_b.advance(100)  # another replica's clock: only the time left carries over
    assert not b.apply(told_a[0])
    assert b.state("d") == "open" and b.retry_in("d") == 4 and not b.acquire("d")
    assert told_b == []  # applied, not re-told
    assert b.opened() == [CircuitChange("d", "open", 4, 4)]
    clock_a.advance(4)
    assert a.acquire("d")
    a.record("d", "ok")
    assert told_a[-1] == CircuitChange("d", "closed")
    assert b.apply(told_a[-1])  # closed an open circuit: the caller forgets its failures
    assert b.state("d") == "closed" and b.opened() == [] and told_b == []
    # A shorter open from elsewhere does not cut a longer local one short.
    b.record("d", "429", retry_after=60)
    assert not b.apply(CircuitChange("d", "open", 1, 1))
    assert b.retry_in("d") == 60 and b.rate_limited("d")
