"""The walk every streamed surface makes over chat.completion.chunks (pure).

Surfaces answer one completion per request, so only the first choice counts. A subclass says
what to emit when the stream begins, for a piece of reasoning, of text and of a tool call; the
walk keeps the finish reason and the usage for the closing events.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ChunkWalk", "Event", "reasoning_of"]

Event = tuple[str, dict[str, Any]]  # (SSE event name, its JSON data)


def reasoning_of(message: dict[str, Any]) -> str:
    """A chat message's reasoning text (empty when none), under either provider's name."""
    thought = message.get("reasoning_content") or message.get("reasoning")
    return thought if isinstance(thought, str) else ""


class ChunkWalk:
    def __init__(self) -> None:
        self.started = False
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None

    def add(self, chunk: dict[str, Any]) -> list[Event]:
        """The events for one chunk, in order."""
        events = [] if self.started else self.begin(chunk)
        self.started = True
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # n > 1 is never asked for by these surfaces
            delta = choice.get("delta") or {}
            thought = reasoning_of(delta)
            if thought:
                events += self.reasoning(thought)
            if delta.get("content"):
                events += self.text(delta["content"])
            for call in delta.get("tool_calls") or ():
                events += self.tool_piece(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def opening(self) -> list[Event]:
        """`begin`'s events if no chunk came at all (for closing an empty stream)."""
        events = [] if self.started else self.begin({})
        self.started = True
        return events

    def begin(self, chunk: dict[str, Any]) -> list[Event]:
        raise NotImplementedError

    def reasoning(self, text: str) -> list[Event]:
        raise NotImplementedError

    def text(self, text: str) -> list[Event]:
        raise NotImplementedError

    def tool_piece(self, call: dict[str, Any]) -> list[Event]:
        raise NotImplementedError
