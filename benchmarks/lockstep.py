"""An in-process httpx transport that runs an ASGI app in strict lockstep with its reader.

The routing benchmark shares one `ManualClock` between the simulator and the engine, so a
simulated second costs no wall time. That only measures right if the simulator cannot run
ahead: after it sends a token it must not sleep (advance the clock) for the next one until the
engine has read and stamped this one. This transport enforces exactly that: an ASGI body
`send` returns only once the reader has asked for the following piece, so every timestamp the
engine takes is the simulated time of the piece it is looking at. (httpx's own ASGITransport
buffers the whole response first, which would stamp every token at the end.)

One request at a time per clock: concurrent sleepers on a ManualClock add their sleeps up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx

__all__ = ["LockstepASGITransport"]


class _Exchange:
    """The hand-over point between the app's body sends and the response reader."""

    def __init__(self) -> None:
        self.cond = asyncio.Condition()
        self.pieces: list[bytes] = []
        self.requested = 0  # how many pieces the reader has asked for so far
        self.ended = False
        self.closed = False
        self.disconnected = asyncio.Event()

    async def deliver(self, piece: bytes, last: bool) -> None:
        async with self.cond:
            if piece:
                self.pieces.append(piece)
            self.ended = self.ended or last
            self.cond.notify_all()
            if last or not piece:
                return
            # Lockstep: come back only when the reader wants the piece after this one.
            await self.cond.wait_for(lambda: self.closed or self.requested > len(self.pieces))

    async def next_piece(self) -> bytes | None:
        async with self.cond:
            self.requested += 1
            index = self.requested - 1
            self.cond.notify_all()
            await self.cond.wait_for(lambda: len(self.pieces) > index or self.ended)
            return self.pieces[index] if len(self.pieces) > index else None

    async def close(self) -> None:
        async with self.cond:
            self.closed = True
            self.cond.notify_all()
        self.disconnected.set()


class _Body(httpx.AsyncByteStream):
    def __init__(self, exchange: _Exchange, task: asyncio.Task[None]) -> None:
        self._exchange = exchange
        self._task = task

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            piece = await self._exchange.next_piece()
            if piece is None:
                break
            yield piece
        if self._task.done() and not self._task.cancelled() and self._task.exception():
            raise httpx.ReadError(f"app failed mid-response: {self._task.exception()!r}")

    async def aclose(self) -> None:
        await self._exchange.close()
        if not self._task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=5)
            except TimeoutError:
                self._task.cancel()
        if self._task.done() and not self._task.cancelled():
            self._task.exception()  # retrieved: an app error after close is not reported


class LockstepASGITransport(httpx.AsyncBaseTransport):
    def __init__(self, app: Any) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        exchange = _Exchange()
        started: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = (
            asyncio.get_running_loop().create_future())
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": request.method, "scheme": request.url.scheme,
            "path": request.url.path, "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query, "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "client": ("127.0.0.1", 50000), "server": (request.url.host, request.url.port or 80),
        }
        body_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await exchange.disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                if not started.done():
                    started.set_result((message["status"], list(message.get("headers", []))))
            elif message["type"] == "http.response.body":
                await exchange.deliver(message.get("body", b""),
                                       last=not message.get("more_body", False))

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except Exception as exc:
                if started.done():
                    raise
                started.set_exception(exc)  # before any response: the caller gets it
            finally:
                async with exchange.cond:
                    exchange.ended = True
                    exchange.cond.notify_all()
                if not started.done():
                    started.set_exception(httpx.RemoteProtocolError("app sent no response"))

        task = asyncio.get_running_loop().create_task(run())
        status, headers = await started
        return httpx.Response(status, headers=headers, stream=_Body(exchange, task),
                              request=request)
