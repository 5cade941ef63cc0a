"""The OpenAI chat-completions dialect: Cerebras, Groq, Together, Fireworks, vLLM, ... all speak it.

No translation is needed: the body goes out as the client sent it (model already mapped) and
chunks come back as parsed dicts. The only work is framing (SSE) and classifying failures.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
from multidict import CIMultiDict

from ..types import Provider
from .base import (
    UpstreamBadResponse,
    UpstreamConnectError,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamTimeout,
)
from .pool_waits import pool_waits_of
from .redact import redact
from .sse import DEFAULT_MAX_EVENT_BYTES, SSEDecoder, SSEEvent, data_array
from .transport import (
    BODY_ERRORS,
    DirectResponse,
    MeasuredAiohttpTransport,
    aiohttp_timeout,
    body_reader,
    build_transport,
    timeouts,
    upstream_headers,
    upstream_url,
    with_headers,
)

__all__ = ["OpenAIDialect", "parse_retry_after"]

_DONE = b"[DONE]"


class OpenAIDialect:
    def __init__(
        self, provider: Provider, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.provider = provider
        self._transport = transport or build_transport(provider)
        self.pool_waits = pool_waits_of(self._transport)  # None: a transport that does not time them
        self._url = upstream_url(provider, "chat/completions")
        self._headers = upstream_headers(provider, self._url, accept="text/event-stream")
        self._timeouts = timeouts(provider.connect_timeout_s)
        # The chat request straight through aiohttp when the pool is ours (the default; see
        # MeasuredAiohttpTransport.send_direct), prepared once: URL, headers, timeout.
        self._direct = (self._transport if isinstance(self._transport, MeasuredAiohttpTransport)
                        else None)
        self._direct_url = str(self._url)
        self._direct_headers = CIMultiDict(self._headers.multi_items())
        self._direct_timeout = aiohttp_timeout(self._timeouts)
        # (path, stream) -> URL and headers of the pass-through endpoints, built on first use.
        self._prepared: dict[tuple[str, bool], tuple[httpx.URL, httpx.Headers]] = {}

    async def open_stream(
        self, body: dict[str, Any], connect_timeout: float | None = None,
        headers: Sequence[tuple[str, str]] | None = None,
        api_headers: tuple[tuple[str, str], ...] = (),  # Anthropic's: nothing for this API
    ) -> OpenAIStream:
        if self._direct is not None:
            response = await self._open_direct(body, connect_timeout, headers)
            return OpenAIStream(response, self.provider.max_event_bytes)
        request = httpx.Request(
            "POST",
            self._url,
            content=orjson.dumps(body),
            headers=with_headers(self._headers, headers),
            extensions={
                "timeout": self._timeouts if connect_timeout is None else timeouts(connect_timeout)
            },
        )
        response = await _send(self._transport, request, self.provider.api_key)
        return OpenAIStream(response, self.provider.max_event_bytes)

    async def _open_direct(self, body: dict[str, Any], connect_timeout: float | None,
                           headers: Sequence[tuple[str, str]] | None) -> DirectResponse:
        assert self._direct is not None
        prepared = self._direct_headers
        if headers:  # one request's own (trace context): on a copy
            prepared = prepared.copy()
            prepared.update(headers)
        timeout = (self._direct_timeout if connect_timeout is None
                   else aiohttp_timeout(timeouts(connect_timeout)))
        try:
            response = await self._direct.send_direct(
                self._direct_url, orjson.dumps(body), prepared, timeout)
        except httpx.HTTPError as exc:
            raise _connect_failure(exc) from exc
        if response.status_code >= 400:
            raise await _http_error(response, self.provider.api_key)
        return response

    async def post(self, path: str, body: dict[str, Any], *, stream: bool = False,
                   connect_timeout: float | None = None,
                   headers: Sequence[tuple[str, str]] | None = None) -> httpx.Response:
        """POST `body` as it is to `path` under the provider (`embeddings`, `completions`:
        the pass-through endpoints, see routing/passthrough) over the same pool; the 2xx
        response comes back unread, failures raise as for `open_stream`."""
        prepared = self._prepared.get((path, stream))
        if prepared is None:
            url = upstream_url(self.provider, path)
            accept = "text/event-stream" if stream else "application/json"
            prepared = self._prepared[(path, stream)] = (
                url, upstream_headers(self.provider, url, accept=accept))
        url, prepared_headers = prepared
        request = httpx.Request("POST", url, content=orjson.dumps(body),
                                headers=with_headers(prepared_headers, headers),
                                extensions={"timeout": self._timeouts if connect_timeout is None
                                            else timeouts(connect_timeout)})
        return await _send(self._transport, request, self.provider.api_key)

    async def aclose(self) -> None:
        await self._transport.aclose()


class OpenAIStream:
    """Chunks of one upstream stream; `completed` tells whether `[DONE]` arrived."""

    __slots__ = ("_max_event_bytes", "_response", "completed")

    def __init__(self, response: httpx.Response | DirectResponse,
                 max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._response = response
        self._max_event_bytes = max_event_bytes
        self.completed = False

    @property
    def headers(self) -> Any:  # httpx.Headers, or aiohttp's on the direct path: both mappings
        """The response headers (rate limits: see providers.headroom)."""
        return self._response.headers

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        async for batch in self.batches():
            for chunk in batch:
                yield chunk

    async def batches(self) -> AsyncIterator[list[dict[str, Any]]]:
        """The chunks of each upstream read together: what is already here goes out as one."""
        decoder = SSEDecoder(self._max_event_bytes)
        read = body_reader(self._response)
        try:
            while piece := await read():
                # Several whole plain events (what a provider's burst is): parsed from the
                # bytes as they are, without decoding event by event. One event (a read per
                # token, at a provider's pace: the decoder's own shortcut is quicker), anything
                # else, or a chunk among them that is not well-formed: the decoder below.
                several = decoder.idle and piece.find(b"\n") < len(piece) - 2
                whole = data_array(piece, self._max_event_bytes) if several else None
                if whole is not None and (batch := _parse_array(*whole[:2])) is not None:
                    if batch:
                        yield batch
                    if whole[2]:
                        self.completed = True
                        return
                    continue
                events = decoder.feed(piece)
                batch = _parse_batch(events)
                if batch is None:  # something to look at event by event
                    batch = []
                    for event in events:
                        if event.data == _DONE:
                            self.completed = True
                            if batch:
                                yield batch
                            return
                        try:
                            batch.append(_parse_chunk(event.data, event.event))
                        except UpstreamBadResponse:
                            if batch:  # what came before the bad event still goes out first
                                yield batch
                            raise
                elif events and events[-1].data == _DONE:
                    self.completed = True
                    if batch:
                        yield batch
                    return
                if batch:
                    yield batch
                if decoder.error is not None:
                    raise UpstreamBadResponse(decoder.error)
        except BODY_ERRORS as exc:
            raise UpstreamBadResponse(f"connection lost mid-stream ({type(exc).__name__})") from exc
        if decoder.pending():
            raise UpstreamBadResponse("stream ended inside an event")

    async def aclose(self) -> None:
        await self._response.aclose()


async def _send(transport: httpx.AsyncBaseTransport, request: httpx.Request,
                secret: str | None) -> httpx.Response:
    """The 2xx response to `request`; connect failures and HTTP errors raised classified."""
    try:
        response = await transport.handle_async_request(request)
    except httpx.HTTPError as exc:
        raise _connect_failure(exc) from exc
    if response.status_code >= 400:
        raise await _http_error(response, secret)
    return response


def _connect_failure(exc: httpx.HTTPError) -> UpstreamError:
    if _is_timeout(exc):
        return UpstreamTimeout(f"connect timeout: {type(exc).__name__}")
    return UpstreamConnectError(f"{type(exc).__name__}: {_safe(exc)}")


def _parse_batch(events: list[SSEEvent]) -> list[dict[str, Any]] | None:
    """The chunks of one read's events, parsed in one go: plain data events, `[DONE]` at
    most last, as one JSON array (see `_parse_array`). None when anything needs a closer
    look (an event name, `[DONE]` elsewhere, or what `_parse_array` refuses): the caller
    then goes event by event, which finds what is wrong and where, and sends what came
    before it."""
    if len(events) < 2:  # nothing to share out
        return None
    datas = [event.data for event in events if event.event is None]
    if len(datas) != len(events):
        return None
    if datas[-1] == _DONE:
        datas.pop()
    return _parse_array(b"".join((b"[", b",".join(datas), b"]")), len(datas))


def _parse_array(array: bytes, events: int) -> list[dict[str, Any]] | None:
    """`events` events' data as one JSON array (one parser call instead of one per event):
    their chunks when every one is a well-formed chunk, else None."""
    try:
        chunks = orjson.loads(array)
    except orjson.JSONDecodeError:
        return None
    if type(chunks) is not list or len(chunks) != events:  # an event's data was not one value
        return None
    for chunk in chunks:
        if type(chunk) is not dict or "error" in chunk or not _well_formed(chunk):
            return None
    return chunks


def _parse_chunk(data: bytes, event: str | None) -> dict[str, Any]:
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UpstreamBadResponse("unparsable SSE data line") from None
    if not isinstance(chunk, dict):
        raise UpstreamBadResponse("SSE data is not a JSON object")
    if event == "error" or "error" in chunk:
        # {"error": {"message": ...}} in the data, or a named error event carrying the
        # message itself.
        err = chunk.get("error", chunk)
        message = err.get("message") if isinstance(err, dict) else err
        raise UpstreamBadResponse(f"error event in stream: {redact(str(message))}")
    if not _well_formed(chunk):
        raise UpstreamBadResponse("SSE chunk is not shaped like a chat.completion.chunk")
    return chunk


# Delta fields the spec types as string or null (reasoning fields: the common extensions).
_TEXT_FIELDS = frozenset({"content", "role", "refusal", "reasoning", "reasoning_content"})
_USAGE_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")


def _well_formed(chunk: dict[str, Any]) -> bool:
    """A chat.completion.chunk by the official spec's types: what everything downstream
    (measuring, presenting, assembling, the client's SDK) relies on. Valid JSON in the wrong
    shape is as broken as invalid JSON and fails the attempt the same way. Runs per chunk, so
    the common case (one choice, a delta of strings) takes no call beyond this one; orjson
    builds exact dicts, lists, strs and ints, so `type(x) is` is both right and cheapest (it
    also keeps booleans out of integer fields)."""
    choices = chunk.get("choices")
    if type(choices) is not list:
        return False
    if (usage := chunk.get("usage")) is not None and not _usage_ok(usage):
        return False
    if (chunk_id := chunk.get("id")) is not None and type(chunk_id) is not str:
        return False
    if (created := chunk.get("created")) is not None and type(created) is not int:
        return False
    for choice in choices:
        if type(choice) is not dict or type(choice.get("index", 0)) is not int:
            return False
        delta = choice.get("delta")
        if delta is not None:
            if type(delta) is not dict:
                return False
            for key, value in delta.items():
                if value is None or type(value) is str:
                    continue
                if key in _TEXT_FIELDS or not _extension_ok(key, value):
                    return False
        if (finish := choice.get("finish_reason")) is not None and type(finish) is not str:
            return False
        if (logprobs := choice.get("logprobs")) is not None and not _logprobs_ok(logprobs):
            return False
    return True


def _extension_ok(key: str, value: Any) -> bool:
    """A non-string delta field: tool calls and function calls are typed by the spec; any
    other (a provider's extension) passes through as it is."""
    if key == "tool_calls":
        return type(value) is list and all(_call_ok(call) for call in value)
    if key == "function_call":
        return _function_ok(value)
    return True


def _call_ok(call: Any) -> bool:
    return (
        type(call) is dict
        and type(call.get("index", 0)) is int
        and _optional_str(call.get("id"))
        and _optional_str(call.get("type"))
        and _function_ok(call.get("function"))
    )


def _function_ok(fn: Any) -> bool:
    return fn is None or (
        type(fn) is dict and _optional_str(fn.get("name")) and _optional_str(fn.get("arguments")))


def _optional_str(value: Any) -> bool:
    return value is None or type(value) is str


def _usage_ok(usage: Any) -> bool:
    """Integer counts (cost accounting adds them up); detail objects, when given, objects of
    integers."""
    if type(usage) is not dict:
        return False
    for key in _USAGE_COUNTS:
        if (count := usage.get(key)) is not None and type(count) is not int:
            return False
    for key, value in usage.items():
        if key.endswith("_details") and value is not None and not (
            type(value) is dict
            and all(v is None or type(v) is int for v in value.values())
        ):
            return False
    return True


def _logprobs_ok(logprobs: Any) -> bool:
    return type(logprobs) is dict and all(
        v is None or type(v) is list for v in logprobs.values()
    )


async def _http_error(response: httpx.Response | DirectResponse, secret: str | None
                      ) -> UpstreamHTTPError:
    try:
        raw = await response.aread()
    except httpx.HTTPError:
        raw = b""
    finally:
        await response.aclose()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        text = raw[:200].decode("utf-8", "replace")
        body = {"error": {"message": text or f"HTTP {response.status_code}", "type": "upstream_error"}}
    err = body.get("error")
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        body = {**body, "error": {**err, "message": redact(err["message"], secret)}}
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    error = UpstreamHTTPError(response.status_code, body, retry_after)
    error.headers = response.headers  # rate-limit headers ride on 429s too
    return error


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds, or an HTTP date (RFC 9110)
    measured against `now` (Unix time; default the wall clock). None when absent or unreadable.
    """
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive result means no zone was given
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _is_timeout(exc: httpx.HTTPError) -> bool:
    """A real timeout, not another connection failure dressed as one: httpx-aiohttp maps every
    aiohttp connection error (a reset, a refused port) to httpx.ConnectTimeout."""
    if not isinstance(exc, httpx.TimeoutException):
        return False
    cause = exc.__cause__
    from_aiohttp = cause is not None and type(cause).__module__.startswith("aiohttp")
    return not from_aiohttp or isinstance(cause, TimeoutError)


def _safe(exc: Exception) -> str:
    # httpx messages carry the URL at most, never headers; keep it short for client messages.
    return str(exc)[:200] or "no detail"
