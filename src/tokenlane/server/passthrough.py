"""`POST /v1/embeddings` and `POST /v1/completions`: bodies passed through, routed by the engine.

A `ModelEndpoint` like chat (endpoint.py: authorize, read a bounded body, parse what routing
needs, admit the key), handed to `routing.passthrough` and presented with the decision
headers. The answer is the upstream's own body with the public model
name; a streamed completion is forwarded chunk by chunk and ends with OpenAI's error event if
the upstream breaks after its first text. Errors are OpenAI-shaped.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import orjson

from ..keys.admission import OPEN_GATE, Gate, OpenGate
from ..request import ChatRequest, json_object
from ..routing.passthrough import Passthrough, TextStream
from ..routing.stream import StreamBroken
from ..surfaces.passthrough import PASSTHROUGH_PATHS, passthrough_request
from .auth import Authenticator
from .drain import Drain
from .endpoint import Answered, ModelEndpoint, Streamed, route_headers, text
from .streaming import sse_error

__all__ = ["PassthroughEndpoint"]


class PassthroughEndpoint(ModelEndpoint):
    """Serves `/v1/<endpoint>` (embeddings or completions) over `passthrough`."""

    def __init__(self, endpoint: str, passthrough: Passthrough, auth: Authenticator,
                 max_body_bytes: int, drain: Drain, *, gate: Gate | OpenGate = OPEN_GATE
                 ) -> None:
        super().__init__(f"/v1/{PASSTHROUGH_PATHS[endpoint]}", auth, max_body_bytes, drain,
                         passthrough.engine.clock, gate=gate)
        self.endpoint = endpoint
        self.passthrough = passthrough

    def parse(self, raw: bytes, headers: dict[bytes, bytes]) -> _PassthroughCall:
        return _PassthroughCall(self.endpoint, self.passthrough, passthrough_request(
            self.endpoint, json_object(raw), text(headers.get(b"x-tokenlane-provider"))))


class _PassthroughCall:
    __slots__ = ("endpoint", "passthrough", "request")

    def __init__(self, endpoint: str, passthrough: Passthrough, request: ChatRequest) -> None:
        self.endpoint = endpoint
        self.passthrough = passthrough
        self.request = request

    async def stream(self) -> Streamed:
        stream = await self.passthrough.open_text(self.request)
        return Streamed(stream, route_headers(stream.deployment.id, stream.decision),
                        _events(stream, self.request.include_usage), sse_error, stream.aclose)

    async def complete(self) -> Answered:
        result = await (self.passthrough.embed(self.request) if self.endpoint == "embeddings"
                        else self.passthrough.complete_text(self.request))
        return Answered(result, result.body, route_headers(result.deployment.id,
                                                           result.decision))


async def _events(stream: TextStream, include_usage: bool) -> AsyncGenerator[bytes, None]:
    """SSE bytes of a streamed completion. The gateway asked upstream for usage (to measure);
    a client that did not ask gets none, as from the provider itself."""
    try:
        async for chunk in stream:
            if not include_usage:
                if not chunk["choices"]:
                    continue
                chunk.pop("usage", None)
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
        yield b"data: [DONE]\n\n"
    except StreamBroken as exc:
        # Text already reached the client: no fallback, no silent end. One error event.
        yield sse_error(exc)
