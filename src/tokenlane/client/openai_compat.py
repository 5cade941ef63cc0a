"""Helpers for the official `openai` SDK pointed at a tokenlane gateway (no import of openai
here: these work on what the SDK hands you).

    client = openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key=key)
    raw = client.chat.completions.with_raw_response.create(
        model="llama-3.3-70b", messages=msgs,
        **openai_extra(provider=RoutingOptions(sort="throughput")))
    print(decision_from(raw).chosen, raw.parse().choices[0].message.content)

    try: ...
    except openai.APIStatusError as exc:
        raise error_from(exc) from exc          # NoDeploymentAvailable with .attempts, ...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol, TypedDict

import orjson

from ..errors import TokenlaneError
from ._wire import OPTIONS_HEADER, ProviderArg, error_from_response, provider_dict
from .route import ROUTE_HEADER, RouteInfo, parse_route_header

__all__ = ["HasHeaders", "HasResponse", "OpenAIExtra", "ResponseLike", "decision_from",
           "error_from", "openai_extra"]


class OpenAIExtra(TypedDict, total=False):
    """Keyword arguments for an openai SDK call: spread them with `**`."""

    extra_body: dict[str, Any]
    extra_headers: dict[str, str]


class HasHeaders(Protocol):
    """Anything with response headers: the SDK's raw and streaming responses, an
    httpx.Response. Structural, so it fits whichever HTTP library the SDK version uses."""

    @property
    def headers(self) -> Mapping[str, str]:
        """The HTTP response headers (case-insensitive lookups)."""
        ...


class ResponseLike(HasHeaders, Protocol):
    """An HTTP response, read in full: status, headers, body."""

    @property
    def status_code(self) -> int:
        """The HTTP status."""
        ...

    @property
    def content(self) -> bytes:
        """The body."""
        ...


class HasResponse(Protocol):
    """An SDK error that carries its HTTP response (`openai.APIStatusError`)."""

    @property
    def response(self) -> ResponseLike:
        """The HTTP response the error came from."""
        ...


def openai_extra(
    provider: ProviderArg = None,
    *,
    via: Literal["body", "header"] = "body",
    extra_body: Mapping[str, Any] | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> OpenAIExtra:
    """`extra_body`/`extra_headers` carrying tokenlane routing options for an SDK call.

    `via="body"` sends them as the body's `provider` object (OpenRouter's field: clients written
    for OpenRouter work unchanged); `via="header"` as JSON in `x-tokenlane-provider`, for code
    that cannot add body fields. `extra_body`/`extra_headers` you already pass are merged in.
    """
    body = dict(extra_body or {})
    headers = dict(extra_headers or {})
    options = provider_dict(provider)
    if options is not None:
        if via == "body":
            body["provider"] = options
        elif via == "header":
            headers[OPTIONS_HEADER] = orjson.dumps(options).decode()
        else:
            raise ValueError(f"via must be 'body' or 'header', not {via!r}")
    out: OpenAIExtra = {}
    if body:
        out["extra_body"] = body
    if headers:
        out["extra_headers"] = headers
    return out


def decision_from(response: HasHeaders) -> RouteInfo | None:
    """The routing decision of a gateway response: pass what
    `client.chat.completions.with_raw_response.create(...)` (or `with_streaming_response`)
    returned, or an httpx.Response. None when the response has no decision header (not from a
    tokenlane gateway); ValueError when the header is malformed."""
    value = response.headers.get(ROUTE_HEADER)
    return parse_route_header(value) if value else None


def error_from(error: HasResponse) -> TokenlaneError:
    """The typed tokenlane exception for an SDK error raised by a gateway response (an
    `openai.APIStatusError`): `NoDeploymentAvailable` with every attempt, `ModelNotFound`,
    `UpstreamRejected`, ... carrying OpenAI's error fields and the status."""
    response = error.response
    return error_from_response(response.status_code, response.headers, response.content)
