"""Streamed answers: iterators of chunks that know how they were routed.

One `Stream` (sync) and one `AsyncStream` type serve both the in-process router and the
gateway client (and `MessageStream` / `AsyncMessageStream` the Messages surface's events); where the chunks come from is a small source object behind them. Always
finish iterating or close the stream (`with` / `async with` do it): closing early releases
the upstream connection, and the attempt is recorded as cancelled.
"""

from __future__ import annotations

from typing import Any, Generic, Protocol, Self, TypeVar

from ..stats.observation import Observation
from ._closing import AsyncClosing, Closing
from .anthropic_results import AnthropicEvent
from .results import ChatCompletionChunk
from .route import RouteInfo

__all__ = ["AsyncChunkSource", "AsyncMessageStream", "AsyncStream", "ChunkSource",
           "MessageStream", "Stream"]


class ChunkSource(Protocol):
    """Where a sync stream's chunks come from."""

    def next_chunk(self) -> dict[str, Any] | None:
        """The next chunk dict; None at the end. Raises the typed error on failure."""
        ...

    def close(self) -> None:
        """Stop early and release the upstream (idempotent)."""
        ...

    @property
    def observation(self) -> Observation | None:
        """What the attempt measured, once it ended (in-process only)."""
        ...


class AsyncChunkSource(Protocol):
    """Where an async stream's chunks come from."""

    async def next_chunk(self) -> dict[str, Any] | None:
        """The next chunk dict; None at the end. Raises the typed error on failure."""
        ...

    async def aclose(self) -> None:
        """Stop early and release the upstream (idempotent)."""
        ...

    @property
    def observation(self) -> Observation | None:
        """What the attempt measured, once it ended (in-process only)."""
        ...


S = TypeVar("S", ChunkSource, AsyncChunkSource)


class _StreamBase(Generic[S]):
    __slots__ = ("_closed", "_source", "decision", "deployment")

    def __init__(self, source: S, *, decision: RouteInfo | None, deployment: str | None) -> None:
        self._source: S = source
        self.decision = decision
        self.deployment = deployment
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once the stream ended, failed or was closed."""
        return self._closed

    @property
    def observation(self) -> Observation | None:
        """What the attempt measured (TTFT, decode tokens/s, tokens, cost); None until the
        stream ended, and always None from the gateway."""
        return self._source.observation

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {state} deployment={self.deployment!r}>"


class _SyncStream(_StreamBase[ChunkSource], Closing):
    """Iteration and closing of a sync stream; subclasses say what one item is."""

    __slots__ = ()

    def __iter__(self) -> Self:
        return self

    def _next_raw(self) -> dict[str, Any]:
        if self._closed:
            raise StopIteration
        try:
            raw = self._source.next_chunk()
        except BaseException:
            self.close()
            raise
        if raw is None:
            self.close()
            raise StopIteration
        return raw

    def close(self) -> None:
        """Stop reading; an unfinished stream releases its upstream (recorded as cancelled)."""
        if not self._closed:
            self._closed = True
            self._source.close()


class _AsyncStream(_StreamBase[AsyncChunkSource], AsyncClosing):
    """The async twin of `_SyncStream`."""

    __slots__ = ()

    def __aiter__(self) -> Self:
        return self

    async def _next_raw(self) -> dict[str, Any]:
        if self._closed:
            raise StopAsyncIteration
        try:
            raw = await self._source.next_chunk()
        except BaseException:
            await self.aclose()
            raise
        if raw is None:
            await self.aclose()
            raise StopAsyncIteration
        return raw

    async def aclose(self) -> None:
        """Stop reading; an unfinished stream releases its upstream (recorded as cancelled)."""
        if not self._closed:
            self._closed = True
            await self._source.aclose()


class Stream(_SyncStream):
    """A streamed chat completion: iterate it for `ChatCompletionChunk`s.

    The first token was already produced when this object was returned: `decision` and
    `deployment` say who produces it; `observation` (in-process) fills in at the end. A
    failure after the first token raises `StreamBroken`; nothing is switched silently.
    """

    __slots__ = ()

    def __next__(self) -> ChatCompletionChunk:
        return ChatCompletionChunk(self._next_raw())


class AsyncStream(_AsyncStream):
    """The async twin of `Stream`: `async for chunk in stream`, `await stream.aclose()`."""

    __slots__ = ()

    async def __anext__(self) -> ChatCompletionChunk:
        return ChatCompletionChunk(await self._next_raw())


class MessageStream(_SyncStream):
    """A streamed Anthropic message: iterate it for `AnthropicEvent`s, in Anthropic's order
    (`message_start` ... `message_stop`). Routed and closed like `Stream`; a failure after
    the first token raises `StreamBroken`."""

    __slots__ = ()

    def __next__(self) -> AnthropicEvent:
        return AnthropicEvent(self._next_raw())


class AsyncMessageStream(_AsyncStream):
    """The async twin of `MessageStream`."""

    __slots__ = ()

    async def __anext__(self) -> AnthropicEvent:
        return AnthropicEvent(await self._next_raw())
