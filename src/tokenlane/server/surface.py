"""One bare-ASGI endpoint for every translated surface (Anthropic Messages, OpenAI Responses).

The steps are the chat endpoint's (see `chat.py`, whose body reading and disconnect handling
this reuses): authorize, read a bounded body, parse, hand to the engine, present. What differs
per surface is behind `Surface`: how a body becomes a `ChatRequest`, how the engine's answer
is presented, and the shape errors take. A surface never plans or retries: the engine does.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncGenerator
from typing import Any, Protocol

import orjson
from starlette.types import Receive, Scope, Send

from ..errors import InvalidRequest, MethodNotAllowed, TokenlaneError, UnsupportedMediaType
from ..keys.admission import OPEN_GATE, Gate, OpenGate, request_id_of
from ..request import ChatRequest, chat_request_from_body
from ..routing.engine import Engine
from ..routing.stream import ChatStream, StreamBroken
from .auth import Authenticator
from .chat import (
    ClientGone,
    Stop,
    _disconnected,
    _is_json,
    _read_body,
    _route_headers,
    _send_json,
    _text,
    _unless,
    send_stream,
)
from .drain import Drain

__all__ = ["Presenter", "Surface", "SurfaceEndpoint", "chat_request"]

log = logging.getLogger(__name__)


class Presenter(Protocol):
    """Turns one request's engine output into the surface's response shape."""

    def complete(self, completion: dict[str, Any]) -> dict[str, Any]:
        """The response body for a finished (non-streamed) chat.completion."""
        ...

    def add(self, chunk: dict[str, Any]) -> bytes:
        """SSE bytes for one chat.completion.chunk (may be empty)."""
        ...

    def finish(self) -> bytes:
        """SSE bytes closing a stream that ended normally."""
        ...

    def broken(self, exc: TokenlaneError) -> bytes:
        """SSE bytes reporting a failure after output already reached the client."""
        ...


class Surface(Protocol):
    path: str

    def prepare(self, body: dict[str, Any], headers: dict[bytes, bytes]
                ) -> tuple[ChatRequest, Presenter] | dict[str, Any]:
        """A request for the engine and how to present its answer, or (for endpoints that
        need no model call, such as token counting) the answer itself. Raises
        TokenlaneError for a bad request."""
        ...

    def error(self, exc: TokenlaneError) -> tuple[int, dict[str, Any]]:
        """(status, body) of an error in the surface's own shape."""
        ...


class SurfaceEndpoint:
    """Serves `surface.path` over `engine`, guarded by `auth` (Bearer or x-api-key), ended
    early by `drain` at shutdown."""

    def __init__(self, surface: Surface, engine: Engine, auth: Authenticator,
                 max_body_bytes: int, drain: Drain, *, gate: Gate | OpenGate = OPEN_GATE
                 ) -> None:
        self.surface = surface
        self.engine = engine
        self.auth = auth
        self.max_body_bytes = max_body_bytes
        self.drain = drain
        self.gate = gate  # a virtual key's limits (tokenlane.keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stop: Stop = asyncio.get_running_loop().create_future()
        self.drain.watch(stop)
        try:
            if scope["method"] != "POST":
                raise MethodNotAllowed(f"{scope['method']} {self.surface.path}: use POST.")
            headers = dict(scope["headers"])
            key = self.auth.check(_text(headers.get(b"authorization")),
                                  x_api_key=_text(headers.get(b"x-api-key")))
            if not _is_json(headers.get(b"content-type")):
                # As for chat: anything else is what a web page can send cross-site unasked.
                raise UnsupportedMediaType(
                    "The request body must be JSON, sent with Content-Type: application/json.")
            received_at = self.engine.clock.now()
            raw = await _unless(stop, _read_body(receive, headers.get(b"content-length"),
                                                 self.max_body_bytes))
            prepared = self.surface.prepare(_json_object(raw), headers)
            if isinstance(prepared, dict):
                await _send_json(send, 200, prepared, ())
                return
            chat, presenter = prepared
            chat.received_at = received_at
            ticket = await self.gate.admit(key, chat, request_id_of(scope), self.surface.path)
            served = None
            watcher = asyncio.ensure_future(_disconnected(receive, stop))
            try:
                if chat.stream:
                    stream = served = await _unless(stop, self.engine.open(chat))
                    try:
                        await send_stream(send, [*_route_headers(stream.deployment.id,
                                                                 stream.decision),
                                                 *ticket.headers],
                                          _events(stream, presenter), stop, presenter.broken)
                    finally:
                        await stream.aclose()
                else:
                    result = served = await _unless(stop, self.engine.complete(chat))
                    await _send_json(send, 200, presenter.complete(result.body), [
                        *_route_headers(result.deployment.id, result.decision), *ticket.headers])
            finally:
                watcher.cancel()
                ticket.settle(served, sys.exc_info()[1])
        except TokenlaneError as exc:
            status, body = self.surface.error(exc)
            extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers().items()]
            await _send_json(send, status, body, extra)
        except ClientGone as exc:
            log.debug("%s", exc)
        finally:
            self.drain.forget(stop)


def chat_request(chat_body: dict[str, Any], headers: dict[bytes, bytes]) -> ChatRequest:
    """The engine's request for a translated body, routing options header included."""
    return chat_request_from_body(chat_body, _text(headers.get(b"x-tokenlane-provider")))


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


async def _events(stream: ChatStream, presenter: Presenter) -> AsyncGenerator[bytes, None]:
    """The surface's SSE bytes for `stream`, the closing event included."""
    try:
        async for batch in stream.batches():
            data = b"".join([presenter.add(chunk) for chunk in batch])
            if data:
                yield data
        tail = presenter.finish()
    except StreamBroken as exc:
        # Output already reached the client: no fallback, no silent end. One error event.
        tail = presenter.broken(exc)
    yield tail
