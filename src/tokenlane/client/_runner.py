"""The engine on its own event loop, in its own thread: how a `Router` is safe to use from any
thread and any event loop at once.

The engine's upstream clients (httpx over aiohttp) belong to the loop that first used them, and
its stats, circuits and hedge budget are plain objects with no locks. So every engine call runs
on one private loop, started on first use and stopped on close; callers hand work over with
`run_coroutine_threadsafe` and wait (sync) or await the wrapped future (async).

A stream is pumped on that loop as fast as the upstream delivers (so TTFT and decode speed are
measured on arrival, not when a slow consumer gets round to reading) into a queue the consumer
drains: a `queue.SimpleQueue` for a thread, an `asyncio.Queue` fed with `call_soon_threadsafe`
for another loop. Closing the stream cancels the pump, which closes the upstream. Answers are
small (kilobytes), so the queue is unbounded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ..routing.engine import Engine
from ..routing.probes import Prober
from ..routing.stream import ChatStream
from ..stats.observation import Observation

__all__ = ["AsyncQueueSource", "EngineRunner", "ThreadQueueSource"]

log = logging.getLogger("tokenlane.client")

T = TypeVar("T")
Work = Callable[[], Coroutine[Any, Any, T]]
Put = Callable[[object], None]

_END = object()
_CLOSED_MESSAGE = "the router was closed"


class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _ConsumerGone(Exception):
    """The consumer's event loop is closed: nobody will read what the pump produces."""


class EngineRunner:
    """Owns the engine, the loop thread and everything running on it."""

    def __init__(self, engine: Engine, prober: Prober | None, name: str = "tokenlane-router"):
        self.engine = engine
        self._prober = prober
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._tasks: set[asyncio.Task[Any]] = set()  # touched on the loop thread only

    # -- the loop ---------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The loop, started if need be (call with the lock held)."""
        if self._closed:
            raise RuntimeError("Cannot route a request: the router has been closed.")
        if self._loop is None:
            loop = asyncio.new_event_loop()
            started = threading.Event()
            thread = threading.Thread(target=self._run, args=(loop, started),
                                      name=self._name, daemon=True)
            thread.start()
            started.wait()
            self._loop, self._thread = loop, thread
        return self._loop

    def _run(self, loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        if self._prober is not None and self._prober.settings.enabled:
            self._track(loop.create_task(self._prober.run()))
        loop.call_soon(started.set)
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    def on_loop_thread(self) -> bool:
        thread = self._thread
        return thread is not None and thread.ident == threading.get_ident()

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _tracked(self, work: Work[T]) -> T:
        task = asyncio.current_task()
        assert task is not None
        self._track(task)
        return await work()

    def submit(self, work: Work[T]) -> concurrent.futures.Future[T]:
        """Start `work()` on the loop (starting the loop if need be)."""
        # Scheduled under the lock that `close` takes first: work submitted before close is
        # queued ahead of the shutdown (which cancels it), none can be queued after it.
        with self._lock:
            loop = self._running_loop()
            return asyncio.run_coroutine_threadsafe(self._tracked(work), loop)

    def call(self, work: Work[T]) -> T:
        """Run `work()` on the loop and wait for its result (from any thread but the loop's)."""
        if self.on_loop_thread():
            raise RuntimeError("Router.chat() blocks: from the router's own loop (an "
                               "on_observation callback) it would wait forever")
        future = self.submit(work)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise RuntimeError(_CLOSED_MESSAGE) from None
        finally:
            future.cancel()  # interrupted while waiting (KeyboardInterrupt): stop the work too

    async def acall(self, work: Work[T]) -> T:
        """Run `work()` on the loop and await its result from any other loop."""
        future = asyncio.wrap_future(self.submit(work))
        try:
            return await future
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # our caller was cancelled (wrap_future cancelled the work too)
            raise RuntimeError(_CLOSED_MESSAGE) from None

    # -- streams ----------------------------------------------------------------------------

    async def open_stream(self, request: Any, source: _QueueSource) -> ChatStream:
        """Open on the engine, then pump the stream into `source` from a task of its own."""
        stream = await self.engine.open(request)
        task = asyncio.get_running_loop().create_task(_pump(stream, source.put))
        self._track(task)
        source.attach(stream, task)
        return stream

    def cancel_soon(self, task: asyncio.Task[None]) -> None:
        """Cancel a pump without waiting (a stream dropped without being closed)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(task.cancel)

    async def cancel_and_wait(self, task: asyncio.Task[None]) -> None:
        """Cancel a pump and wait until it closed its upstream (runs on the loop)."""
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # -- shutdown ---------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.engine.aclose()

    def close(self, timeout: float = 30.0) -> None:
        """Cancel what runs, close the upstream clients, stop the loop and join its thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return  # never started: no connection was ever opened
        if thread.ident == threading.get_ident():
            raise RuntimeError("a router cannot be closed from its own loop")
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout)
        except Exception:  # closing must not fail half-way
            log.warning("router shutdown did not finish cleanly", exc_info=True)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)

    async def aclose(self) -> None:
        """`close()` without blocking the caller's loop."""
        await asyncio.to_thread(self.close)


async def _pump(stream: ChatStream, put: Put) -> None:
    try:
        try:
            async for chunk in stream:
                put(chunk)
        except asyncio.CancelledError:
            put(_Failure(RuntimeError(_CLOSED_MESSAGE)))
            raise
        except Exception as exc:  # noqa: BLE001 - StreamBroken mostly; the consumer raises it
            put(_Failure(exc))
        else:
            put(_END)
    except _ConsumerGone:
        pass
    finally:
        await stream.aclose()


def _unpack(item: object) -> dict[str, Any] | None:
    if item is _END:
        return None
    if isinstance(item, _Failure):
        raise item.exc
    assert isinstance(item, dict)
    return item


class _QueueSource:
    """What both consumer-side sources share: the pump's task, the stream, the finalizer.

    `put` closes over the queue only, never over the source, so a source dropped without
    being closed is collected while its pump still runs, and its finalizer stops the pump.
    `owner` (the Router) is kept alive by the source: a stream outliving every other
    reference to its router must not see the router finalized under it.
    """

    put: Put

    def __init__(self, runner: EngineRunner, owner: object) -> None:
        self._runner = runner
        self._owner = owner
        self._stream: ChatStream | None = None
        self._task: asyncio.Task[None] | None = None
        self._finished = False

    def attach(self, stream: ChatStream, task: asyncio.Task[None]) -> None:
        """Called on the router's loop as soon as the pump exists, so that a consumer that
        gave up waiting for it (cancelled, interrupted) still stops it by dropping us."""
        self._stream, self._task = stream, task
        weakref.finalize(self, self._runner.cancel_soon, task)

    @property
    def observation(self) -> Observation | None:
        return self._stream.observation if self._stream is not None else None

    def _take(self, item: object) -> dict[str, Any] | None:
        self._finished = item is _END or isinstance(item, _Failure)
        return _unpack(item)

    def _pump_to_stop(self) -> asyncio.Task[None] | None:
        task = self._task
        if self._finished or task is None or self._runner.closed:
            return None
        self._finished = True
        return task


class ThreadQueueSource(_QueueSource):
    """A stream's chunks for a consumer thread (`Stream`'s source)."""

    def __init__(self, runner: EngineRunner, owner: object) -> None:
        super().__init__(runner, owner)
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.put = self._queue.put

    def next_chunk(self) -> dict[str, Any] | None:
        return self._take(self._queue.get())

    def close(self) -> None:
        task = self._pump_to_stop()
        if task is None:
            return
        if self._runner.on_loop_thread():
            task.cancel()
            return
        with contextlib.suppress(RuntimeError):  # the router closed, which cancelled the pump
            self._runner.call(lambda: self._runner.cancel_and_wait(task))


class AsyncQueueSource(_QueueSource):
    """A stream's chunks for a consumer on another event loop (`AsyncStream`'s source)."""

    def __init__(self, runner: EngineRunner, owner: object) -> None:
        super().__init__(runner, owner)
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self.put = _threadsafe_put(asyncio.get_running_loop(), self._queue)

    async def next_chunk(self) -> dict[str, Any] | None:
        return self._take(await self._queue.get())

    async def aclose(self) -> None:
        task = self._pump_to_stop()
        if task is None:
            return
        with contextlib.suppress(RuntimeError):  # the router closed, which cancelled the pump
            await self._runner.acall(lambda: self._runner.cancel_and_wait(task))


def _threadsafe_put(loop: asyncio.AbstractEventLoop, into: asyncio.Queue[object]) -> Put:
    def put(item: object) -> None:
        """Called on the router's loop: hand `item` to the consumer's loop."""
        try:
            loop.call_soon_threadsafe(into.put_nowait, item)
        except RuntimeError:  # that loop is closed: nobody will read
            raise _ConsumerGone from None

    return put
