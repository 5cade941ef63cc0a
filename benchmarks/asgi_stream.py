"""An in-process httpx transport that streams an ASGI app's body pieces as they are sent.

httpx's own `ASGITransport` runs the app to its end and buffers the whole body, so a reader
would see every token of a stream at the moment of the last one. This one hands each
`http.response.body` piece to the reader as it is sent, and tells the app the client left
(`http.disconnect`) when the reader closes the response early, as a socket would.

Meant for `virtual_time.VirtualTimeLoop`: no sockets, so nothing the loop would have to wait
for, and every piece is read at the (virtual) instant it was sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx

__all__ = ["StreamingASGITransport"]

_END = b""  # queued once the app has finished sending (or failed); real pieces are never empty


class _Body(httpx.AsyncByteStream):
    def __init__(self, pieces: asyncio.Queue[bytes], left: asyncio.Event,
                 task: asyncio.Task[None]) -> None:
        self._pieces = pieces
        self._left = left
        self._task = task

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            piece = await self._pieces.get()
            if not piece:
                break
            yield piece
        await asyncio.wait((self._task,))
        if not self._task.cancelled() and self._task.exception() is not None:
            # Sent headers, then failed (a simulated reset mid-body): the connection is lost.
            raise httpx.ReadError(f"connection lost: {self._task.exception()!r}")

    async def aclose(self) -> None:
        self._left.set()  # the app's next receive() is http.disconnect
        await asyncio.wait((self._task,))
        if not self._task.cancelled():
            self._task.exception()  # retrieved: a failure after the client left is nobody's


class StreamingASGITransport(httpx.AsyncBaseTransport):
    def __init__(self, app: Any) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        loop = asyncio.get_running_loop()
        started: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = loop.create_future()
        pieces: asyncio.Queue[bytes] = asyncio.Queue()
        left = asyncio.Event()
        body_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await left.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if left.is_set():
                raise OSError("client disconnected")  # as ASGI 2.4 servers do
            if message["type"] == "http.response.start":
                started.set_result((message["status"], list(message.get("headers", []))))
            elif message["type"] == "http.response.body":
                piece = message.get("body", b"")
                if piece:
                    pieces.put_nowait(piece)
                if not message.get("more_body", False):
                    pieces.put_nowait(_END)

        async def run() -> None:
            try:
                await self.app(scope(request), receive, send)
            except BaseException as exc:
                if not started.done():
                    started.set_exception(httpx.RemoteProtocolError(
                        f"no response: {exc!r}"))
                    return
                raise
            finally:
                if not started.done():
                    started.set_exception(httpx.RemoteProtocolError("app sent no response"))
                pieces.put_nowait(_END)

        task = loop.create_task(run())
        try:
            status, headers = await started
        except BaseException:
            left.set()
            await asyncio.wait((task,))
            raise
        return httpx.Response(status, headers=headers, stream=_Body(pieces, left, task),
                              request=request)


def scope(request: httpx.Request) -> dict[str, Any]:
    """The ASGI HTTP scope of `request`."""
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": request.method, "scheme": request.url.scheme,
        "path": request.url.path, "raw_path": request.url.raw_path.split(b"?")[0],
        "query_string": request.url.query, "root_path": "",
        "headers": [(k.lower(), v) for k, v in request.headers.raw],
        "client": ("127.0.0.1", 50000), "server": (request.url.host, request.url.port or 80),
    }
