"""Circuit breakers, one per deployment (clock injected, no I/O).

    closed ──(N consecutive failures, or error rate over a threshold in a window,
              or a 429 with Retry-After)──▶ open
    open ──(cool-down or Retry-After elapsed)──▶ half_open: exactly one trial request
    half_open ──trial ok──▶ closed        half_open ──trial fails──▶ open again, for longer

Cool-downs start short (`open_s`, 1 s) and double with every failed trial, up to
`max_open_s`: a recovered deployment waits out at most the cool-down it is in, so a short one
brings it back quickly, and the doubling keeps a long outage from costing a trial a second.

Probes (the active prober's re-measurements) are trials that cost no user anything: one may
go to an open circuit whenever the recheck schedule says, without waiting for the cool-down
and without taking the half-open slot; a probe that succeeds closes the circuit, one that
fails backs the cool-down off like a failed trial.

With replicas (tokenlane.state), each board is told of every open and close another replica's
board decided (`apply`) and tells of its own (`on_change`): a deployment that fails on one
replica is kept away from by all, and one that recovered anywhere is back everywhere.

Only failures that say something about the deployment count: client faults (4xx) and
cancellations do not, and neither does a deadline (timeout, stall) of an attempt that began
before the deployment's latest success: it describes a moment the deployment has since shown
to be over, and must not re-open the circuit of a provider that just recovered.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..clock import Clock

__all__ = ["CircuitBoard", "CircuitChange", "CircuitSettings"]

_FAILURES = frozenset({"5xx", "429", "timeout", "connect", "stall", "bad_response", "auth"})
_DEADLINES = frozenset({"timeout", "stall"})  # the gateway's own deadlines


@dataclass(frozen=True, slots=True)
class CircuitSettings:
    consecutive_failures: int = 5
    error_rate: float = 0.5
    min_requests: int = 10  # in the window, before the error rate is trusted
    window_s: float = 60.0
    open_s: float = 1.0  # the first cool-down; doubled by each failed trial
    max_open_s: float = 30.0
    max_retry_after_s: float = 300.0  # a provider's Retry-After is honoured up to this
    # The provider refused our credentials (401/403): a key does not fix itself in seconds,
    # so the circuit opens at once, this long, and probes leave it alone.
    auth_open_s: float = 300.0


@dataclass(frozen=True, slots=True)
class CircuitChange:
    """A circuit opened (for `seconds` more: the cool-down `open_for` it is in, and why) or
    closed (the deployment recovered)."""

    deployment: str
    state: str  # "open" or "closed"
    seconds: float = 0.0
    open_for: float = 0.0
    rate_limited: bool = False
    auth_failed: bool = False


class _Circuit:
    __slots__ = ("auth_failed", "ok_at", "open_for", "rate_limited", "recent", "state", "streak",
                 "trial", "until")

    def __init__(self) -> None:
        self.state = "closed"
        self.until = 0.0
        self.streak = 0
        self.recent: deque[tuple[float, bool]] = deque()
        self.trial = False
        self.open_for = 0.0
        self.rate_limited = False  # opened for a provider's Retry-After, not for failing
        self.auth_failed = False  # opened because the provider refused our credentials
        self.ok_at: float | None = None  # the latest success


class CircuitBoard:
    def __init__(self, clock: Clock, settings: CircuitSettings | None = None) -> None:
        self.clock = clock
        self.settings = settings or CircuitSettings()
        self._circuits: dict[str, _Circuit] = {}
        # Told of every open and close this board decides (not of those `apply` is told of).
        self.on_change: Callable[[CircuitChange], None] | None = None

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

    def auth_failed(self, deployment: str) -> bool:
        """Whether the circuit is open because the provider refused our credentials."""
        c = self._circuits.get(deployment)
        return c is not None and c.state == "open" and c.auth_failed

    def acquire(self, deployment: str, probe: bool = False) -> bool:
        """May a request go to `deployment` now? Reserves the single half-open trial; a probe
        may always go (it is the prober's to decide when) and reserves nothing."""
        c = self._circuits.get(deployment)
        if probe or c is None or c.state == "closed":
            return True
        if c.state == "open":
            if self.clock.now() < c.until:
                return False
            c.state = "half_open"
            c.trial = False
        if c.trial:
            return False
        c.trial = True
        return True

    def record(
        self,
        deployment: str,
        outcome: str,
        retry_after: float | None = None,
        *,
        started_at: float | None = None,
        probe: bool = False,
    ) -> bool:
        """Count one attempt's outcome; True when it closed the circuit (a successful trial
        or probe: the deployment recovered). `started_at` is when the attempt was sent."""
        if outcome == "cancelled":
            c = self._circuits.get(deployment)
            if c is not None and c.state == "half_open" and not probe:
                c.trial = False  # the trial never finished; let another one try
            return False
        c = self._get(deployment)
        now = self.clock.now()
        failed = outcome in _FAILURES
        if (failed and outcome in _DEADLINES and started_at is not None
                and c.ok_at is not None and started_at < c.ok_at):
            return False  # overtaken by a later success: old news
        s = self.settings
        c.recent.append((now, failed))
        while c.recent and c.recent[0][0] < now - s.window_s:
            c.recent.popleft()
        if not failed:
            c.streak = 0
            c.ok_at = now
            if c.state == "half_open" or (probe and c.state == "open"):
                c.state, c.trial, c.open_for = "closed", False, 0.0
                c.rate_limited = c.auth_failed = False
                c.recent.clear()  # a fresh start: old failures no longer describe it
                self._changed(CircuitChange(deployment, "closed"))
                return True
            return False
        c.streak += 1
        failures = sum(1 for _, f in c.recent if f)
        too_many = len(c.recent) >= s.min_requests and failures / len(c.recent) > s.error_rate
        seconds = 0.0
        if c.state == "half_open" or (probe and c.state == "open"):
            seconds = min(max(c.open_for * 2, s.open_s), s.max_open_s)  # a failed trial
        elif c.state == "closed" and (c.streak >= s.consecutive_failures or too_many):
            seconds = s.open_s
        backoff = outcome == "429" and bool(retry_after)
        if backoff:
            # The provider said exactly how long to stay away.
            seconds = max(seconds, min(retry_after or 0.0, s.max_retry_after_s))
        auth = outcome == "auth"
        if auth:
            seconds = max(seconds, s.auth_open_s)
        if seconds > 0:
            c.rate_limited, c.auth_failed = backoff, auth
            c.state, c.trial, c.open_for = "open", False, seconds
            c.until = max(c.until, now + seconds) if backoff else now + seconds
            self._changed(self._open_change(deployment, c, now))
        return False

    def apply(self, change: CircuitChange) -> bool:
        """Take another replica's decision; True when it closed a circuit open here (the
        deployment recovered: its failures are history, as after a local close)."""
        c = self._get(change.deployment)
        now = self.clock.now()
        if change.state == "closed":
            was_open = c.state != "closed"
            c.state, c.trial, c.open_for, c.streak = "closed", False, 0.0, 0
            c.rate_limited = c.auth_failed = False
            c.recent.clear()
            return was_open
        until = now + change.seconds
        if c.state == "open" and c.until > until:
            return False  # already kept away longer here
        c.state, c.trial, c.until = "open", False, until
        c.open_for = max(c.open_for, change.open_for)
        c.rate_limited, c.auth_failed = change.rate_limited, change.auth_failed
        return False

    def opened(self) -> list[CircuitChange]:
        """Every circuit still inside its cool-down, as changes to tell other replicas (a
        replica that missed them while the state backend was away catches up)."""
        now = self.clock.now()
        return [self._open_change(d, c, now) for d, c in self._circuits.items()
                if c.state == "open" and c.until > now]

    @staticmethod
    def _open_change(deployment: str, c: _Circuit, now: float) -> CircuitChange:
        return CircuitChange(deployment, "open", max(0.0, c.until - now), c.open_for,
                             c.rate_limited, c.auth_failed)

    def _changed(self, change: CircuitChange) -> None:
        if self.on_change is not None:
            self.on_change(change)
