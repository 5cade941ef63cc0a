"""ASGI responses that take time, and stop the moment the client goes away.

A real provider stops generating when its client disconnects; the simulator must too, or a
gateway test could not tell a cancelled upstream stream from one left running. Watching
`receive()` for `http.disconnect` catches it even during a long wait (a 30-second TTFT),
which failing `send()` calls would not: uvicorn silently drops sends to a closed connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, Literal

from starlette.types import Receive, Scope, Send

from ..clock import Clock

__all__ = [
    "DelayedJSONResponse",
    "EventStreamResponse",
    "Outcome",
    "ResetResponse",
    "SimulatedReset",
    "read_body",
    "reset_connection",
    "run_until_disconnect",
    "send_json",
]

Outcome = Literal["completed", "disconnected", "failed"]
"""How a reply ended: fully sent; cut off by the client leaving first; or its fault struck
(a reset, or broken bytes sent), whatever the client did afterwards."""

Finish = Callable[[Outcome], None]
"""Told once how a reply ended."""

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


class SimulatedReset(ConnectionResetError):
    """Raised where the connection cannot be reset for real (see `reset_connection`)."""


# How long to wait for the server to notice a connection we aborted (it always does, on the
# next turn of its event loop); a bound, not a delay.
_RESET_NOTICE_S = 1.0


async def reset_connection(send: Send, receive: Receive) -> None:
    """Abort the client's TCP connection with a reset (RST): no further byte, no clean end.

    ASGI has no message for this, so `_transport` reaches under it (uvicorn only). Where
    that finds no transport (another server, or a `send` wrapped by middleware) this raises
    `SimulatedReset` instead: the server then answers 500 if no response has started, or
    drops the connection mid-body if one has: a failure still, but not a reset.
    """
    transport = _transport(send)
    if transport is None:
        raise SimulatedReset("simulated connection reset (no transport to abort)")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Linger on, timeout 0: closing sends RST instead of FIN, as a crashed upstream or a
        # proxy killing the connection would.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # The server learns of the lost connection on its next loop turn; returning earlier
    # would make uvicorn log "returned without starting/completing response" and try a 500.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_disconnect(receive), _RESET_NOTICE_S)


def _transport(send: Send) -> asyncio.Transport | None:
    """The asyncio transport of the connection `send` answers on, if it can be found.

    The one hack in the simulator: uvicorn passes its per-request `RequestResponseCycle.send`
    as the ASGI `send`, a bound method whose object holds the connection's `transport`, in
    both its httptools and h11 protocol implementations (checked against uvicorn 0.54).
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    return transport if callable(getattr(transport, "abort", None)) else None


class EventStreamResponse:
    """`text/event-stream`: each `(delay, event)` sent as its own body part after its delay.

    `fault_at`: once that many events are sent the reply counts as failed (its fault put
    broken bytes on the wire), even if the client leaves afterwards. `reset`: after the last
    event, reset the connection instead of ending the body.
    """

    def __init__(
        self,
        events: Iterable[tuple[float, bytes]],
        clock: Clock,
        finish: Finish,
        *,
        waits: bool = True,
        fault_at: int | None = None,
        reset: bool = False,
        headers: Iterable[tuple[str, str]] = (),
    ):
        self._events = events if fault_at is None else self._watch(events, fault_at)
        self._headers = _SSE_HEADERS + tuple((k.encode(), v.encode()) for k, v in headers)
        self._clock = clock
        self._finish = finish
        # A reply with no delays never waits, so there is nothing for a disconnect to cut
        # short; skipping the watcher task keeps the zero-delay benchmark path lean.
        self._waits = waits
        self._faulty = fault_at is not None or reset
        self._reset = reset
        self._struck = False

    def _watch(
        self, events: Iterable[tuple[float, bytes]], count: int
    ) -> Iterator[tuple[float, bytes]]:
        for i, item in enumerate(events, start=1):
            yield item
            if i == count:  # resumed, so the fault's event has been sent
                self._struck = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        done = False
        try:
            if self._waits:
                done = await run_until_disconnect(self._stream(send), receive)
            else:
                with contextlib.suppress(OSError):  # ASGI 2.4: the client left
                    await self._stream(send)
                    done = True
            if done and self._reset:
                self._struck = True
                await reset_connection(send, receive)
        finally:
            if self._struck or (done and self._faulty):
                self._finish("failed")
            else:
                self._finish("completed" if done else "disconnected")

    async def _stream(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self._headers})
        sleep = self._clock.sleep
        for delay, event in self._events:
            if delay > 0:  # at zero delay, never touch the clock: benchmarks depend on it
                await sleep(delay)
            await send({"type": "http.response.body", "body": event, "more_body": True})
        if not self._reset:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _wait(delay: float, clock: Clock, receive: Receive) -> bool:
    """Wait `delay`; False if the client left first."""
    return delay <= 0 or await run_until_disconnect(clock.sleep(delay), receive)


class DelayedJSONResponse:
    """A JSON body sent after `delay` (the time a non-streamed reply takes to generate).

    `broken`: the body is a fault's (not JSON), so sending it counts as failed.
    """

    def __init__(
        self, body: bytes, delay: float, clock: Clock, finish: Finish, *, broken: bool = False,
        headers: Iterable[tuple[str, str]] = (),
    ):
        self._headers = tuple(headers)
        self._body = body
        self._delay = delay
        self._clock = clock
        self._finish = finish
        self._broken = broken

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        outcome: Outcome = "disconnected"
        try:
            if not await _wait(self._delay, self._clock, receive):
                return  # the client left while the reply was being "generated"
            await send_json(send, 200, self._body, self._headers)
            outcome = "failed" if self._broken else "completed"
        finally:
            self._finish(outcome)


class ResetResponse:
    """No response at all: the connection is reset (`reset_connection`) after `delay`."""

    def __init__(self, delay: float, clock: Clock, finish: Finish):
        self._delay = delay
        self._clock = clock
        self._finish = finish

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        outcome: Outcome = "disconnected"
        try:
            if not await _wait(self._delay, self._clock, receive):
                return
            outcome = "failed"
            await reset_connection(send, receive)
        finally:
            self._finish(outcome)
