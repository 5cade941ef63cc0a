"""When to re-measure a deployment nobody is using (pure: times passed in, no I/O).

Measured routing stops sending traffic to a deployment that got worse, so nothing measures it
any more, and without a schedule it would never be seen to recover: its last numbers are its
worst. Here, confidence in a deployment's numbers fades with the time since they were last
measured: past its recheck interval they are due a fresh measurement (an active probe, or, with
probes off, one real request at a time).

- A *degraded* deployment (below its usual self: slower than before, failing, stalled, circuit
  open; see `health`) is due `first_s` after its last measurement; every recheck that finds it
  still degraded doubles the interval, up to `max_s`. The cap is what bounds how late a
  recovery is noticed, whatever the history: after a 30-minute slowdown as after a 30-second
  one, the next recheck is at most `max_s` away.
- A deployment at its usual level that simply is not the best is due every `idle_s`: enough to
  notice one that got faster, at a small fraction of the cost.

The value of re-measuring is the difference between the two: a deployment that was better when
healthy has something to win back, one that never was has little.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RecheckSchedule", "RecheckSettings"]


@dataclass(frozen=True, slots=True)
class RecheckSettings:
    first_s: float = 1.0
    max_s: float = 2.0
    idle_s: float = 60.0


@dataclass(slots=True)
class _Backoff:
    interval: float
    checked_at: float | None = None  # when the latest recheck was sent, until it is answered
    answered_sent_at: float | None = None  # when the latest answered recheck was sent


class RecheckSchedule:
    """Per-deployment recheck intervals with backoff. `due` is asked; `sent` is told."""

    def __init__(self, settings: RecheckSettings | None = None) -> None:
        self.settings = settings or RecheckSettings()
        self._backoff: dict[str, _Backoff] = {}

    def due(self, deployment: str, degraded: bool, measured_at: float | None,
            now: float, hopeful: bool = False) -> bool:
        """Is `deployment` due a re-measurement? `measured_at` is when anything last measured
        it (None: never); `hopeful`: its latest samples say it is getting better, so the
        backoff starts over (a recovery is confirmed at `first_s`, not at `max_s`)."""
        if measured_at is None:
            return True
        if not degraded:
            self._backoff.pop(deployment, None)  # well again: the next slowdown starts over
            return now - measured_at >= self.settings.idle_s
        b = self._backoff.get(deployment)
        if b is None or hopeful:
            b = self._backoff[deployment] = _Backoff(self.settings.first_s)
        elif b.checked_at is not None and measured_at >= b.checked_at:
            # The last recheck came back and found it still degraded: wait longer next time.
            b.interval = min(b.interval * 2, self.settings.max_s)
            b.answered_sent_at, b.checked_at = b.checked_at, None
        # A recheck says how the deployment was when it was sent: a stalled one that took its
        # whole deadline to time out must not push the next one back by that deadline too.
        since = measured_at
        if b.answered_sent_at is not None and measured_at >= b.answered_sent_at:
            since = b.answered_sent_at
        return now - since >= b.interval

    def sent(self, deployment: str, now: float) -> None:
        """A recheck of `deployment` was sent at `now`."""
        b = self._backoff.get(deployment)
        if b is not None:
            b.checked_at = now

    def interval(self, deployment: str) -> float | None:
        """The current backoff interval of a degraded deployment (None: not backing off)."""
        b = self._backoff.get(deployment)
        return None if b is None else b.interval
