"""A server span per client request on the model-calling paths, continuing the client's trace.

`ServerSpans` is pure-ASGI middleware around the whole app: it reads `traceparent` (W3C
trace context) from the request, opens the span as the current one for the request's task
(the engine's attempt spans become its children), notes the response status and ends it when
the last byte has gone, streams included. `TracedGate` wraps the admission gate every
surface already calls once the request is parsed (server/served.py does the same), to name
the span after the operation and model and, at settlement, say who answered and why.

Only the paths given are traced: a dashboard polling every second or a Prometheus scrape is
not a trace anyone wants.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from opentelemetry import context, trace
from opentelemetry.propagators.textmap import Getter, TextMapPropagator
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import TokenlaneError
from ..keys.records import VirtualKey
from ..request import ChatRequest
from .genai import operation_of, request_attributes, served_attributes

__all__ = ["ServerSpans", "TracedGate"]

AsgiHeaders = list[tuple[bytes, bytes]]


class _HeaderGetter(Getter[AsgiHeaders]):
    """Reads a propagator's fields from ASGI's header list (names arrive lower-cased)."""

    def get(self, carrier: AsgiHeaders, key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        values = [v.decode("latin-1") for n, v in carrier if n == name]
        return values or None

    def keys(self, carrier: AsgiHeaders) -> list[str]:
        return [n.decode("latin-1") for n, _ in carrier]


_GETTER = _HeaderGetter()


class ServerSpans:
    def __init__(self, app: ASGIApp, tracer: Tracer, propagator: TextMapPropagator,
                 paths: Iterable[str]) -> None:
        self.app = app
        self._tracer = tracer
        self._propagator = propagator
        self._paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self._paths:
            await self.app(scope, receive, send)
            return
        parent = self._propagator.extract(scope["headers"], getter=_GETTER)
        method, path = scope["method"], scope["path"]
        attributes: dict[str, Any] = {"http.request.method": method, "url.path": path,
                                      "url.scheme": scope.get("scheme", "http")}
        if client := scope.get("client"):
            attributes["client.address"] = client[0]
        span = self._tracer.start_span(f"{method} {path}", context=parent,
                                       kind=SpanKind.SERVER, attributes=attributes)
        token = context.attach(trace.set_span_in_context(span, parent))
        status = 0

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            if status:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:  # a 4xx is the client's error, not the server's
                    span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
            context.detach(token)
            span.end()


class TracedGate:
    """Admits as `gate` does, and writes the request's GenAI identity and its outcome on
    the current (server) span."""

    def __init__(self, gate: Any) -> None:
        self._gate = gate

    async def admit(self, key: VirtualKey | None, chat: ChatRequest, request_id: str,
                    surface: str) -> _TracedTicket:
        span = trace.get_current_span()
        if span.is_recording():
            operation = operation_of(surface)
            span.update_name(f"{operation} {chat.model}")
            span.set_attributes(request_attributes(chat, operation))
            span.set_attribute("tokenlane.surface", surface)
            if request_id:
                span.set_attribute("tokenlane.request_id", request_id)
            if key is not None:
                span.set_attribute("tokenlane.key_id", key.id)  # the id, never the secret
        try:
            ticket = await self._gate.admit(key, chat, request_id, surface)
        except TokenlaneError as exc:
            _failed(span, exc)
            raise
        return _TracedTicket(ticket, span)


class _TracedTicket:
    __slots__ = ("_span", "_ticket")

    def __init__(self, ticket: Any, span: trace.Span) -> None:
        self._ticket = ticket
        self._span = span

    @property
    def headers(self) -> tuple[tuple[bytes, bytes], ...]:
        return self._ticket.headers  # type: ignore[no-any-return]

    def settle(self, served: Any, error: BaseException | None = None) -> None:
        self._ticket.settle(served, error)
        span = self._span
        if not span.is_recording():
            return
        attributes = served_attributes(served)
        span.set_attributes(attributes)
        if isinstance(error, TokenlaneError):
            _failed(span, error)
        elif isinstance(error, asyncio.CancelledError):
            span.set_attribute("error.type", "client_closed")
        elif attributes.get("tokenlane.outcome") not in (None, "ok", "cancelled"):
            # Streamed answers are 200 on the wire; one broken after its first token ended
            # with an error event, and that is a failed request.
            span.set_attribute("error.type", str(attributes["tokenlane.outcome"]))
            span.set_status(Status(StatusCode.ERROR, "upstream broke mid-stream"))


def _failed(span: trace.Span, exc: TokenlaneError) -> None:
    span.set_attribute("error.type", exc.code or exc.type)
    if exc.status >= 500:
        span.set_status(Status(StatusCode.ERROR, exc.message[:200]))
