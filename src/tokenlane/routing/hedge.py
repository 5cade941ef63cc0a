"""Hedging: a second attempt raced beside a first one slow to produce its first token.

`HedgeBudget` caps how many requests may hedge: a token bucket, every request adds `share` of
a token (up to a small burst), every hedge spends one. Deterministic, O(1), and it never lets
hedging double the load during an incident. `race` runs the attempts; the engine says when a
hedge is due (`hedge_delay`) and what an attempt is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

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

    Ties go to the first attempt. Every other attempt, still racing or done in the same pass,
    is closed (its spend recorded as a cancelled attempt, or as a timeout when it was
    overdue: that is news about the deployment). When all fail, the last failure is raised."""
    primary = asyncio.ensure_future(first())
    started = [primary]
    winner: asyncio.Future[S] | None = None
    try:
        await asyncio.wait(started, timeout=max(0.0, delay))
        if primary.done():  # the usual case: answered (or failed) before a hedge was due
            winner = primary
            return primary.result()
        second = backup()
        if second is not None:
            on_hedge("started")
            started.append(asyncio.ensure_future(second()))
        pending = set(started)
        failure: BaseException | None = None
        while pending:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in started:  # in start order: the primary wins a tie
                if task.done() and task.exception() is None:
                    winner = task
                    if task is not primary:
                        on_hedge("won")
                    return task.result()
                if task.done():
                    failure = task.exception()
        assert failure is not None
        raise failure
    finally:
        await _cancel_losers([t for t in started if t is not winner])


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
