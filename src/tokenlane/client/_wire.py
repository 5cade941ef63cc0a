"""Sans-I/O core shared by the sync and async twins: request bodies in, responses, error
bodies, SSE events and headers out. Nothing here touches a socket, a thread or a loop.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import orjson

from ..errors import (
    Attempt,
    AuthenticationFailed,
    BodyTooLarge,
    InvalidRequest,
    ModelNotFound,
    NoDeploymentAvailable,
    TokenlaneError,
    UpstreamRejected,
)
from ..providers.sse import SSEDecoder
from ..routing.options import RoutingOptions
from ..routing.stream import StreamBroken
from .route import ROUTE_HEADER, RouteInfo, parse_route_header

__all__ = [
    "DEPLOYMENT_HEADER",
    "OPTIONS_HEADER",
    "ChunkDecoder",
    "ProviderArg",
    "chat_body",
    "error_from_response",
    "provider_dict",
    "route_from_headers",
]

ProviderArg: TypeAlias = RoutingOptions | Mapping[str, Any] | None
"""Routing options: a typed `RoutingOptions`, or the `provider` object as a dict."""

DEPLOYMENT_HEADER = "x-tokenlane-deployment"
OPTIONS_HEADER = "x-tokenlane-provider"

_DONE = b"[DONE]"


def provider_dict(provider: ProviderArg) -> dict[str, Any] | None:
    """The `provider` object for the wire: a RoutingOptions keeps only the fields set."""
    if provider is None:
        return None
    if isinstance(provider, RoutingOptions):
        return provider.model_dump(mode="json", exclude_unset=True)
    if not isinstance(provider, Mapping):
        raise TypeError(f"provider must be a RoutingOptions or a mapping, not "
                        f"{type(provider).__name__}")
    return dict(provider)


def chat_body(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    stream: bool,
    provider: ProviderArg,
    params: Mapping[str, Any],
) -> dict[str, Any]:
    """The chat-completions request body: OpenAI's fields plus our `provider` object."""
    if "provider" in params:
        raise TypeError("give routing options as provider=..., not inside extra params")
    body: dict[str, Any] = {"model": model, "messages": [dict(m) for m in messages]}
    body.update(params)
    if stream:
        body["stream"] = True
    options = provider_dict(provider)
    if options is not None:
        body["provider"] = options
    return body


def route_from_headers(headers: Mapping[str, str]) -> tuple[RouteInfo | None, str | None]:
    """(decision, deployment) from a gateway response's headers; None for what is absent or
    unreadable (a newer gateway's header must not break the answer itself)."""
    deployment = headers.get(DEPLOYMENT_HEADER)
    value = headers.get(ROUTE_HEADER)
    decision = None
    if value:
        try:
            decision = parse_route_header(value)
        except ValueError:
            decision = None
    return decision, deployment or (decision.chosen if decision else None)


# -- errors ------------------------------------------------------------------------------------

_BY_CODE: dict[tuple[int, str | None], type[TokenlaneError]] = {
    (401, "invalid_api_key"): AuthenticationFailed,
    (404, "model_not_found"): ModelNotFound,
    (413, "request_too_large"): BodyTooLarge,
    (502, "upstream_stream_broken"): StreamBroken,
}

_OUTCOMES = ("ok|4xx|429|5xx|timeout|connect|stall|bad_response|cancelled|circuit_open|error")
# `deployment: outcome[ HTTP status] (` starts an attempt in NoDeploymentAvailable's message.
_ATTEMPT_START = re.compile(
    rf"(?:(?<=: )|(?<=; ))(?P<deployment>[^\s;]+/[^\s;]*?): (?P<outcome>{_OUTCOMES})"
    r"(?: HTTP (?P<status>\d{3}))? \(")


def error_from_response(
    status: int, headers: Mapping[str, str], content: bytes
) -> TokenlaneError:
    """The typed exception for a gateway error response, carrying OpenAI's error fields
    (message, type, param, code) and the status exactly as the gateway sent them."""
    body = _json_object(content)
    err = body.get("error") if body is not None else None
    if not isinstance(err, dict):
        text = content[:300].decode("utf-8", "replace").strip()
        err = {"message": text or f"HTTP {status}", "type": "server_error"}
    message = str(err.get("message") or f"HTTP {status}")
    type_ = str(err.get("type") or "server_error")
    param = err.get("param") if isinstance(err.get("param"), str) else None
    code = None if err.get("code") is None else str(err.get("code"))
    deployment = headers.get(DEPLOYMENT_HEADER)
    exc: TokenlaneError
    if code in ("no_deployment_available", "rate_limit_exceeded") or (
            status == 503 and code is None):
        exc = NoDeploymentAvailable(message, retry_after=_retry_after(headers))
        exc.attempts = _attempts(err, message)
    elif 400 <= status < 500 and deployment:
        # An upstream's own 4xx, passed back unchanged (the gateway names the deployment).
        exc = UpstreamRejected(status, {"error": err}, deployment)
    elif (cls := _BY_CODE.get((status, code))) is not None:
        exc = cls(message, param=param)
    elif status == 400 or (status == 404 and code == "not_found"):
        exc = InvalidRequest(message, param=param)
    elif 400 <= status < 500:
        # None of the gateway's own: an upstream's 4xx whose deployment was not named.
        exc = UpstreamRejected(status, {"error": err}, "")
    else:
        exc = TokenlaneError(message, param=param)
    exc.status, exc.type, exc.code = status, type_, code
    return exc


def _attempts(err: Mapping[str, Any], message: str) -> tuple[Attempt, ...]:
    structured = err.get("attempts")
    if isinstance(structured, list):
        return tuple(
            Attempt(str(a.get("deployment", "")), str(a.get("outcome", "")),
                    a.get("status") if isinstance(a.get("status"), int) else None,
                    str(a.get("reason", "")))
            for a in structured if isinstance(a, dict)
        )
    # Older gateways list them only in the message: `...: dep: outcome HTTP s (reason); ...`.
    starts = list(_ATTEMPT_START.finditer(message))
    out = []
    for i, m in enumerate(starts):
        end = starts[i + 1].start() - 2 if i + 1 < len(starts) else len(message)
        reason = message[m.end():end]
        reason = reason.removesuffix(")")
        status = int(m["status"]) if m["status"] else None
        out.append(Attempt(m["deployment"], m["outcome"], status, reason))
    return tuple(out)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


# -- streams -----------------------------------------------------------------------------------


class ChunkDecoder:
    """Gateway SSE bytes in, chat.completion.chunk dicts out.

    An error event (the gateway's mid-stream contract: one `{"error": ...}` event, then the
    end) raises the typed exception; `finish()` at EOF raises StreamBroken when the stream
    stopped before `[DONE]`.
    """

    __slots__ = ("_decoder", "done")

    def __init__(self) -> None:
        self._decoder = SSEDecoder()
        self.done = False

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Chunks completed by `data` (raises on an error event)."""
        out = []
        for event in self._decoder.feed(data):
            if self.done:
                break
            if event.data == _DONE:
                self.done = True
                break
            chunk = _json_object(event.data)
            if chunk is None:
                raise StreamBroken("the gateway sent an unparsable stream event")
            if "error" in chunk or event.event == "error":
                self.done = True
                raise error_from_response(
                    _stream_error_status(chunk), {}, event.data)
            out.append(chunk)
        return out

    def finish(self) -> None:
        """Call at EOF: raises StreamBroken if the stream ended early."""
        if not self.done:
            self.done = True
            raise StreamBroken("the gateway's stream ended before [DONE]")


def _stream_error_status(chunk: Mapping[str, Any]) -> int:
    err = chunk.get("error")
    code = err.get("code") if isinstance(err, dict) else None
    return 502 if code in (None, "upstream_stream_broken") else 500
