"""ASGI responses that take time, and stop the moment the client goes away.

A real provider stops generating when its client disconnects; the simulator must too, or a
gateway test could not tell a cancelled upstream stream from one left running. Watching
`receive()` for `http.disconnect` catches it even during a long wait (a 30-second TTFT),
which failing `send()` calls would not: uvicorn silently drops sends to a closed connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.types import Receive, Scope, Send

from ..clock import Clock

__all__ = [
    "DelayedJSONResponse",
    "EventStreamResponse",
    "read_body",
    "run_until_disconnect",
    "send_json",
]

Finish = Callable[[bool], None]
"""Told once how a reply ended: True if fully sent, False if cut off."""

# Tuples: shared by every response, so nothing downstream may append to them.
_JSON_HEADERS = ((b"content-type", b"application/json"),)
_SSE_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    # Tells buffering reverse proxies (nginx) to pass events straight through.
    (b"x-accel-buffering", b"no"),
)


async def run_until_disconnect(work: Awaitable[Any], receive: Receive) -> bool:
    """Run `work` unless the client disconnects first; True if it ran to its end.

    On a disconnect `work` is cancelled and has finished unwinding before this returns.
    """
    work_task = asyncio.ensure_future(work)
    watch_task = asyncio.ensure_future(_disconnect(receive))
    try:
        await asyncio.wait((work_task, watch_task), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch_task.cancel()
        work_task.cancel()  # no-op if it already finished
        await asyncio.wait((work_task, watch_task))
    if work_task.cancelled():
        return False
    exc = work_task.exception()
    if exc is None:
        return True
    if isinstance(exc, OSError):  # ASGI 2.4 servers raise on a send to a closed connection
        return False
    raise exc


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None if the client disconnected while sending it."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_json(
    send: Send, status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()
) -> None:
    raw_headers = [
        *_JSON_HEADERS,
        (b"content-length", str(len(body)).encode()),
        *((key.encode(), value.encode()) for key, value in headers),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class EventStreamResponse:
    """`text/event-stream`: each `(delay, event)` sent as its own body part after its delay."""

    def __init__(
        self,
        events: Iterable[tuple[float, bytes]],
        clock: Clock,
        finish: Finish,
        *,
        waits: bool = True,
    ):
        self._events = events
        self._clock = clock
        self._finish = finish
        # A reply with no delays never waits, so there is nothing for a disconnect to cut
        # short; skipping the watcher task keeps the zero-delay benchmark path lean.
        self._waits = waits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        completed = False
        try:
            if self._waits:
                completed = await run_until_disconnect(self._stream(send), receive)
            else:
                with contextlib.suppress(OSError):  # ASGI 2.4: the client left
                    await self._stream(send)
                    completed = True
        finally:
            self._finish(completed)

    async def _stream(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        sleep = self._clock.sleep
        for delay, event in self._events:
            if delay > 0:  # at zero delay, never touch the clock: benchmarks depend on it
                await sleep(delay)
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class DelayedJSONResponse:
    """A JSON body sent after `delay` (the time a non-streamed reply takes to generate)."""

    def __init__(self, body: bytes, delay: float, clock: Clock, finish: Finish):
        self._body = body
        self._delay = delay
        self._clock = clock
        self._finish = finish

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        completed = False
        try:
            waited = self._delay <= 0 or await run_until_disconnect(
                self._clock.sleep(self._delay), receive
            )
            if not waited:
                return  # the client left while the reply was being "generated"
            await send_json(send, 200, self._body)
            completed = True
        finally:
            self._finish(completed)
