"""Hedging: a second attempt raced beside a first one slow to produce its first token.

`HedgeBudget` caps how many requests may hedge: a token bucket, every request adds `share` of
a token (up to a small burst), every hedge spends one. Deterministic, O(1), and it never lets
hedging double the load during an incident. `race` runs the attempts; the engine says when a
hedge is due (`hedge_delay`) and what an attempt is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

__all__ = ["HedgeBudget", "race"]


class _Closable(Protocol):
    async def aclose(self) -> None: ...


S = TypeVar("S", bound=_Closable)


class HedgeBudget:
    __slots__ = ("_tokens", "burst", "share")

    def __init__(self, share: float, burst: float = 3.0) -> None:
        self.share = share
        self.burst = burst
        self._tokens = min(1.0, burst) if share > 0 else 0.0

    def on_request(self) -> None:
        self._tokens = min(self.burst, self._tokens + self.share)

    def can_spend(self) -> bool:
        """Would `try_spend` succeed now? (Spends nothing.)"""
        return self._tokens >= 1.0

    def try_spend(self) -> bool:
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


async def race(first: Callable[[], Awaitable[S]], delay: float,
               backup: Callable[[], Callable[[], Awaitable[S]] | None],
               on_hedge: Callable[[str], None]) -> S:
    """`first()`'s stream, or, if it has none within `delay` seconds, the first of it and
    `backup()`'s (called then: None when there is no backup or no budget) to produce one.

    The first attempt runs in the caller's task, the backup (rare) in a task of its own: a
    request that needs no hedge, nearly all of them, costs a timer and no task, no wait and
    no loop pass (issue 17). A backup that has its stream while the first attempt has none
    wins: the first is cancelled (as `server.endpoint.unless` cancels, by cancelling this
    task and telling that cancellation from anyone else's). Every other attempt is closed (its
    spend recorded as a cancelled attempt, or as a timeout when it was overdue: that is news
    about the deployment). When all fail, the backup's failure is raised."""
    task = asyncio.current_task()
    assert task is not None
    hedge = _Hedge(task, backup, on_hedge)
    timer = asyncio.get_running_loop().call_later(max(0.0, delay), hedge.start)
    try:
        result = await first()
    except asyncio.CancelledError:
        hedge.first_done = True
        if hedge.interrupted and task.uncancel() == 0:  # the backup won; nobody else cancels
            on_hedge("won")
            return hedge.take()
        await hedge.cancel()
        raise
    except BaseException:
        hedge.first_done = True
        if hedge.second is None:
            raise
        if hedge.interrupted:  # failed while being cancelled for the backup's win
            task.uncancel()
        try:
            stream = await hedge.second
        except BaseException:
            await hedge.cancel()
            raise
        on_hedge("won")
        return stream
    finally:
        timer.cancel()
    hedge.first_done = True
    if hedge.interrupted:  # the first swallowed our cancellation and finished: it still wins
        task.uncancel()
    await hedge.cancel()
    return result


class _Hedge:
    """The backup side of one `race`: started by its timer, it cancels the racing task when
    it has its stream first."""

    __slots__ = ("_backup", "_on_hedge", "_task", "first_done", "interrupted", "second")

    def __init__(self, task: asyncio.Task[Any],
                 backup: Callable[[], Callable[[], Awaitable[Any]] | None],
                 on_hedge: Callable[[str], None]) -> None:
        self._task = task
        self._backup = backup
        self._on_hedge = on_hedge
        self.second: asyncio.Future[Any] | None = None
        self.first_done = False
        self.interrupted = False

    def start(self) -> None:
        if self.first_done:
            return
        attempt = self._backup()
        if attempt is None:
            return
        self._on_hedge("started")
        self.second = asyncio.ensure_future(attempt())
        self.second.add_done_callback(self._finished)

    def _finished(self, second: asyncio.Future[Any]) -> None:
        if second.cancelled() or second.exception() is not None:
            return  # the first attempt goes on alone (its failure, if any, is raised then)
        if not self.first_done:
            self.interrupted = True
            self._task.cancel()

    def take(self) -> Any:
        assert self.second is not None
        return self.second.result()

    async def cancel(self) -> None:
        """The backup lost: cancel it if still racing, close its stream if it has one."""
        if self.second is not None:
            await _cancel_losers([self.second])


async def _cancel_losers(tasks: list[asyncio.Future[S]]) -> None:
    """Cancel attempts still racing and close those that already got their first token (each
    records its spend as a cancelled attempt; failed ones are already recorded)."""
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    try:
        await asyncio.wait(tasks)  # let each finish its own clean-up
    finally:
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is None:
                await task.result().aclose()
