"""An in-process stream's chat chunks as Anthropic's events, on the consumer's side.

The engine streams chat.completion.chunks; `MessageStream` hands out Anthropic events. These
sources sit between the two, translating with the Messages surface's own `MessagesStream`
(the same code the gateway's `POST /v1/messages` runs), one chunk at a time as it is read.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ..stats.observation import Observation
from ..surfaces.messages_stream import MessagesStream
from .streams import AsyncChunkSource, ChunkSource

__all__ = ["AsyncMessageEvents", "MessageEvents"]


class _Translation:
    """Chunks in (None at the end), event dicts out, in order."""

    __slots__ = ("_ended", "_ready", "_walk")

    def __init__(self, model: str, input_tokens_estimate: int) -> None:
        self._walk = MessagesStream(model, input_tokens_estimate)
        self._ready: deque[dict[str, Any]] = deque()
        self._ended = False

    @property
    def needs_chunk(self) -> bool:
        return not self._ready and not self._ended

    def push(self, chunk: dict[str, Any] | None) -> None:
        if chunk is None:
            self._ended = True
            events = self._walk.finish()
        else:
            events = self._walk.add(chunk)
        self._ready.extend(data for _, data in events)

    def pop(self) -> dict[str, Any] | None:
        return self._ready.popleft() if self._ready else None


class MessageEvents:
    """A sync `ChunkSource` of Anthropic events over one of chat chunks."""

    def __init__(self, chunks: ChunkSource, model: str, input_tokens_estimate: int) -> None:
        self._chunks = chunks
        self._translation = _Translation(model, input_tokens_estimate)

    def next_chunk(self) -> dict[str, Any] | None:
        translation = self._translation
        while translation.needs_chunk:
            translation.push(self._chunks.next_chunk())
        return translation.pop()

    def close(self) -> None:
        self._chunks.close()

    @property
    def observation(self) -> Observation | None:
        return self._chunks.observation


class AsyncMessageEvents:
    """The async twin of `MessageEvents`."""

    def __init__(self, chunks: AsyncChunkSource, model: str, input_tokens_estimate: int
                 ) -> None:
        self._chunks = chunks
        self._translation = _Translation(model, input_tokens_estimate)

    async def next_chunk(self) -> dict[str, Any] | None:
        translation = self._translation
        while translation.needs_chunk:
            translation.push(await self._chunks.next_chunk())
        return translation.pop()

    async def aclose(self) -> None:
        await self._chunks.aclose()

    @property
    def observation(self) -> Observation | None:
        return self._chunks.observation
