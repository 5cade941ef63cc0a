"""Sans-I/O core shared by the sync and async twins: request bodies in, responses, error
bodies, SSE events and headers out. Nothing here touches a socket, a thread or a loop.
"""

from __future__ import annotations

from collections import deque
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
    "NEED_DATA",
    "OPTIONS_HEADER",
    "ChunkDecoder",
    "MessageEventDecoder",
    "NeedData",
    "ProviderArg",
    "chat_body",
    "error_from_anthropic",
    "error_from_response",
    "provider_dict",
    "route_from_headers",
    "with_provider",
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
    body: dict[str, Any] = {"model": model, "messages": [dict(m) for m in messages]}
    body.update(params)
    if stream:
        body["stream"] = True
    return with_provider(body, provider, params)


def with_provider(body: dict[str, Any], provider: ProviderArg, params: Mapping[str, Any]
                  ) -> dict[str, Any]:
    """`body` with our `provider` object (routing options) added. One among the extra
    `params` is refused rather than silently replaced."""
    if "provider" in params:
        raise TypeError("give routing options as provider=..., not inside extra params")
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
    if code in ("no_deployment_available", "rate_limit_exceeded", "upstream_auth_failed"):
        # The message already lists the attempts: the constructor must not append them again.
        exc = NoDeploymentAvailable(message, retry_after=_retry_after(headers))
        exc.attempts = _attempts(err.get("attempts"))
    elif 400 <= status < 500 and deployment:
        # An upstream's own 4xx, passed back unchanged (the gateway names the deployment).
        exc = UpstreamRejected(status, {"error": err}, deployment, _attempts(err.get("attempts")))
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


def _attempts(listed: object) -> tuple[Attempt, ...]:
    """The structured `error.attempts` list of an error body (all failed, or an upstream 4xx)."""
    if not isinstance(listed, list):
        return ()
    return tuple(
        Attempt(str(a.get("deployment", "")), str(a.get("outcome", "")),
                a.get("status") if isinstance(a.get("status"), int) else None,
                str(a.get("reason", "")))
        for a in listed if isinstance(a, dict)
    )


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


class NeedData:
    """`ChunkDecoder.next_chunk()`'s answer when it needs more bytes: `feed` some."""

    __slots__ = ()


NEED_DATA = NeedData()


class _Decoder:
    """What both stream decoders share: events ready to take, then the end or the error."""

    __slots__ = ("_decoder", "_error", "_ready", "done")

    def __init__(self) -> None:
        self._decoder = SSEDecoder()
        self._ready: deque[dict[str, Any]] = deque()
        self._error: TokenlaneError | None = None
        self.done = False

    def next_chunk(self) -> dict[str, Any] | NeedData | None:
        """The next chunk; None once the stream ended; NEED_DATA when `feed` must come first."""
        if self._ready:
            return self._ready.popleft()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return None if self.done else NEED_DATA

    def _fail(self, error: TokenlaneError) -> None:
        self.done = True
        self._error = error


class ChunkDecoder(_Decoder):
    """Gateway SSE bytes in, chat.completion.chunk dicts out (h11's shape: the caller reads,
    the decoder only parses).

        while (chunk := decoder.next_chunk()) is NEED_DATA:
            decoder.feed(read())        # None at EOF
        return chunk                    # a dict, or None at the end of the stream

    An error event (the gateway's mid-stream contract: one `{"error": ...}` event, then the
    end) becomes the typed exception, and EOF before `[DONE]` StreamBroken: `next_chunk`
    raises it once the chunks that came before it were taken.
    """

    __slots__ = ()

    def feed(self, data: bytes | None) -> None:
        """Bytes read from the response; `None` at EOF."""
        if self.done:
            return
        if data is None:
            self._fail(StreamBroken("the gateway's stream ended before [DONE]"))
            return
        for event in self._decoder.feed(data):
            if event.data == _DONE:
                self.done = True
                return
            chunk = _json_object(event.data)
            if chunk is None:
                self._fail(StreamBroken("the gateway sent an unparsable stream event"))
                return
            if "error" in chunk or event.event == "error":
                self._fail(error_from_response(_stream_error_status(chunk), {}, event.data))
                return
            self._ready.append(chunk)


class MessageEventDecoder(_Decoder):
    """`ChunkDecoder` for `POST /v1/messages` streams: Anthropic's event dicts out, up to
    `message_stop`. Its `error` event (sent only once output reached the client) is
    StreamBroken, and so is EOF before `message_stop`."""

    __slots__ = ()

    def feed(self, data: bytes | None) -> None:
        """Bytes read from the response; `None` at EOF."""
        if self.done:
            return
        if data is None:
            self._fail(StreamBroken("the gateway's stream ended before message_stop"))
            return
        for event in self._decoder.feed(data):
            body = _json_object(event.data)
            if body is None:
                self._fail(StreamBroken("the gateway sent an unparsable stream event"))
                return
            if body.get("type") == "error":
                err = body.get("error")
                message = err.get("message") if isinstance(err, dict) else None
                self._fail(StreamBroken(str(message or "the stream failed")))
                return
            self._ready.append(body)
            if body.get("type") == "message_stop":
                self.done = True
                return


# Anthropic's error types that name one of our typed errors (messages_errors.py, inverted).
_ANTHROPIC_CODES = {
    "authentication_error": "invalid_api_key",
    "not_found_error": "model_not_found",
    "request_too_large": "request_too_large",
    "rate_limit_error": "rate_limit_exceeded",
    "overloaded_error": "no_deployment_available",
}


def error_from_anthropic(
    status: int, headers: Mapping[str, str], content: bytes
) -> TokenlaneError:
    """`error_from_response` for an error in Anthropic's shape (`POST /v1/messages`): the
    same typed exceptions, `type` Anthropic's."""
    body = _json_object(content)
    err = body.get("error") if body is not None else None
    if isinstance(err, dict):
        code = _ANTHROPIC_CODES.get(str(err.get("type")))
        content = orjson.dumps({"error": {**err, "code": code}})
    return error_from_response(status, headers, content)


def _stream_error_status(chunk: Mapping[str, Any]) -> int:
    err = chunk.get("error")
    code = err.get("code") if isinstance(err, dict) else None
    return 502 if code in (None, "upstream_stream_broken") else 500
