"""Is the state backend usable right now? (pure: times passed in, no I/O)

Every caller of Redis reports here: a failure or timeout marks the backend down at once, so
the next caller goes local without waiting out a timeout of its own; only the connection's
watcher (`redis_conn.RedisConnection.run`) brings it back, after a successful PING. Each
transition is reported once (the caller logs one line per outage, not one per request) and
to the listeners, which resync on the way up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["BackendHealth", "StateUnavailable"]


class StateUnavailable(Exception):
    """The state backend cannot be used now: the caller carries on with local state."""


@dataclass(slots=True)
class BackendHealth:
    # Down until the first successful contact: a gateway started while Redis is away runs
    # local from its first request.
    up: bool = False
    since: float | None = None  # when the current state began (None: never contacted)
    errors: int = 0  # failed or timed-out calls, ever (a counter for /metrics)
    last_error: str | None = None
    _listeners: list[Callable[[bool], None]] = field(default_factory=list)

    def on_change(self, listener: Callable[[bool], None]) -> None:
        """Call `listener(up)` on every transition (on the event loop: keep it quick)."""
        self._listeners.append(listener)

    def failed(self, error: str, now: float) -> bool:
        """Count a failed call; True when it took the backend down (log it, once)."""
        self.errors += 1
        self.last_error = error
        return self._become(False, now)

    def reached(self, now: float) -> bool:
        """The backend answered; True when that brought it (back) up."""
        return self._become(True, now)

    def _become(self, up: bool, now: float) -> bool:
        if self.up == up and self.since is not None:
            return False
        first_contact = self.since is None
        self.up, self.since = up, now
        if up or not first_contact:  # a first failed contact is not news to resync on
            for listener in self._listeners:
                listener(up)
        return True
