"""The first-token deadline forgives the gateway's own lag, and only that."""

from __future__ import annotations

import asyncio
import time

import pytest

from tokenlane.routing.lag import EXTENSIONS, LagTolerantTimeout


def test_an_answer_queued_behind_a_stuck_loop_is_not_a_timeout() -> None:
    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[int] = loop.create_future()
        # The answer arrives at 0.05 s, but the loop is stuck (0.3 s of blocking work) from
        # 0.04 s: the answer's wake-up and the 0.1 s deadline come due in the same pass.
        loop.call_later(0.04, time.sleep, 0.3)
        loop.call_later(0.05, answer.set_result, 7)
        async with LagTolerantTimeout(0.1, loop.time() + 10) as deadline:
            value = await answer
        return value, deadline.extended

    # (asyncio.timeout raises here: its expiry runs in the same pass as the answer's wake-up,
    # before it. If the machine delays the stuck callback itself, the wake-up comes first and
    # no extension is needed: `extended` may be 0 or more, the answer is served either way.)
    value, _ = asyncio.run(main())
    assert value == 7


def test_a_silent_upstream_still_times_out() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(TimeoutError):
            async with LagTolerantTimeout(0.05, start + 10):
                await loop.create_future()  # never answered
        return loop.time() - start

    assert asyncio.run(main()) >= 0.05


def test_a_stuck_loop_buys_a_bounded_number_of_extensions() -> None:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        loop.call_later(0.01, time.sleep, 0.2)  # the first check runs ~0.16 s late
        deadline = LagTolerantTimeout(0.05, loop.time() + 10)
        with pytest.raises(TimeoutError):
            async with deadline:
                await loop.create_future()
        return deadline.extended

    assert 1 <= asyncio.run(main()) <= EXTENSIONS


def test_no_extension_goes_past_the_limit() -> None:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        loop.call_later(0.01, time.sleep, 0.2)  # the first check runs past the limit
        deadline = LagTolerantTimeout(0.05, loop.time() + 0.1)
        with pytest.raises(TimeoutError):
            async with deadline:
                await loop.create_future()
        return deadline.extended

    assert asyncio.run(main()) == 0


def test_a_timeout_leaves_the_tasks_cancel_count_as_it_was() -> None:
    # It cancels the task to end the wait and takes that back on the way out: an
    # asyncio.timeout after it still tells its own expiry.
    async def main() -> int:
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            async with LagTolerantTimeout(0.0, loop.time() + 10):
                await loop.create_future()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):
                await loop.create_future()
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()

    assert asyncio.run(main()) == 0


def test_someone_elses_cancel_is_not_a_timeout() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        waiting = asyncio.Event()

        async def wait() -> None:
            async with LagTolerantTimeout(60.0, loop.time() + 120):
                waiting.set()
                await loop.create_future()

        task = asyncio.ensure_future(wait())
        await waiting.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
