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
    With several requests in flight their sleeps add up: deterministic, not realistic.

    `lockstep=True` is for measuring across threads: a sleeper (the simulator) does not
    advance time until someone has read the clock since the previous advance (the gateway,
    stamping the token that advance produced). Otherwise the simulator, never really waiting,
    would race many tokens ahead of the reader and every timestamp would be late. The wait is
    bounded by `lockstep_timeout` real seconds, after which time advances anyway.
    """

    def __init__(
        self, start: float = 1000.0, *, lockstep: bool = False, lockstep_timeout: float = 5.0
    ) -> None:
        self._now = start
        self._reads = 1
        self._lockstep = lockstep
        self._timeout = lockstep_timeout
        self._cond = threading.Condition()

    def now(self) -> float:
        with self._cond:
            self._reads += 1
            self._cond.notify_all()
            return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward without a sleeper (ageing stats, expiring Retry-After)."""
        with self._cond:
            self._now += max(0.0, seconds)
            self._reads = 0

    async def sleep(self, seconds: float) -> None:
        if self._lockstep:
            await asyncio.to_thread(self._wait_for_reader)
        self.advance(seconds)
        # Yield so the sleeper still behaves like an await point for other tasks.
        await asyncio.sleep(0)

    def _wait_for_reader(self) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._reads > 0, timeout=self._timeout)
