"""Pure helpers over OpenAI chat.completion.chunk dicts: what counts as a token, and turning a
stream back into the chat.completion the provider would have returned without streaming.

The gateway always streams from upstream (that is how it measures TTFT and decode speed on
every request); a non-streaming client gets the assembled result.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CompletionAssembler", "has_token"]

_TOKEN_KEYS = ("content", "tool_calls", "refusal", "reasoning", "reasoning_content", "function_call")


def has_token(chunk: dict[str, Any]) -> bool:
    """True when the chunk carries generated output (text, reasoning, a tool call piece)."""
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta")
        if delta:
            for key in _TOKEN_KEYS:
                if delta.get(key):
                    return True
    return False


class _Choice:
    __slots__ = ("extra", "finish_reason", "index", "logprobs", "role", "text", "tool_calls")

    def __init__(self, index: int) -> None:
        self.index = index
        self.role = "assistant"
        self.text: dict[str, list[str]] = {}  # content, refusal, reasoning... → pieces
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.logprobs: dict[str, list[Any]] | None = None
        self.extra: dict[str, Any] = {}

    def add(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta") or {}
        if len(delta) == 1 and type(content := delta.get("content")) is str:
            # Most chunks: one piece of text (once per token, so without the loop below).
            self.text.setdefault("content", []).append(content)
            delta = {}
        for key, value in delta.items():
            if key == "role":
                self.role = value or self.role
            elif key == "tool_calls":
                for call in value or ():
                    self._add_tool_call(call)
            elif isinstance(value, str):
                self.text.setdefault(key, []).append(value)
            elif value is not None:
                self.extra[key] = value
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        logprobs = choice.get("logprobs")
        if logprobs:
            merged = self.logprobs if self.logprobs is not None else {}
            for key, items in logprobs.items():
                if items:
                    merged.setdefault(key, []).extend(items)
            self.logprobs = merged

    def _add_tool_call(self, piece: dict[str, Any]) -> None:
        call = self.tool_calls.get(piece.get("index", 0))
        if call is None:
            call = {"id": piece.get("id"), "type": piece.get("type", "function"),
                    "function": {"name": "", "arguments": ""}}
            self.tool_calls[piece.get("index", 0)] = call
        if piece.get("id"):
            call["id"] = piece["id"]
        fn = piece.get("function") or {}
        if fn.get("name"):
            call["function"]["name"] += fn["name"]
        if fn.get("arguments"):
            call["function"]["arguments"] += fn["arguments"]

    def result(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": self.role}
        message["content"] = "".join(self.text.pop("content")) if "content" in self.text else None
        message["refusal"] = "".join(self.text.pop("refusal")) if "refusal" in self.text else None
        for key, pieces in self.text.items():  # reasoning and other provider extensions
            message[key] = "".join(pieces)
        message.update(self.extra)
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        return {
            "index": self.index,
            "message": message,
            "logprobs": self.logprobs,
            "finish_reason": self.finish_reason,
        }


class CompletionAssembler:
    """Feed every chunk of one stream; `result()` is the equivalent chat.completion."""

    __slots__ = ("_choices", "_meta", "usage")

    def __init__(self) -> None:
        self._choices: dict[int, _Choice] = {}
        self._meta: dict[str, Any] = {}
        self.usage: dict[str, Any] | None = None

    def add_all(self, chunks: list[dict[str, Any]]) -> None:
        for chunk in chunks:
            self.add(chunk)

    def add(self, chunk: dict[str, Any]) -> None:
        if not self._meta:
            self._meta = {k: chunk[k] for k in ("id", "created", "model") if k in chunk}
            for key in ("system_fingerprint", "service_tier"):
                if chunk.get(key) is not None:
                    self._meta[key] = chunk[key]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            state = self._choices.get(index)
            if state is None:
                state = self._choices[index] = _Choice(index)
            state.add(choice)

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self._meta.get("id"),
            "object": "chat.completion",
            "created": self._meta.get("created"),
            "model": self._meta.get("model"),
            "choices": [self._choices[i].result() for i in sorted(self._choices)],
        }
        for key in ("system_fingerprint", "service_tier"):
            if key in self._meta:
                out[key] = self._meta[key]
        if self.usage is not None:
            out["usage"] = self.usage
        return out
