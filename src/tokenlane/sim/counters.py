"""What each simulated provider has done: the ground truth tests and benchmarks check against.

The simulator usually runs in another thread than the test reading it (uvicorn on loopback),
so every update happens under one lock, and a reader can block until a condition holds
(`wait`) instead of polling or sleeping.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["CounterBoard", "SimCounters"]


@dataclass(frozen=True, slots=True)
class SimCounters:
    """One provider's chat-completion tallies at one moment.

    Every request ends as exactly one of completed, disconnected or errors (`rate_limited`
    is the 429 part of `errors`); the rest are still running.
    """

    requests: int = 0
    # Fully sent, well formed (a stalled or trickling reply too, once it has all been sent).
    completed: int = 0
    # The client went away (or the server stopped) before the reply was fully sent, and
    # before any fault struck; the reply's generation was cancelled before this was counted.
    disconnected: int = 0
    # Answered with an HTTP error, or a fault struck: the connection was reset, or broken
    # bytes went out (an unparsable body or event, an error event, a truncated stream).
    errors: int = 0
    rate_limited: int = 0
    # The `traceparent` headers of the latest requests that carried one, oldest first (what
    # a tracing gateway propagated upstream).
    traceparents: tuple[str, ...] = ()

    @property
    def in_flight(self) -> int:
        return self.requests - self.completed - self.disconnected - self.errors


_TRACEPARENTS_KEPT = 64


class _Tally:
    __slots__ = ("completed", "disconnected", "errors", "rate_limited", "requests",
                 "traceparents")

    def __init__(self) -> None:
        self.requests = self.completed = self.disconnected = self.errors = self.rate_limited = 0
        self.traceparents: deque[str] = deque(maxlen=_TRACEPARENTS_KEPT)

    def snapshot(self) -> SimCounters:
        return SimCounters(
            self.requests, self.completed, self.disconnected, self.errors, self.rate_limited,
            tuple(self.traceparents),
        )


class CounterBoard:
    """Thread-safe counters for a fixed set of providers."""

    def __init__(self, names: Iterable[str]) -> None:
        self._changed = threading.Condition()
        self._tallies = {name: _Tally() for name in names}

    def request(self, name: str, traceparent: str | None = None) -> None:
        with self._changed:
            tally = self._tallies[name]
            tally.requests += 1
            if traceparent is not None:
                tally.traceparents.append(traceparent)
            self._changed.notify_all()

    def finished(self, name: str, completed: bool) -> None:
        """A successful reply ended: fully sent, or cut off by a disconnect."""
        with self._changed:
            tally = self._tallies[name]
            if completed:
                tally.completed += 1
            else:
                tally.disconnected += 1
            self._changed.notify_all()

    def error(self, name: str, status: int | None = None) -> None:
        """An error reply with HTTP `status`, or (None) a reply a fault broke on the wire."""
        with self._changed:
            tally = self._tallies[name]
            tally.errors += 1
            if status == 429:
                tally.rate_limited += 1
            self._changed.notify_all()

    def get(self, name: str) -> SimCounters:
        with self._changed:
            return self._tallies[name].snapshot()

    def all(self) -> dict[str, SimCounters]:
        with self._changed:
            return {name: tally.snapshot() for name, tally in self._tallies.items()}

    def wait(self, name: str, until: Callable[[SimCounters], bool], timeout: float) -> SimCounters:
        """Block until `until(counters)` holds; raise TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            tally = self._tallies[name]
            while not until(current := tally.snapshot()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"sim provider {name!r}: condition not met; now {current}")
                self._changed.wait(remaining)
            return current
