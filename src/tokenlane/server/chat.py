"""`POST /v1/chat/completions`: the hot path, a `ModelEndpoint` (see endpoint.py).

The body is parsed into a `ChatRequest` (the routing options header included) and handed to
the engine: streamed back as SSE as the chunks come, or assembled into one chat.completion.
"""

from __future__ import annotations

from ..keys.admission import OPEN_GATE, Gate, OpenGate
from ..request import ChatRequest, parse_chat_request
from ..routing.engine import Engine
from .auth import Authenticator
from .drain import Drain
from .endpoint import Answered, ModelEndpoint, Streamed, route_headers, text
from .streaming import sse_body, sse_error

__all__ = ["CHAT_PATH", "ChatCompletions"]

CHAT_PATH = "/v1/chat/completions"


class ChatCompletions(ModelEndpoint):
    """The chat completions endpoint over `engine`."""

    def __init__(self, engine: Engine, auth: Authenticator, max_body_bytes: int,
                 drain: Drain, *, gate: Gate | OpenGate = OPEN_GATE) -> None:
        super().__init__(CHAT_PATH, auth, max_body_bytes, drain, engine.clock, gate=gate)
        self.engine = engine

    def parse(self, raw: bytes, headers: dict[bytes, bytes]) -> _ChatCall:
        return _ChatCall(self.engine, parse_chat_request(
            raw, text(headers.get(b"x-tokenlane-provider"))))


class _ChatCall:
    __slots__ = ("engine", "request")

    def __init__(self, engine: Engine, request: ChatRequest) -> None:
        self.engine = engine
        self.request = request

    async def stream(self) -> Streamed:
        stream = await self.engine.open(self.request)
        # sse_body closes the stream (and records the attempt) however it ends.
        return Streamed(stream, route_headers(stream.deployment.id, stream.decision),
                        sse_body(stream), sse_error, stream.aclose)

    async def complete(self) -> Answered:
        result = await self.engine.complete(self.request)
        return Answered(result, result.body, route_headers(result.deployment.id,
                                                           result.decision))
