"""Pooled upstream HTTP clients. httpx's API everywhere; the transport is chosen by measurement.

`aiohttp` (httpx-aiohttp) is the default: in front of the same upstream it cost 5-8x less CPU
per request than httpx's own pool (see DESIGN.md and benchmarks/overhead.py). `httpx` remains
selectable for environments where aiohttp is unwanted.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from httpx_aiohttp import AiohttpTransport

from ..types import Provider

__all__ = ["TRANSPORTS", "build_client"]


def _aiohttp(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    return AiohttpTransport(limits=limits)


def _httpx(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    return httpx.AsyncHTTPTransport(limits=limits)


TRANSPORTS: dict[str, Callable[[httpx.Limits], httpx.AsyncBaseTransport]] = {
    "aiohttp": _aiohttp,
    "httpx": _httpx,
}


def build_client(provider: Provider, transport: str = "aiohttp") -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=provider.max_connections,
        max_keepalive_connections=provider.max_connections,
        keepalive_expiry=60,
    )
    headers = dict(provider.headers)
    if provider.api_key:
        headers["authorization"] = f"Bearer {provider.api_key}"
    # Reads have no httpx timeout: streams may legitimately run for minutes. The attempt loop
    # enforces TTFT, stall and overall deadlines itself, where it can tell them apart.
    timeout = httpx.Timeout(connect=provider.connect_timeout_s, read=None, write=30.0, pool=30.0)
    return httpx.AsyncClient(
        base_url=provider.base_url,
        headers=headers,
        timeout=timeout,
        transport=TRANSPORTS[transport](limits),
    )
