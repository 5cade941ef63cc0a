"""Clocks: every measurement and every simulated delay reads time through one of these.

Injecting the clock is what lets tests drive time instead of sleeping: a simulated provider
and the gateway that measures it can share a `ManualClock`, so a 2-second TTFT is measured
as exactly 2 seconds and costs no wall time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "MonotonicClock"]


class Clock(Protocol):
    """A monotonic time source with a matching sleep."""

    def now(self) -> float:
        """Seconds on a monotonic scale (only differences are meaningful)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` as this clock counts them."""
        ...


class MonotonicClock:
    """Real time: `time.monotonic` and `asyncio.sleep`."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """Virtual time for tests: `sleep` advances the clock at once instead of waiting.

    Safe to share between threads (a gateway and a simulator on separate loopback servers).
    With one request in flight at a time the simulated delays are measured exactly; with
    several, their sleeps add up, which keeps results deterministic but not realistic.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward without a sleeper (ageing stats, expiring Retry-After)."""
        with self._lock:
            self._now += max(0.0, seconds)

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        # Yield so the sleeper still behaves like an await point for other tasks.
        await asyncio.sleep(0)
