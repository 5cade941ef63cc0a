"""OpenAI chat.completion -> Anthropic Message (pure), and the pieces the stream shares.

Token counts follow Anthropic's meaning: `input_tokens` excludes prompt tokens read from a
cache and written to it, which are reported as `cache_read_input_tokens` and
`cache_creation_input_tokens` (OpenAI's `cached_tokens`, and OpenRouter's `cache_write_tokens`,
are parts of `prompt_tokens`).
"""

from __future__ import annotations

from typing import Any

import orjson

from .chunks import reasoning_of

__all__ = ["message_from_completion", "message_id", "stop_reason", "tool_input", "usage_of"]

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def message_from_completion(completion: dict[str, Any], model: str) -> dict[str, Any]:
    """The Messages API answer for a non-streamed chat.completion, named as `model`."""
    choices = completion.get("choices") or [{}]
    message = choices[0].get("message") or {}
    msg_id = message_id(completion.get("id"))
    content: list[dict[str, Any]] = []
    thought = reasoning_of(message)
    if thought:
        # No signature: it is not Anthropic's thinking, and comes back to us only (where
        # thinking blocks in the history are dropped).
        content.append({"type": "thinking", "thinking": thought, "signature": ""})
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for i, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id") or f"toolu_{msg_id}_{i}",
                        "name": function.get("name") or "",
                        "input": tool_input(function.get("arguments") or "")})
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choices[0].get("finish_reason")),
        "stop_sequence": None,
        "usage": usage_of(completion.get("usage")),
    }


def message_id(chat_id: Any) -> str:
    """A `msg_` id derived from the upstream's completion id (stable, so logs line up)."""
    text = chat_id if isinstance(chat_id, str) and chat_id else "tokenlane"
    return "msg_" + text.removeprefix("chatcmpl-")


def stop_reason(finish_reason: Any) -> str:
    return _STOP_REASONS.get(finish_reason, "end_turn") if finish_reason else "end_turn"


def tool_input(arguments: str) -> Any:
    """A tool call's arguments as the JSON object Anthropic's `input` is. A model that wrote
    something else gets its text back under one key rather than losing it."""
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_unparsed_arguments": arguments}
    return value if isinstance(value, dict) else {"_unparsed_arguments": arguments}


def usage_of(usage: Any) -> dict[str, int]:
    usage = usage if isinstance(usage, dict) else {}
    prompt = usage.get("prompt_tokens") or 0
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    cached = details.get("cached_tokens") or 0
    written = details.get("cache_write_tokens") or 0
    return {
        "input_tokens": max(0, prompt - cached - written),
        "output_tokens": usage.get("completion_tokens") or 0,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
    }
