"""What the library's `messages` calls return: Anthropic-shaped results (pure).

The same thin views over wire dicts as `results` (`.raw` is exactly what Anthropic's API
would send), for the Messages surface: an `AnthropicMessage` and, streamed, the
`AnthropicEvent`s of Anthropic's event sequence. With the `anthropic` package installed,
`to_anthropic()` gives the SDK's own pydantic model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .results import _Answer, _View

if TYPE_CHECKING:
    import anthropic.types

__all__ = ["AnthropicEvent", "AnthropicMessage"]


class AnthropicMessage(_Answer):
    """An Anthropic `message`, with how it was routed: `decision`, `deployment`, and
    in-process `observation` (what the attempt measured; None from the gateway)."""

    __slots__ = ()

    @property
    def content(self) -> list[dict[str, Any]]:
        """The content blocks (`text`, `tool_use`, `thinking`), as dicts."""
        return list(self.raw.get("content") or ())

    @property
    def text(self) -> str:
        """The text blocks joined ("" when the model only used tools)."""
        return "".join(b.get("text") or "" for b in self.content if b.get("type") == "text")

    @property
    def tool_uses(self) -> list[dict[str, Any]]:
        """The `tool_use` blocks: `id`, `name` and `input` of each call."""
        return [b for b in self.content if b.get("type") == "tool_use"]

    @property
    def stop_reason(self) -> str | None:
        """`end_turn`, `max_tokens`, `stop_sequence`, `tool_use` or `refusal`."""
        return self._str("stop_reason")

    @property
    def usage(self) -> dict[str, int]:
        """Anthropic's counts: `input_tokens` (fresh), `output_tokens`, and the cache's
        `cache_read_input_tokens` / `cache_creation_input_tokens`."""
        return dict(self.raw.get("usage") or {})

    def to_anthropic(self) -> anthropic.types.Message:
        """The official SDK's model of this message (needs the `anthropic` package)."""
        from anthropic.types import Message

        return Message.model_validate(self.raw)


class AnthropicEvent(_View):
    """One event of a streamed message (`message_start`, `content_block_delta`, ...,
    `message_stop`); routing details are on the stream."""

    __slots__ = ()

    @property
    def type(self) -> str:
        """The event's name (`message_start`, `content_block_delta`, `ping`, ...)."""
        return self._str("type") or ""

    @property
    def text(self) -> str:
        """The text a `text_delta` adds ("" for every other event)."""
        delta = self.raw.get("delta")
        if isinstance(delta, dict) and delta.get("type") == "text_delta":
            text = delta.get("text")
            return text if isinstance(text, str) else ""
        return ""

    def to_anthropic(self) -> anthropic.types.RawMessageStreamEvent | None:
        """The official SDK's model of this event (needs the `anthropic` package); None for
        a `ping`, which the SDK's event union does not list."""
        if self.type == "ping":
            return None
        from anthropic.types import RawMessageStreamEvent
        from pydantic import TypeAdapter

        return TypeAdapter(RawMessageStreamEvent).validate_python(self.raw)
