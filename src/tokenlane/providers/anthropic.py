"""The Anthropic Messages dialect: chat requests out as Messages, its stream back as chunks.

Translation is `anthropic_wire.py`; this module only sends and reads. Failures are classified
as for the OpenAI dialect, so the attempt loop handles them the same way: Anthropic's 429
(with Retry-After) is `429`, its 529 `overloaded_error` and other 5xx are `5xx` (retried
elsewhere), other 4xx pass back to the client; an `error` event mid-stream is a bad response.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import orjson

from ..types import Provider
from .anthropic_wire import FORWARDED, ChunksFromEvents, client_headers, messages_body_from_chat
from .base import UpstreamBadResponse, UpstreamConnectError, UpstreamTimeout
from .openai import _http_error, _is_timeout, _safe
from .pool_waits import pool_waits_of
from .sse import SSEDecoder
from .transport import (
    BODY_ERRORS,
    body_reader,
    build_transport,
    timeouts,
    upstream_headers,
    upstream_url,
    with_headers,
)

__all__ = ["ANTHROPIC_VERSION", "AnthropicDialect"]

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicDialect:
    def __init__(
        self, provider: Provider, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.provider = provider
        self._transport = transport or build_transport(provider)
        self.pool_waits = pool_waits_of(self._transport)  # None: a transport that does not time them
        self._url = upstream_url(provider, "messages")
        # Anthropic takes its key in x-api-key, not as a bearer token.
        headers = upstream_headers(dataclasses.replace(provider, api_key=None), self._url,
                                   accept="text/event-stream")
        headers.setdefault("anthropic-version", ANTHROPIC_VERSION)
        if provider.api_key:
            headers["x-api-key"] = provider.api_key
        self._headers = headers
        # For requests carrying a client's version or betas: the headers without those two,
        # and the provider's own values of them (the default version, configured betas).
        self._own = {k: v for k, v in headers.items() if k in FORWARDED}
        self._rest = [(k, v) for k, v in headers.multi_items() if k not in FORWARDED]
        self._timeouts = timeouts(provider.connect_timeout_s)

    async def open_stream(
        self, body: dict[str, Any], connect_timeout: float | None = None,
        headers: Sequence[tuple[str, str]] | None = None,
        api_headers: tuple[tuple[str, str], ...] = (),
    ) -> AnthropicStream:
        request = httpx.Request(
            "POST", self._url, content=orjson.dumps(messages_body_from_chat(body)),
            headers=self._request_headers(headers, api_headers),
            extensions={
                "timeout": self._timeouts if connect_timeout is None else timeouts(connect_timeout)
            },
        )
        try:
            response = await self._transport.handle_async_request(request)
        except httpx.HTTPError as exc:
            if _is_timeout(exc):
                raise UpstreamTimeout(f"connect timeout: {type(exc).__name__}") from exc
            raise UpstreamConnectError(f"{type(exc).__name__}: {_safe(exc)}") from exc
        if response.status_code >= 400:
            # Anthropic's error body also has `error.message`: read, redacted and kept alike.
            raise await _http_error(response, self.provider.api_key)
        # `created` is a Unix timestamp on the wire, which Anthropic's stream does not carry.
        return AnthropicStream(response, ChunksFromEvents(int(time.time()), self.provider.api_key),
                               self.provider.max_event_bytes)

    def _request_headers(self, trace: Sequence[tuple[str, str]] | None,
                         forwarded: tuple[tuple[str, str], ...]
                         ) -> httpx.Headers | list[tuple[str, str]]:
        """The built-once headers plus this request's trace context, with a Messages
        client's version and betas when it sent any (a chat client never does). A list, not
        a copy of the Headers: httpx.Request builds its own either way, and copying first
        doubled that."""
        if not forwarded:
            return with_headers(self._headers, trace)
        mine = {**self._own, **client_headers(self._own.get("anthropic-beta"), forwarded)}
        return [*self._rest, *mine.items(), *(trace or ())]

    async def aclose(self) -> None:
        await self._transport.aclose()


class AnthropicStream:
    """Chat chunks of one Anthropic stream; `completed` once `message_stop` arrived."""

    __slots__ = ("_chunks", "_max_event_bytes", "_response")

    def __init__(self, response: httpx.Response, chunks: ChunksFromEvents,
                 max_event_bytes: int) -> None:
        self._response = response
        self._chunks = chunks
        self._max_event_bytes = max_event_bytes

    @property
    def completed(self) -> bool:
        return self._chunks.completed

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        async for batch in self.batches():
            for chunk in batch:
                yield chunk

    async def batches(self) -> AsyncIterator[list[dict[str, Any]]]:
        decoder = SSEDecoder(self._max_event_bytes)
        translate = self._chunks.feed
        read = body_reader(self._response)
        try:
            while piece := await read():
                batch: list[dict[str, Any]] = []
                for event in decoder.feed(piece):
                    try:
                        data = orjson.loads(event.data)
                    except orjson.JSONDecodeError:
                        if batch:
                            yield batch
                        raise UpstreamBadResponse("unparsable SSE data line") from None
                    if not isinstance(data, dict):
                        raise UpstreamBadResponse("SSE data is not a JSON object")
                    try:
                        batch += translate(event.event, data)
                    except UpstreamBadResponse:
                        if batch:
                            yield batch
                        raise
                if batch:
                    yield batch
                if decoder.error is not None:
                    raise UpstreamBadResponse(decoder.error)
                if self._chunks.completed:
                    return
        except BODY_ERRORS as exc:
            raise UpstreamBadResponse(f"connection lost mid-stream ({type(exc).__name__})") from exc
        if decoder.pending():
            raise UpstreamBadResponse("stream ended inside an event")

    async def aclose(self) -> None:
        await self._response.aclose()
