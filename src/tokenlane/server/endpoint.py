"""The steps every model endpoint takes, once: chat completions, the translated surfaces
(Messages, Responses) and the pass-through ones (embeddings, legacy completions).

Bare ASGI: every request of consequence comes through here, so it skips FastAPI's per-request
layers (routing, exception middleware, exit stacks, `Request` objects) and StreamingResponse's
task group: measured with `benchmarks/overhead.py`, that was 10-20% of the gateway's CPU per
request. The steps: POST only, authorize, JSON only, read a bounded body, parse it into a
`Call`, admit the key, then stream or answer whole, and settle the key's reservation however it
ended. What differs per endpoint is a `ModelEndpoint` subclass's `parse` (and how it
authorizes and shapes errors); anything unexpected is left to `RequestContextMiddleware`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import orjson
from starlette.types import Receive, Scope, Send

from ..clock import Clock
from ..errors import (
    BodyTooLarge,
    GatewayShuttingDown,
    MethodNotAllowed,
    TokenlaneError,
    UnsupportedMediaType,
)
from ..keys.admission import OPEN_GATE, Gate, OpenGate, request_id_of
from ..routing.decision import Decision
from .auth import Authenticator
from .drain import Drain

__all__ = ["Answered", "Call", "ClientGone", "Headers", "ModelEndpoint", "Streamed",
           "route_headers", "text"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Headers = list[tuple[bytes, bytes]]
# Resolved with the exception that ends a request early: ClientGone, GatewayShuttingDown.
Stop = asyncio.Future[BaseException]

_JSON: Headers = [(b"content-type", b"application/json")]
_SSE: Headers = [(b"content-type", b"text/event-stream; charset=utf-8"),
                 (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]


class ClientGone(asyncio.CancelledError):
    """The client disconnected; the work on its behalf (and its upstream request) is cancelled."""


@dataclass(slots=True)
class Streamed:
    """A call that streams: what the key's reservation settles against (`served`), the
    response's own headers, its SSE bytes, the final event if the drain cuts it short, and
    how to release it (a no-op once it ended)."""

    served: Any
    headers: Headers
    parts: AsyncGenerator[bytes, None]
    ending: Callable[[TokenlaneError], bytes]
    close: Callable[[], Awaitable[None]]


@dataclass(slots=True)
class Answered:
    """A call answered whole: `served` as above, the JSON body and its headers."""

    served: Any
    body: Any
    headers: Headers


class Call(Protocol):
    """One parsed request on its way to the engine. `request` is what admission reads (its
    `stream` picks the method called; its `received_at` is set here)."""

    request: Any

    async def stream(self) -> Streamed: ...

    async def complete(self) -> Answered: ...


class ModelEndpoint:
    """Serves `path`: authorized by `auth`, bodies up to `max_body_bytes`, ended early by
    `drain` at shutdown, a virtual key's limits applied by `gate`; `clock` stamps arrival."""

    path: str

    def __init__(self, path: str, auth: Authenticator, max_body_bytes: int, drain: Drain,
                 clock: Clock, *, gate: Gate | OpenGate = OPEN_GATE) -> None:
        self.path = path
        self.auth = auth
        self.max_body_bytes = max_body_bytes
        self.drain = drain
        self.clock = clock
        self.gate = gate  # a virtual key's limits (tokenlane.keys)

    # -- what an endpoint says -------------------------------------------------------------

    def authorize(self, headers: dict[bytes, bytes]) -> Any:
        """The request's key (None when auth is off); raises when it may not call."""
        return self.auth.check(text(headers.get(b"authorization")))

    def parse(self, raw: bytes, headers: dict[bytes, bytes]) -> Call | dict[str, Any]:
        """The call `raw` asks for, or (an endpoint that needs no model call, such as
        counting tokens) the answer itself. Raises TokenlaneError for a bad request."""
        raise NotImplementedError

    def error(self, exc: TokenlaneError) -> tuple[int, Any]:
        """(status, body) of an error, OpenAI-shaped unless the endpoint's API says other."""
        return exc.status, exc.to_body()

    # -- the steps -------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stop: Stop = asyncio.get_running_loop().create_future()
        self.drain.watch(stop)
        try:
            if scope["method"] != "POST":
                raise MethodNotAllowed(f"{scope['method']} {self.path}: use POST.")
            headers = dict(scope["headers"])
            key = self.authorize(headers)
            if not _is_json(headers.get(b"content-type")):
                # Anything else is what a web page can send cross-site without a preflight.
                raise UnsupportedMediaType(
                    "The request body must be JSON, sent with Content-Type: application/json.")
            received_at = self.clock.now()
            raw = await unless(stop, _read_body(receive, headers.get(b"content-length"),
                                                self.max_body_bytes))
            call = self.parse(raw, headers)
            if isinstance(call, dict):
                await _send_json(send, 200, call, ())
                return
            call.request.received_at = received_at
            # A key over its limits is refused here, before anything goes upstream.
            ticket = await self.gate.admit(key, call.request, request_id_of(scope), self.path)
            served = None
            # From here on, a disconnect cancels the work (and with it the upstream request).
            watcher = asyncio.ensure_future(_disconnected(receive, stop))
            try:
                if call.request.stream:
                    streamed = await unless(stop, call.stream())
                    served = streamed.served
                    try:
                        await send_stream(send, [*streamed.headers, *ticket.headers],
                                          streamed.parts, stop, streamed.ending)
                    finally:
                        await streamed.close()  # records the attempt however it ended
                else:
                    answered = await unless(stop, call.complete())
                    served = answered.served
                    await _send_json(send, 200, answered.body,
                                     [*answered.headers, *ticket.headers])
            finally:
                watcher.cancel()
                ticket.settle(served, sys.exc_info()[1])
        except TokenlaneError as exc:
            status, body = self.error(exc)
            extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers().items()]
            await _send_json(send, status, body, extra)
        except ClientGone as exc:
            # Routine, not an error: nobody is left to answer, and the upstream request was
            # cancelled with the work (its attempt recorded as cancelled).
            log.debug("%s", exc)
        finally:
            self.drain.forget(stop)


def text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def route_headers(deployment: str, decision: Decision | None) -> Headers:
    """Which deployment served, and why (the decision header)."""
    out = [(b"x-tokenlane-deployment", deployment.encode())]
    if decision is not None:
        out.append((b"x-tokenlane-route", decision.header().encode()))
    return out


def _is_json(content_type: bytes | None) -> bool:
    return content_type is not None and (
        content_type.partition(b";")[0].strip().lower() == b"application/json")


async def _send_json(send: Send, status: int, body: Any, headers: Iterable[tuple[bytes, bytes]]
                     ) -> None:
    data = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [*_JSON, (b"content-length", b"%d" % len(data)), *headers]})
    await send({"type": "http.response.body", "body": data})


async def send_stream(send: Send, headers: Headers, parts: AsyncGenerator[bytes, None],
                      stop: Stop, ending: Callable[[TokenlaneError], bytes]) -> None:
    """A 200 event stream (`_SSE` and `headers`) of `parts`, until `stop` says otherwise.

    A disconnect raises ClientGone. The drain running out (GatewayShuttingDown) ends a stream
    already under way with the bytes of `ending(exc)`, and is raised if no header went yet
    (the caller answers it)."""
    started = False

    async def pump() -> None:
        nonlocal started
        await send({"type": "http.response.start", "status": 200, "headers": [*_SSE, *headers]})
        started = True  # no suspension point between the headers' write and this
        async for part in parts:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    try:
        await unless(stop, pump())
    except GatewayShuttingDown as exc:
        if not started:
            raise
        await send({"type": "http.response.body", "body": ending(exc), "more_body": False})
    finally:
        await parts.aclose()


async def _read_body(receive: Receive, declared: bytes | None, limit: int) -> bytes:
    """The request body, refused as soon as it is known to exceed `limit` (before reading it
    all when Content-Length says so)."""
    too_large = BodyTooLarge(f"Request body is larger than the limit of {limit} bytes.")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    parts = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone("client disconnected while sending the body")
        part = message.get("body", b"")
        size += len(part)
        if size > limit:
            raise too_large
        parts.append(part)
        if not message.get("more_body", False):
            return b"".join(parts)


async def _disconnected(receive: Receive, stop: Stop) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    if not stop.done():
        stop.set_result(ClientGone("client disconnected"))


async def unless(stop: Stop, work: Awaitable[T]) -> T:
    """Run `work` in this task; if `stop` resolves first, cancel it and raise what `stop`
    holds (ClientGone when the client went away, GatewayShuttingDown when the drain ran out).

    Cancelling the running task from the future's callback, rather than racing a second task
    with `asyncio.wait`, saves a task and a wait per request on the hot path."""
    task = asyncio.current_task()
    assert task is not None
    state = {"active": True, "cancelled": False}

    def interrupt(_: Stop) -> None:
        if state["active"]:
            state["cancelled"] = True
            task.cancel()

    stop.add_done_callback(interrupt)
    try:
        result = await work
    except asyncio.CancelledError:
        if state["cancelled"] and task.uncancel() == 0:
            raise stop.result() from None
        raise
    finally:
        state["active"] = False
        stop.remove_done_callback(interrupt)
    if state["cancelled"]:  # `work` swallowed our cancellation and finished anyway
        task.uncancel()
        raise stop.result()
    return result
