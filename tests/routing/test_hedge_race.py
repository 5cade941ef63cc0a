"""`hedge.race` on its own: the first attempt runs in the caller's task, the backup in one of
its own; attempts here are plain coroutines that finish when the test says (events, no
timing), so every ordering is exact."""

from __future__ import annotations

import asyncio

import pytest

from tokenlane.routing.hedge import race


class Stream:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


class Attempt:
    """An attempt that gets its stream (or fails) when `go` is set; notes being cancelled."""

    def __init__(self, name: str, fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.go = asyncio.Event()
        self.started = asyncio.Event()
        self.cancelled = False
        self.stream: Stream | None = None

    async def __call__(self) -> Stream:
        self.started.set()
        try:
            await self.go.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if self.fail:
            raise RuntimeError(f"{self.name} failed")
        self.stream = Stream(self.name)
        return self.stream


def hedging(backup: Attempt | None, calls: list[str]):  # type: ignore[no-untyped-def]
    def take() -> Attempt | None:
        calls.append("backup asked")
        return backup

    return take


async def test_a_first_attempt_done_before_the_delay_asks_for_no_backup() -> None:
    first, events, calls = Attempt("first"), [], []
    first.go.set()
    stream = await race(first, 60.0, hedging(Attempt("backup"), calls), events.append)
    assert stream.name == "first" and calls == [] and events == []
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_backup_with_its_stream_first_wins_and_the_first_is_cancelled() -> None:
    first, backup, events = Attempt("first"), Attempt("backup"), []
    racing = asyncio.ensure_future(race(first, 0.0, hedging(backup, []), events.append))
    await backup.started.wait()
    backup.go.set()
    stream = await racing
    assert stream.name == "backup" and first.cancelled and events == ["started", "won"]
    assert racing.cancelling() == 0  # our own cancellation was taken back


async def test_the_caller_can_time_out_after_a_backup_won() -> None:
    # The cancellation race uses must not linger on the task: an asyncio.timeout after it
    # still tells its own expiry from someone else's cancel.
    first, backup = Attempt("first"), Attempt("backup")

    async def serve() -> str:
        stream = await race(first, 0.0, hedging(backup, []), lambda _: None)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):
                await asyncio.Event().wait()
        return stream.name

    serving = asyncio.ensure_future(serve())
    await backup.started.wait()
    backup.go.set()
    assert await serving == "backup"


async def test_a_first_attempt_that_wins_after_the_hedge_closes_nothing_of_its_own() -> None:
    first, backup, events = Attempt("first"), Attempt("backup"), []
    racing = asyncio.ensure_future(race(first, 0.0, hedging(backup, []), events.append))
    await backup.started.wait()
    first.go.set()
    stream = await racing
    assert stream.name == "first" and not stream.closed
    assert backup.cancelled and events == ["started"]


async def test_a_failed_first_attempt_waits_for_the_backup() -> None:
    first, backup, events = Attempt("first", fail=True), Attempt("backup"), []
    racing = asyncio.ensure_future(race(first, 0.0, hedging(backup, []), events.append))
    await backup.started.wait()
    first.go.set()
    for _ in range(5):  # the first attempt's failure is in, the race still waits
        await asyncio.sleep(0)
    assert not racing.done()
    backup.go.set()
    assert (await racing).name == "backup" and events == ["started", "won"]


async def test_when_both_fail_the_backups_failure_is_raised() -> None:
    first, backup = Attempt("first", fail=True), Attempt("backup", fail=True)
    racing = asyncio.ensure_future(race(first, 0.0, hedging(backup, []), lambda _: None))
    await backup.started.wait()
    backup.go.set()
    first.go.set()
    with pytest.raises(RuntimeError, match="backup failed"):
        await racing


async def test_no_backup_to_start_leaves_the_first_alone() -> None:
    first, calls = Attempt("first", fail=True), []
    racing = asyncio.ensure_future(race(first, 0.0, hedging(None, calls), lambda _: None))
    await first.started.wait()
    for _ in range(5):  # the hedge's timer runs and finds no backup
        if calls:
            break
        await asyncio.sleep(0)
    assert calls == ["backup asked"]
    first.go.set()
    with pytest.raises(RuntimeError, match="first failed"):
        await racing


async def test_cancelling_the_caller_cancels_both_attempts() -> None:
    first, backup = Attempt("first"), Attempt("backup")
    racing = asyncio.ensure_future(race(first, 0.0, hedging(backup, []), lambda _: None))
    await backup.started.wait()
    racing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await racing
    assert first.cancelled and backup.cancelled


async def test_a_backup_that_won_while_the_caller_was_cancelled_is_closed() -> None:
    # Both cancellations land in one pass: the caller's wins, and the backup's stream,
    # already open, is closed rather than leaked.
    first, backup = Attempt("first"), Attempt("backup")
    racing = asyncio.ensure_future(race(first, 0.0, hedging(backup, []), lambda _: None))
    await backup.started.wait()
    backup.go.set()
    racing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await racing
    assert first.cancelled
    assert backup.stream is not None and backup.stream.closed
