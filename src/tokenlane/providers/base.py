"""The seam between the router and upstream APIs: one small interface per dialect.

A dialect opens a streaming chat completion and yields OpenAI-shaped chunk dicts. Every
upstream failure is raised as an `UpstreamError` subclass whose `outcome` names its class
(connect, timeout, 4xx, 429, 5xx, bad_response); the attempt loop decides what to do with it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

__all__ = [
    "Dialect",
    "UpstreamBadResponse",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamHTTPError",
    "UpstreamStream",
    "UpstreamTimeout",
]


# An upstream's 401/403 says the gateway's own credentials for that provider are wrong (the
# client's key is ours to check, never forwarded): a failure of the deployment, not the request.
AUTH_STATUSES = frozenset({401, 403})


class UpstreamError(Exception):
    outcome = "error"
    status: int | None = None
    retry_after: float | None = None
    # The answer's response headers when there was an answer (rate limits: capacity.py).
    headers: Any = ()


class UpstreamConnectError(UpstreamError):
    outcome = "connect"


class UpstreamTimeout(UpstreamError):
    outcome = "timeout"


class UpstreamBadResponse(UpstreamError):
    """Unparsable body, a stream cut short, an in-stream error event."""

    outcome = "bad_response"


class UpstreamHTTPError(UpstreamError):
    def __init__(self, status: int, body: dict[str, Any], retry_after: float | None = None):
        err = body.get("error")
        message = err.get("message") if isinstance(err, dict) else None
        super().__init__(f"HTTP {status}: {message or 'no error message'}")
        self.status = status
        self.body = body
        self.retry_after = retry_after
        self.outcome = ("429" if status == 429 else "5xx" if status >= 500
                        else "auth" if status in AUTH_STATUSES else "4xx")


class UpstreamStream(Protocol):
    """An open upstream stream of chat.completion.chunk dicts."""

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]: ...

    def batches(self) -> AsyncIterator[list[dict[str, Any]]]:
        """The same chunks, grouped by the network read that brought them (never empty), so a
        burst can be forwarded in one write."""
        ...

    async def aclose(self) -> None: ...


class Dialect(Protocol):
    """Talks to one provider. Built once per provider; holds its pooled HTTP transport."""

    async def open_stream(
        self, body: dict[str, Any], connect_timeout: float | None = None,
        headers: Sequence[tuple[str, str]] | None = None,
        api_headers: tuple[tuple[str, str], ...] = (),
    ) -> UpstreamStream:
        """Send a streaming request; return once response headers arrived with a 2xx.

        `connect_timeout` overrides the provider's for this request; `headers` are added to
        the provider's for this request alone (trace context). `api_headers` are the
        client's own headers for an upstream of its API (`ChatRequest.upstream_headers`,
        Anthropic's version and betas): a dialect sends those its API defines and ignores
        the rest."""
        ...

    async def aclose(self) -> None: ...
