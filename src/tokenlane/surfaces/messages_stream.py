"""OpenAI chat.completion.chunk stream -> Anthropic Messages stream events (pure).

Anthropic's order, as its API sends it:

    message_start                          the message, empty content, stop_reason null
    content_block_start (index 0)          {"type": "text", "text": ""}, a thinking block (a
                                           reasoning model's reasoning) or a tool_use block
    ping
    content_block_delta ...                thinking_delta / text_delta / input_json_delta
    content_block_stop (index 0)
    content_block_start (index 1) ...      one block per text run or tool call
    message_delta                          stop_reason, stop_sequence, cumulative usage
    message_stop

`message_start` carries the gateway's estimate of the input tokens (the upstream counts them
only at the end); `message_delta` carries the upstream's counts, which Anthropic's SDKs take
over the earlier numbers.
"""

from __future__ import annotations

from typing import Any

from .chunks import ChunkWalk, Event
from .messages_reply import message_id, stop_reason, usage_of

__all__ = ["MessagesStream"]


class MessagesStream(ChunkWalk):
    """Feed chunks with `add`, then `finish()`; each returns the events to send, in order."""

    def __init__(self, model: str, input_tokens_estimate: int) -> None:
        super().__init__()
        self._model = model
        self._input_estimate = input_tokens_estimate
        self._pinged = False
        self._blocks = 0  # content blocks opened so far
        # ("thinking", -1), ("text", -1) or ("tool", chat call index)
        self._open: tuple[str, int] | None = None
        self._tool_blocks: dict[int, int] = {}  # chat tool-call index -> block index
        self._msg_id = message_id(None)

    def finish(self) -> list[Event]:
        """The closing events once the chat stream ended normally."""
        events = self.opening() + self._close()
        usage = usage_of(self.usage)
        if self.usage is None:
            usage.pop("input_tokens")  # unknown: message_start's estimate stands
        events.append(("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(self.finish_reason), "stop_sequence": None},
            "usage": usage,
        }))
        events.append(("message_stop", {"type": "message_stop"}))
        return events

    # -- blocks -----------------------------------------------------------------------------

    def begin(self, chunk: dict[str, Any]) -> list[Event]:
        self._msg_id = message_id(chunk.get("id"))
        return [("message_start", {"type": "message_start", "message": {
            "id": self._msg_id, "type": "message", "role": "assistant", "model": self._model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": self._input_estimate, "output_tokens": 0},
        }})]

    def reasoning(self, text: str) -> list[Event]:
        events: list[Event] = []
        if self._open is None or self._open[0] != "thinking":
            events += self._open_block(("thinking", -1),
                                       {"type": "thinking", "thinking": "", "signature": ""})
        events.append(self._delta(self._blocks - 1, {"type": "thinking_delta", "thinking": text}))
        return events

    def text(self, text: str) -> list[Event]:
        events: list[Event] = []
        if self._open is None or self._open[0] != "text":
            events += self._open_block(("text", -1), {"type": "text", "text": ""})
        events.append(self._delta(self._blocks - 1, {"type": "text_delta", "text": text}))
        return events

    def tool_piece(self, call: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        index = call.get("index", 0)
        function = call.get("function") or {}
        block = self._tool_blocks.get(index)
        if block is None:
            block = self._blocks
            self._tool_blocks[index] = block
            call_id = call.get("id") or f"toolu_{self._msg_id}_{index}"
            events += self._open_block(("tool", index), {
                "type": "tool_use", "id": call_id, "name": function.get("name") or "",
                "input": {}})
        if function.get("arguments"):
            # A piece for a call whose block is already closed still names its own index:
            # Anthropic's SDKs accumulate by index.
            events.append(self._delta(block, {"type": "input_json_delta",
                                              "partial_json": function["arguments"]}))
        return events

    def _open_block(self, kind: tuple[str, int], block: dict[str, Any]) -> list[Event]:
        events = self._close()
        events.append(("content_block_start", {"type": "content_block_start",
                                               "index": self._blocks, "content_block": block}))
        self._open = kind
        self._blocks += 1
        if not self._pinged:
            events.append(("ping", {"type": "ping"}))
            self._pinged = True
        return events

    def _delta(self, index: int, delta: dict[str, Any]) -> Event:
        return ("content_block_delta", {"type": "content_block_delta", "index": index,
                                        "delta": delta})

    def _close(self) -> list[Event]:
        if self._open is None:
            return []
        self._open = None
        return [("content_block_stop", {"type": "content_block_stop", "index": self._blocks - 1})]
