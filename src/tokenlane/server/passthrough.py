"""`POST /v1/embeddings` and `POST /v1/completions`: bodies passed through, routed by the engine.

Bare ASGI like the chat endpoint, and the same steps (whose helpers this reuses): authorize,
read a bounded body, parse what routing needs, admit the key, hand to `routing.passthrough`,
present with the decision headers. The answer is the upstream's own body with the public model
name; a streamed completion is forwarded chunk by chunk and ends with OpenAI's error event if
the upstream breaks after its first text. Errors are OpenAI-shaped.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncGenerator

import orjson
from starlette.types import Receive, Scope, Send

from ..errors import MethodNotAllowed, TokenlaneError, UnsupportedMediaType
from ..keys.admission import OPEN_GATE, Gate, OpenGate, request_id_of
from ..routing.passthrough import Passthrough, TextStream
from ..routing.stream import StreamBroken
from ..surfaces.passthrough import PASSTHROUGH_PATHS, passthrough_request
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
from .streaming import sse_error
from .surface import _json_object

__all__ = ["PassthroughEndpoint"]

log = logging.getLogger(__name__)


class PassthroughEndpoint:
    """Serves `/v1/<endpoint>` (embeddings or completions) over `passthrough`, guarded by
    `auth` and a key's limits (`gate`), bodies up to a limit, ended early by `drain`."""

    def __init__(self, endpoint: str, passthrough: Passthrough, auth: Authenticator,
                 max_body_bytes: int, drain: Drain, *, gate: Gate | OpenGate = OPEN_GATE
                 ) -> None:
        self.endpoint = endpoint
        self.path = f"/v1/{PASSTHROUGH_PATHS[endpoint]}"
        self.passthrough = passthrough
        self.auth = auth
        self.max_body_bytes = max_body_bytes
        self.drain = drain
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stop: Stop = asyncio.get_running_loop().create_future()
        self.drain.watch(stop)
        try:
            if scope["method"] != "POST":
                raise MethodNotAllowed(f"{scope['method']} {self.path}: use POST.")
            headers = dict(scope["headers"])
            key = self.auth.check(_text(headers.get(b"authorization")))
            if not _is_json(headers.get(b"content-type")):
                raise UnsupportedMediaType(
                    "The request body must be JSON, sent with Content-Type: application/json.")
            received_at = self.passthrough.engine.clock.now()
            raw = await _unless(stop, _read_body(receive, headers.get(b"content-length"),
                                                 self.max_body_bytes))
            request = passthrough_request(self.endpoint, _json_object(raw),
                                          _text(headers.get(b"x-tokenlane-provider")))
            request.received_at = received_at
            ticket = await self.gate.admit(key, request, request_id_of(scope), self.path)
            served = None
            watcher = asyncio.ensure_future(_disconnected(receive, stop))
            try:
                if request.stream:
                    stream = served = await _unless(stop, self.passthrough.open_text(request))
                    try:
                        await send_stream(send, [*_route_headers(stream.deployment.id,
                                                                 stream.decision),
                                                 *ticket.headers],
                                          _events(stream, request.include_usage), stop,
                                          sse_error)
                    finally:
                        await stream.aclose()
                else:
                    work = (self.passthrough.embed(request) if self.endpoint == "embeddings"
                            else self.passthrough.complete_text(request))
                    result = served = await _unless(stop, work)
                    await _send_json(send, 200, result.body, [
                        *_route_headers(result.deployment.id, result.decision), *ticket.headers])
            finally:
                watcher.cancel()
                ticket.settle(served, sys.exc_info()[1])
        except TokenlaneError as exc:
            extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers().items()]
            await _send_json(send, exc.status, exc.to_body(), extra)
        except ClientGone as exc:
            log.debug("%s", exc)
        finally:
            self.drain.forget(stop)


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
