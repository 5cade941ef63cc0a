"""OpenAI chat.completion -> Responses `response` object (pure), and the items both the
non-streamed answer and the stream build.

A response echoes the request's settings (instructions, tools, tool_choice, temperature, ...)
as OpenAI's does; `ResponseEcho` holds them, taken once from the request body. Ids derive from
the upstream's completion id, so the ids of one answer are stable and line up in logs.
"""

from __future__ import annotations

from typing import Any

from .chunks import reasoning_of

__all__ = [
    "ResponseEcho",
    "function_call_item",
    "item_id",
    "message_item",
    "output_text",
    "reasoning_item",
    "response_from_completion",
    "response_id",
    "response_object",
    "status_of",
    "usage_of",
]


class ResponseEcho:
    """What a response object repeats of its request (Responses API field names)."""

    __slots__ = ("fields",)

    def __init__(self, body: dict[str, Any], model: str) -> None:
        text = body.get("text") if isinstance(body.get("text"), dict) else {}
        fmt = text.get("format") if isinstance(text, dict) else None
        self.fields: dict[str, Any] = {
            "model": model,
            "instructions": body.get("instructions"),
            "tools": body.get("tools") or [],
            "tool_choice": body.get("tool_choice", "auto"),
            "temperature": body.get("temperature", 1.0),
            "top_p": body.get("top_p", 1.0),
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "max_output_tokens": body.get("max_output_tokens"),
            "metadata": body.get("metadata") if isinstance(body.get("metadata"), dict) else {},
            "text": {"format": fmt if isinstance(fmt, dict) else {"type": "text"}},
            "store": False,
            "truncation": "disabled",
        }
        if isinstance(body.get("user"), str):
            self.fields["user"] = body["user"]


def response_id(chat_id: Any) -> str:
    text = chat_id if isinstance(chat_id, str) and chat_id else "tokenlane"
    return "resp_" + text.removeprefix("chatcmpl-")


def response_object(echo: ResponseEcho, resp_id: str, created_at: float, status: str,
                    output: list[dict[str, Any]], usage: dict[str, Any] | None = None,
                    incomplete_reason: str | None = None) -> dict[str, Any]:
    out = {
        "id": resp_id,
        "object": "response",
        "created_at": int(created_at),
        "status": status,
        "error": None,
        "incomplete_details": None if incomplete_reason is None else {
            "reason": incomplete_reason},
        "output": output,
        **echo.fields,
    }
    if usage is not None:  # absent, not null, until known (the schema has no null usage)
        out["usage"] = usage
    return out


def status_of(finish_reason: Any) -> tuple[str, str | None]:
    """(status, incomplete reason) for a chat finish_reason."""
    if finish_reason == "length":
        return "incomplete", "max_output_tokens"
    if finish_reason == "content_filter":
        return "incomplete", "content_filter"
    return "completed", None


def item_id(prefix: str, resp_id: str, output_index: int) -> str:
    """`msg_<id>` / `rs_<id>` for the first output item, `_<index>` appended after it."""
    base = f"{prefix}_" + resp_id.removeprefix("resp_")
    return base if output_index == 0 else f"{base}_{output_index}"


def reasoning_item(item_id: str, text: str | None, status: str) -> dict[str, Any]:
    """A reasoning item carrying the model's reasoning text (no summary: none was made)."""
    return {"type": "reasoning", "id": item_id, "summary": [], "status": status,
            "content": [] if text is None else [{"type": "reasoning_text", "text": text}]}


def message_item(item_id: str, text: str | None, status: str) -> dict[str, Any]:
    """An assistant message item; `text` None while it has no content part yet."""
    return {"type": "message", "id": item_id, "status": status, "role": "assistant",
            "content": [] if text is None else [output_text(text)]}


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(call_id: str, name: str, arguments: str, status: str
                       ) -> dict[str, Any]:
    return {"type": "function_call", "id": "fc_" + call_id, "call_id": call_id, "name": name,
            "arguments": arguments, "status": status}


def usage_of(usage: Any) -> dict[str, Any]:
    usage = usage if isinstance(usage, dict) else {}
    prompt = usage.get("prompt_tokens") or 0
    output = usage.get("completion_tokens") or 0
    prompt_details = usage.get("prompt_tokens_details") or {}
    output_details = usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": prompt_details.get("cached_tokens") or 0,
                                 "cache_write_tokens":
                                 prompt_details.get("cache_write_tokens") or 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens":
                                  output_details.get("reasoning_tokens") or 0},
        "total_tokens": usage.get("total_tokens") or prompt + output,
    }


def response_from_completion(completion: dict[str, Any], echo: ResponseEcho,
                             created_at: float) -> dict[str, Any]:
    """The Responses answer for a non-streamed chat.completion."""
    choices = completion.get("choices") or [{}]
    message = choices[0].get("message") or {}
    resp_id = response_id(completion.get("id"))
    status, reason = status_of(choices[0].get("finish_reason"))
    output = []
    thought = reasoning_of(message)
    if thought:
        output.append(reasoning_item(item_id("rs", resp_id, 0), thought, "completed"))
    if message.get("content"):
        output.append(message_item(item_id("msg", resp_id, len(output)), message["content"],
                                   status))
    for i, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") or {}
        output.append(function_call_item(call.get("id") or f"call_{resp_id}_{i}",
                                         function.get("name") or "",
                                         function.get("arguments") or "", "completed"))
    return response_object(echo, resp_id, created_at, status, output,
                           usage_of(completion.get("usage")), reason)
