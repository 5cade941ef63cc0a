"""The stream watchdog: our cancellation becomes a stall, anyone else's stays a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from tokenlane.routing.watchdog import StallWatchdog


async def _wait_forever(dog: StallWatchdog) -> str:
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    dog.waiting()
    try:
        await never
    except asyncio.CancelledError:
        if dog.stalled():
            return "stalled"
        raise
    finally:
        dog.done_waiting()
    return "unreachable"


async def test_a_wait_past_the_stall_timeout_is_a_stall() -> None:
    with StallWatchdog(0.01, None) as dog:
        assert await asyncio.wait_for(_wait_forever(dog), 30) == "stalled"


async def test_the_deadline_cuts_a_wait_short() -> None:
    deadline = asyncio.get_running_loop().time() + 0.01
    with StallWatchdog(3600, deadline) as dog:
        assert await asyncio.wait_for(_wait_forever(dog), 30) == "stalled"


async def test_someone_elses_cancellation_is_not_a_stall() -> None:
    with StallWatchdog(3600, None) as dog:
        task = asyncio.ensure_future(_wait_forever(dog))
        await asyncio.sleep(0)  # let it start waiting
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_no_limits_means_no_timer() -> None:
    with StallWatchdog(None, None) as dog:
        dog.waiting()
        assert dog._handle is None
        dog.done_waiting()
