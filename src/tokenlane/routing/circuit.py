"""Circuit breakers, one per deployment (clock injected, no I/O).

    closed ──(N consecutive failures, or error rate over a threshold in a window,
              or a 429 with Retry-After)──▶ open
    open ──(cool-down or Retry-After elapsed)──▶ half_open: exactly one trial request
    half_open ──trial ok──▶ closed        half_open ──trial fails──▶ open again

Cool-downs after a failed trial: a recovered deployment waits out whatever cool-down it is in
(half of it on average), so short is better, unless trials hurt. A trial that fails fast (a
503, a refused connection) costs its request a fallback of milliseconds: the cool-down stays
`open_s`. One that failed slowly (a timeout, a stall) made a user wait: the cool-down doubles,
up to `max_open_s`.

Only failures that say something about the deployment count: client faults (4xx) and
cancellations do not.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ..clock import Clock

__all__ = ["CircuitBoard", "CircuitSettings"]

_FAILURES = frozenset({"5xx", "429", "timeout", "connect", "stall", "bad_response"})


@dataclass(frozen=True, slots=True)
class CircuitSettings:
    consecutive_failures: int = 5
    error_rate: float = 0.5
    min_requests: int = 10  # in the window, before the error rate is trusted
    window_s: float = 60.0
    open_s: float = 30.0
    max_open_s: float = 300.0
    # A failed trial that took longer than this (from `acquire` to `record`) backs off.
    slow_trial_s: float = 2.0


class _Circuit:
    __slots__ = ("open_for", "rate_limited", "recent", "state", "streak", "trial", "trial_at",
                 "until")

    def __init__(self) -> None:
        self.state = "closed"
        self.until = 0.0
        self.streak = 0
        self.recent: deque[tuple[float, bool]] = deque()
        self.trial = False
        self.trial_at = 0.0
        self.open_for = 0.0
        self.rate_limited = False  # opened for a provider's Retry-After, not for failing


class CircuitBoard:
    def __init__(self, clock: Clock, settings: CircuitSettings | None = None) -> None:
        self.clock = clock
        self.settings = settings or CircuitSettings()
        self._circuits: dict[str, _Circuit] = {}

    def _get(self, deployment: str) -> _Circuit:
        c = self._circuits.get(deployment)
        if c is None:
            c = self._circuits[deployment] = _Circuit()
        return c

    def state(self, deployment: str) -> str:
        c = self._circuits.get(deployment)
        if c is None:
            return "closed"
        if c.state == "open" and self.clock.now() >= c.until:
            return "half_open"
        return c.state

    def retry_in(self, deployment: str) -> float:
        """Seconds until an open circuit lets a trial through (0 when it would now)."""
        c = self._circuits.get(deployment)
        if c is None or c.state != "open":
            return 0.0
        return max(0.0, c.until - self.clock.now())

    def rate_limited(self, deployment: str) -> bool:
        """Whether the circuit is open because the provider asked us to back off (a 429 with
        Retry-After), rather than because the deployment is failing."""
        c = self._circuits.get(deployment)
        return c is not None and c.state == "open" and c.rate_limited

    def acquire(self, deployment: str) -> bool:
        """May a request go to `deployment` now? Reserves the single half-open trial."""
        c = self._circuits.get(deployment)
        if c is None or c.state == "closed":
            return True
        if c.state == "open":
            if self.clock.now() < c.until:
                return False
            c.state = "half_open"
            c.trial = False
        if c.trial:
            return False
        c.trial = True
        c.trial_at = self.clock.now()
        return True

    def record(self, deployment: str, outcome: str, retry_after: float | None = None) -> bool:
        """Count one attempt's outcome; True when it was a successful trial (recovered)."""
        if outcome == "cancelled":
            c = self._circuits.get(deployment)
            if c is not None and c.state == "half_open":
                c.trial = False  # the trial never finished; let another one try
            return False
        c = self._get(deployment)
        now = self.clock.now()
        failed = outcome in _FAILURES
        s = self.settings
        c.recent.append((now, failed))
        while c.recent and c.recent[0][0] < now - s.window_s:
            c.recent.popleft()
        if not failed:
            c.streak = 0
            if c.state == "half_open":
                c.state, c.trial, c.open_for, c.rate_limited = "closed", False, 0.0, False
                c.recent.clear()  # a fresh start: old failures no longer describe it
                return True
            return False
        c.streak += 1
        failures = sum(1 for _, f in c.recent if f)
        too_many = len(c.recent) >= s.min_requests and failures / len(c.recent) > s.error_rate
        seconds = 0.0
        if c.state == "half_open":
            slow = c.trial and now - c.trial_at > s.slow_trial_s
            seconds = min(max(c.open_for * 2, s.open_s), s.max_open_s) if slow else s.open_s
        elif c.state == "closed" and (c.streak >= s.consecutive_failures or too_many):
            seconds = s.open_s
        backoff = outcome == "429" and bool(retry_after)
        if backoff:
            # The provider said exactly how long to stay away.
            seconds = max(seconds, min(retry_after or 0.0, s.max_open_s))
        if seconds > 0:
            c.rate_limited = backoff
            c.state, c.trial, c.open_for = "open", False, seconds
            c.until = max(c.until, now + seconds)
        return False
