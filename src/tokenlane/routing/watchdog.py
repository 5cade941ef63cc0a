"""A stall watchdog for one stream: one timer for the whole stream, not one per chunk.

`asyncio.timeout()` around every chunk schedules and cancels a timer each time; at a few hundred
chunks a second per stream that was a visible share of the gateway's CPU (see
`benchmarks/overhead.py`). Here a wait only notes the time it started. A single timer wakes up
when the earliest possible limit could have passed, checks, and either cancels the waiting task
or re-arms itself for the next possible limit.
"""

from __future__ import annotations

import asyncio
from typing import Self

__all__ = ["StallWatchdog"]


class StallWatchdog:
    """Cancel the waiting task when one wait lasts `stall_timeout` seconds or runs past
    `deadline` (event-loop time). Use as:

        with StallWatchdog(stall, deadline) as dog:
            dog.waiting()
            try:
                item = await next_item()
            except asyncio.CancelledError:
                if dog.stalled():
                    raise Stalled(...) from None
                raise
            finally:
                dog.done_waiting()
    """

    __slots__ = ("_deadline", "_fired", "_handle", "_loop", "_since", "_stall", "_task")

    def __init__(self, stall_timeout: float | None, deadline: float | None) -> None:
        self._stall = stall_timeout
        self._deadline = deadline
        self._loop = asyncio.get_running_loop()
        self._since: float | None = None
        self._task: asyncio.Task[object] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._fired = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def waiting(self) -> None:
        """A wait begins in the current task."""
        self._since = self._loop.time()
        if self._task is None:  # one stream is read by one task (its consumer) to its end
            self._task = asyncio.current_task(self._loop)
        if self._handle is None:
            self._arm(self._since)

    def done_waiting(self) -> None:
        self._since = None

    def stalled(self) -> bool:
        """Whether the cancellation being handled is ours (and not also someone else's)."""
        if not self._fired or self._task is None:
            return False
        self._fired = False
        return self._task.uncancel() == 0

    def _limit(self, since: float) -> float | None:
        at = None if self._stall is None else since + self._stall
        if self._deadline is not None:
            at = self._deadline if at is None else min(at, self._deadline)
        return at

    def _arm(self, since: float) -> None:
        at = self._limit(since)
        self._handle = None if at is None else self._loop.call_at(at, self._check)

    def _check(self) -> None:
        now = self._loop.time()
        since = self._since
        if since is None:
            # Not waiting now; the next wait starts no earlier than now.
            self._arm(now)
            return
        at = self._limit(since)
        if at is not None and now >= at and self._task is not None:
            self._handle = None
            self._fired = True
            self._task.cancel()
        else:
            self._arm(since)
