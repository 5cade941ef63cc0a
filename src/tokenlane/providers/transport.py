"""Upstream HTTP: httpx's request/response API over a pooled transport chosen by measurement.

`aiohttp` (httpx-aiohttp) is the default: in front of the same upstream it cost 5-8x less CPU
per request than httpx's own pool (see DESIGN.md and benchmarks/overhead.py). `httpx` remains
selectable for environments where aiohttp is unwanted.

Requests go to the transport directly, not through `httpx.AsyncClient.send`: a gateway wants
none of what the client adds (a cookie jar shared by every tenant's requests, redirects, auth
flows, event hooks), and skipping it saves ~60 us of CPU per request. What the client would
have prepared per request (URL, headers, timeouts) is prepared once per provider instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from types import SimpleNamespace
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions
from multidict import CIMultiDict, CIMultiDictProxy

from ..types import Provider
from .pool_waits import PoolWaits

__all__ = ["BODY_ERRORS", "TRANSPORTS", "DirectResponse", "MeasuredAiohttpTransport",
           "aiohttp_timeout", "body_reader", "build_transport", "timeouts", "upstream_headers",
           "upstream_url", "with_headers"]

# What reading a response body through `body_reader` can raise: httpx's errors, and
# aiohttp's own when the body is read straight from aiohttp.
BODY_ERRORS: tuple[type[BaseException], ...] = (httpx.HTTPError, aiohttp.ClientError)


class MeasuredAiohttpTransport(AiohttpTransport):
    """httpx-aiohttp's transport, timing each wait for a free connection (`pool_waits`)."""

    def __init__(self, limits: httpx.Limits) -> None:
        self.pool_waits = PoolWaits()
        super().__init__(limits=limits, client=self._session)

    def _session(self) -> aiohttp.ClientSession:  # called on first use, inside the running loop
        connector = aiohttp.TCPConnector(
            limit=self.limits.max_connections or 0,
            keepalive_timeout=self.limits.keepalive_expiry or 0,
            ssl=self.ssl_context,  # httpx's (certifi) trust store, as for the httpx transport
        )
        # No cookie jar: one upstream session carries every tenant's requests, so a cookie set
        # in one answer must never ride on the next request.
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                     trace_configs=[_pool_wait_trace(self.pool_waits)])


    async def send_direct(self, url: str, content: bytes, headers: CIMultiDict[str],
                          timeout: aiohttp.ClientTimeout) -> DirectResponse:
        """POST `content` straight through aiohttp: the chat hot path's request (issue 17).
        Building an httpx.Request, having httpx-aiohttp translate it and wrapping aiohttp's
        answer in an httpx.Response cost ~45 us of CPU per request (of ~800) against an
        upstream stream; what the dialect uses of the answer, `DirectResponse` has. Same
        pool, the same aiohttp options as httpx-aiohttp's, and aiohttp's errors raised as
        httpx's (its own mapping), so failures are classified as on the httpx path."""
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        with map_aiohttp_exceptions():
            response = await self.client.request(
                "POST", url, headers=headers, data=content, allow_redirects=False,
                auto_decompress=False, compress=False, timeout=timeout)
        return DirectResponse(response)


class DirectResponse:
    """An aiohttp response under the names the dialect reads of an httpx.Response:
    `status_code`, `headers` (case-insensitive), `aread()`, `aclose()`."""

    __slots__ = ("_response", "headers", "status_code")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status_code = response.status
        self.headers: CIMultiDictProxy[str] = response.headers

    def reader(self) -> Callable[[], Awaitable[bytes]]:
        return self._response.content.readany

    async def aread(self) -> bytes:
        with map_aiohttp_exceptions():
            return await self._response.read()

    async def aclose(self) -> None:
        with map_aiohttp_exceptions():
            await self._response.__aexit__(None, None, None)


def aiohttp_timeout(timeout: dict[str, float | None]) -> aiohttp.ClientTimeout:
    """`timeouts()` as aiohttp's, mapped as httpx-aiohttp maps them."""
    return aiohttp.ClientTimeout(sock_connect=timeout.get("connect"),
                                 sock_read=timeout.get("read"), connect=timeout.get("pool"))


def _pool_wait_trace(waits: PoolWaits) -> aiohttp.TraceConfig:
    """aiohttp's connection-queued hooks feeding `waits`. A request given up while queued
    (cancelled, timed out) gets no queued-end, only the request's own end: its wait ends
    there."""

    def end(ctx: SimpleNamespace) -> None:
        started = getattr(ctx, "queued_at", None)
        if started is not None:
            ctx.queued_at = None
            waits.dequeued(asyncio.get_running_loop().time() - started)

    async def on_queued(session: Any, ctx: SimpleNamespace, params: Any) -> None:
        ctx.queued_at = asyncio.get_running_loop().time()
        waits.queued()

    async def on_dequeued(session: Any, ctx: SimpleNamespace, params: Any) -> None:
        end(ctx)

    trace = aiohttp.TraceConfig()
    trace.on_connection_queued_start.append(on_queued)
    trace.on_connection_queued_end.append(on_dequeued)
    trace.on_request_exception.append(on_dequeued)
    return trace


def _aiohttp(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    return MeasuredAiohttpTransport(limits)


def _httpx(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    return httpx.AsyncHTTPTransport(limits=limits)


TRANSPORTS: dict[str, Callable[[httpx.Limits], httpx.AsyncBaseTransport]] = {
    "aiohttp": _aiohttp,
    "httpx": _httpx,
}


def build_transport(provider: Provider, kind: str = "aiohttp") -> httpx.AsyncBaseTransport:
    """One keep-alive pool per provider, sized by its `max_connections`."""
    limits = httpx.Limits(
        max_connections=provider.max_connections,
        max_keepalive_connections=provider.max_connections,
        keepalive_expiry=60,
    )
    return TRANSPORTS[kind](limits)


def body_reader(response: httpx.Response | DirectResponse) -> Callable[[], Awaitable[bytes]]:
    """The body's next piece as it arrives, b"" at its end (errors: `BODY_ERRORS`).

    On the aiohttp transport this is aiohttp's own `readany`. At a provider's pace every
    event is a read of its own, and httpx's `aiter_raw` reaches aiohttp through three async
    iterators (httpx's, httpx-aiohttp's stream, aiohttp's chunk iterator), each crossed per
    event (issue 17: relay cost per event). httpx-aiohttp keeps aiohttp's response on its
    stream object; should that ever change, this falls back to `aiter_raw` (slower, same
    bytes; tests/providers/test_transport.py notices).
    """
    if isinstance(response, DirectResponse):
        return response.reader()
    aio = getattr(response.stream, "_aiohttp_response", None)
    if isinstance(aio, aiohttp.ClientResponse):
        return aio.content.readany
    pieces = response.aiter_raw()

    async def next_piece() -> bytes:
        return await anext(pieces, b"")

    return next_piece


def upstream_url(provider: Provider, path: str) -> httpx.URL:
    """`path` under the provider's base URL, as httpx's `base_url` would join them, with the
    provider's fixed query parameters (Azure's api-version)."""
    url = httpx.URL(provider.base_url.rstrip("/") + "/" + path.lstrip("/"))
    return url.copy_merge_params(dict(provider.query)) if provider.query else url


def with_headers(prepared: httpx.Headers, extra: Sequence[tuple[str, str]] | None
                 ) -> httpx.Headers:
    """`prepared` plus one request's own headers (trace context); `prepared` itself when
    there are none, so an untraced request copies nothing."""
    if not extra:
        return prepared
    headers = prepared.copy()
    headers.update(extra)
    return headers


def upstream_headers(provider: Provider, url: httpx.URL, accept: str) -> httpx.Headers:
    """Every header an upstream request carries except content-length, built once."""
    headers = httpx.Headers({
        "host": url.netloc.decode("ascii"),
        "user-agent": _user_agent(),
        "accept": accept,
        # SSE is read raw, frame by frame: a compressed stream would have to be buffered and
        # inflated first, and some CDNs in front of providers compress text/event-stream.
        "accept-encoding": "identity",
        "content-type": "application/json",
    })
    headers.update(dict(provider.headers))
    if provider.api_key:
        if provider.auth_header == "authorization":
            headers["authorization"] = f"Bearer {provider.api_key}"
        else:  # Azure's `api-key`: the bare key
            headers[provider.auth_header] = provider.api_key
    return headers


def timeouts(connect_s: float) -> dict[str, float | None]:
    """The `timeout` request extension. Reads have no httpx timeout: streams may legitimately
    run for minutes; the attempt loop enforces TTFT, stall and overall deadlines itself, where
    it can tell them apart."""
    return {"connect": connect_s, "read": None, "write": 30.0, "pool": 30.0}


def _user_agent() -> str:
    try:
        return f"tokenlane/{version('tokenlane')}"
    except PackageNotFoundError:
        return "tokenlane"
