"""The recheck schedule: confidence in a deployment's numbers fades with the time since it
was last measured; degraded ones are due soon, backing off, idle healthy ones rarely."""

from __future__ import annotations

from tokenlane.routing.rechecks import RecheckSchedule, RecheckSettings


def due_after(schedule: RecheckSchedule, degraded: bool, measured_at: float,
              hopeful: bool = False) -> float:
    """Seconds after `measured_at` when the schedule first says due (asked every 0.25 s)."""
    t = measured_at
    while not schedule.due("d", degraded, measured_at, t, hopeful=hopeful):
        t += 0.25
        assert t - measured_at < 3600
    schedule.sent("d", t)
    return t - measured_at


def test_degraded_rechecks_back_off_to_the_cap_and_start_over_when_well() -> None:
    schedule = RecheckSchedule(RecheckSettings(first_s=1, max_s=8, idle_s=60))
    waits, measured = [], 0.0
    for _ in range(6):
        waits.append(due_after(schedule, True, measured))
        measured += waits[-1]  # the recheck came back, still degraded
    assert waits == [1, 2, 4, 8, 8, 8]
    assert due_after(schedule, False, measured) == 60  # well: the idle schedule
    assert due_after(schedule, True, measured + 60) == 1  # a new slowdown starts short


def test_good_news_restarts_the_backoff_so_a_recovery_is_confirmed_quickly() -> None:
    schedule = RecheckSchedule(RecheckSettings(first_s=1, max_s=8, idle_s=60))
    measured = 0.0
    for _ in range(5):
        measured += due_after(schedule, True, measured)
    assert due_after(schedule, True, measured, hopeful=True) == 1


def test_never_measured_is_due_at_once() -> None:
    assert RecheckSchedule().due("d", False, None, 0.0)


def test_the_interval_runs_from_when_a_recheck_was_sent_not_when_it_timed_out() -> None:
    schedule = RecheckSchedule(RecheckSettings(first_s=1, max_s=2, idle_s=60))
    assert due_after(schedule, True, 0.0) == 1  # sent at 1
    # That recheck stalled and timed out 1.5 s later: still degraded, next one 2 s after it
    # was sent (at 3), not 2 s after its answer (at 4.5).
    assert not schedule.due("d", True, 2.5, 2.75)
    assert schedule.due("d", True, 2.5, 3.0)
