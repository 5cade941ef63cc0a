"""One endpoint for every translated surface (Anthropic Messages, OpenAI Responses).

A `ModelEndpoint` (see endpoint.py: authorize, read a bounded body, parse, admit, hand to the
engine, present). What differs per surface is behind `Surface`: how a body becomes a
`ChatRequest`, how the engine's answer is presented, and the shape errors take. A surface
never plans or retries: the engine does.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Protocol

from ..errors import TokenlaneError
from ..keys.admission import OPEN_GATE, Gate, OpenGate
from ..request import ChatRequest, chat_request_from_body, json_object
from ..routing.engine import Engine
from ..routing.stream import ChatStream, StreamBroken
from .auth import Authenticator
from .drain import Drain
from .endpoint import Answered, ModelEndpoint, Streamed, route_headers, text

__all__ = ["Presenter", "Surface", "SurfaceEndpoint", "chat_request"]


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


class SurfaceEndpoint(ModelEndpoint):
    """Serves `surface.path` over `engine`; a key may come as Bearer or as `x-api-key`."""

    def __init__(self, surface: Surface, engine: Engine, auth: Authenticator,
                 max_body_bytes: int, drain: Drain, *, gate: Gate | OpenGate = OPEN_GATE
                 ) -> None:
        super().__init__(surface.path, auth, max_body_bytes, drain, engine.clock, gate=gate)
        self.surface = surface
        self.engine = engine

    def authorize(self, headers: dict[bytes, bytes]) -> Any:
        return self.auth.check(text(headers.get(b"authorization")),
                               x_api_key=text(headers.get(b"x-api-key")))

    def parse(self, raw: bytes, headers: dict[bytes, bytes]) -> _SurfaceCall | dict[str, Any]:
        prepared = self.surface.prepare(json_object(raw), headers)
        if isinstance(prepared, dict):
            return prepared
        chat, presenter = prepared
        return _SurfaceCall(self.engine, chat, presenter)

    def error(self, exc: TokenlaneError) -> tuple[int, Any]:
        return self.surface.error(exc)


class _SurfaceCall:
    __slots__ = ("engine", "presenter", "request")

    def __init__(self, engine: Engine, request: ChatRequest, presenter: Presenter) -> None:
        self.engine = engine
        self.request = request
        self.presenter = presenter

    async def stream(self) -> Streamed:
        stream = await self.engine.open(self.request)
        return Streamed(stream, route_headers(stream.deployment.id, stream.decision),
                        _events(stream, self.presenter), self.presenter.broken, stream.aclose)

    async def complete(self) -> Answered:
        result = await self.engine.complete(self.request)
        return Answered(result, self.presenter.complete(result.body),
                        route_headers(result.deployment.id, result.decision))


def chat_request(chat_body: dict[str, Any], headers: dict[bytes, bytes]) -> ChatRequest:
    """The engine's request for a translated body, routing options header included."""
    return chat_request_from_body(chat_body, text(headers.get(b"x-tokenlane-provider")))


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
