"""A first-token deadline that does not blame a provider for the gateway's own lag.

A saturated gateway runs its timers late and its reads later still: by the time a deadline's
timer runs, the first token may have sat in the socket for a while, its read queued behind the
same busy loop. Seen in `benchmarks/overhead.py` (512 paced streams on a loaded core): the
learned 1 s TTFT deadline fired on providers that had answered in 50 ms, and their circuits
opened, turning the gateway's overload into client 503s.

So when the timer runs more than `lag_s` late, the loop is what is slow: the wait gets that
lateness again (a few times at most, never past `limit`) before it is called a timeout. On a
loop that keeps up, this is `asyncio.timeout`, and it cancels the same way (its cancellation
told from anyone else's by the task's cancel count), without an `asyncio.timeout` inside: one
per attempt, that was 5.3 us where the timer alone is 3 (issue 17).
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

__all__ = ["LagTolerantTimeout"]

MIN_LAG_S = 0.05  # timers on a loop that keeps up run within a millisecond or two
EXTENSIONS = 3


class LagTolerantTimeout:
    """`async with LagTolerantTimeout(delay, limit):` raises TimeoutError once `delay` has
    passed on a loop that keeps up. `limit`: loop time no extension goes past."""

    __slots__ = ("_cancelling", "_expired", "_extensions", "_handle", "_lag", "_limit", "_loop",
                 "_task", "_when")

    def __init__(self, delay: float, limit: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._when = self._loop.time() + max(0.0, delay)
        self._limit = limit
        self._lag = max(MIN_LAG_S, 0.1 * delay)
        self._extensions = EXTENSIONS
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._expired = False

    async def __aenter__(self) -> Self:
        self._task = asyncio.current_task(self._loop)
        assert self._task is not None, "LagTolerantTimeout must be used inside a task"
        self._cancelling = self._task.cancelling()
        self._handle = self._loop.call_at(self._when, self._check)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> bool | None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._expired:
            self._expired = False
            assert self._task is not None
            # Ours, and only ours (no other cancel came in meanwhile): a timeout.
            if (self._task.uncancel() <= self._cancelling and exc_type is not None
                    and issubclass(exc_type, asyncio.CancelledError)):
                raise TimeoutError from exc
        return None

    @property
    def extended(self) -> int:
        """How many times the loop's lag bought the wait more time."""
        return EXTENSIONS - self._extensions

    def _check(self) -> None:
        now = self._loop.time()
        late = now - self._when
        if late > self._lag and self._extensions > 0 and now < self._limit:
            self._extensions -= 1
            self._when = min(now + late, self._limit)
            self._handle = self._loop.call_at(self._when, self._check)
            return
        self._handle = None
        self._expired = True  # expired: cancel the waiting task at once
        assert self._task is not None
        self._task.cancel()
