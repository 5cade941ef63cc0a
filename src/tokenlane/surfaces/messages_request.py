"""Anthropic Messages request -> OpenAI chat-completions body (pure).

What maps, and how:

    system (string or text blocks)     a leading `system` message
    text / image blocks                content parts (`text`, `image_url` with a data: URL)
    assistant `tool_use` blocks        the assistant message's `tool_calls`
    user `tool_result` blocks          `tool` messages, placed before the rest of that turn
    tools[].input_schema               tools[].function.parameters
    tool_choice auto / any / tool / none   "auto" / "required" / {function} / "none"
    disable_parallel_tool_use          parallel_tool_calls: false
    max_tokens, stop_sequences         max_tokens, stop
    temperature, top_p, stream         unchanged
    metadata.user_id                   user

Dropped, because an OpenAI-dialect model has nothing to do with them: `cache_control`
markers, `thinking` (and thinking blocks in the history), `top_k`, `service_tier`. Anything a
chat model cannot take (server tools, documents) is a 400 naming the field, rather than an
answer that silently ignored part of the request.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import InvalidRequest
from ..request import check_nesting

__all__ = ["chat_body_from_messages", "messages_of"]

_PASSED = ("temperature", "top_p", "stream")
# Request fields that carry nothing a chat model can use (see the module docstring).
_IGNORED_BLOCKS = frozenset({"thinking", "redacted_thinking"})


def chat_body_from_messages(body: dict[str, Any]) -> dict[str, Any]:
    """The chat-completions body equivalent to the Messages `body`; InvalidRequest when a
    field is missing or has no chat equivalent. `provider` (routing options) is kept."""
    check_nesting(body)  # before anything walks or re-encodes it
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Field required", param="model")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise InvalidRequest("max_tokens: Field required (an integer >= 1)", param="max_tokens")
    chat: dict[str, Any] = {"model": model, "messages": messages_of(body),
                            "max_tokens": max_tokens}
    for key in _PASSED:
        if body.get(key) is not None:
            chat[key] = body[key]
    if chat.get("stream"):
        # The final usage is what message_delta reports; ask for it.
        chat["stream_options"] = {"include_usage": True}
    stop = body.get("stop_sequences")
    if stop:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise InvalidRequest("stop_sequences: must be a list of strings",
                                 param="stop_sequences")
        chat["stop"] = stop
    tools = body.get("tools")
    if tools:
        chat["tools"] = [_tool(tool, i) for i, tool in enumerate(_list(tools, "tools"))]
    choice = body.get("tool_choice")
    if choice is not None:
        chat.update(_tool_choice(choice, bool(tools)))
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        chat["user"] = metadata["user_id"]
    if "provider" in body:
        chat["provider"] = body["provider"]
    return chat


def messages_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The chat `messages` list for a Messages body: system first, then each turn."""
    out: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        out.append({"role": "system", "content": _system_text(system)})
    turns = body.get("messages")
    if not isinstance(turns, list) or not turns:
        raise InvalidRequest("messages: Field required (a non-empty list)", param="messages")
    for i, turn in enumerate(turns):
        where = f"messages.{i}"
        if not isinstance(turn, dict):
            raise InvalidRequest(f"{where}: must be an object", param=where)
        role = turn.get("role")
        if role == "user":
            out.extend(_user_turn(turn.get("content"), where))
        elif role == "assistant":
            out.append(_assistant_turn(turn.get("content"), where))
        else:
            raise InvalidRequest(f"{where}.role: must be 'user' or 'assistant'",
                                 param=f"{where}.role")
    return out


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    blocks = _list(system, "system")
    texts = []
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(
                block.get("text"), str):
            raise InvalidRequest(f"system.{i}: only text blocks are allowed",
                                 param=f"system.{i}")
        texts.append(block["text"])
    return "\n".join(texts)


def _blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = _list(content, f"{where}.content")
    for j, block in enumerate(blocks):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise InvalidRequest(f"{where}.content.{j}: a content block needs a type",
                                 param=f"{where}.content.{j}")
    return blocks


def _user_turn(content: Any, where: str) -> list[dict[str, Any]]:
    """Tool results first (chat wants them right after the assistant's calls), then the rest
    of the turn as one user message."""
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(_blocks(content, where)):
        at = f"{where}.content.{j}"
        kind = block["type"]
        if kind == "tool_result":
            results.append(_tool_result(block, at))
        elif kind in _IGNORED_BLOCKS:
            continue
        else:
            parts.append(_content_part(block, at))
    out = results
    if parts:
        only_text = len(parts) == 1 and parts[0]["type"] == "text"
        out.append({"role": "user", "content": parts[0]["text"] if only_text else parts})
    return out


def _assistant_turn(content: Any, where: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(_blocks(content, where)):
        at = f"{where}.content.{j}"
        kind = block["type"]
        if kind == "text":
            texts.append(_text(block, at))
        elif kind == "tool_use":
            calls.append(_tool_call(block, at))
        elif kind not in _IGNORED_BLOCKS:
            raise InvalidRequest(f"{at}: '{kind}' blocks are not supported in assistant turns",
                                 param=at)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _content_part(block: dict[str, Any], at: str) -> dict[str, Any]:
    kind = block["type"]
    if kind == "text":
        return {"type": "text", "text": _text(block, at)}
    if kind == "image":
        return {"type": "image_url", "image_url": {"url": _image_url(block.get("source"), at)}}
    raise InvalidRequest(f"{at}: '{kind}' blocks are not supported by this gateway", param=at)


def _image_url(source: Any, at: str) -> str:
    if isinstance(source, dict):
        if source.get("type") == "base64" and isinstance(source.get("data"), str):
            media = source.get("media_type") or "image/png"
            return f"data:{media};base64,{source['data']}"
        if source.get("type") == "url" and isinstance(source.get("url"), str):
            return str(source["url"])
    raise InvalidRequest(f"{at}.source: an image source must be base64 data or a url",
                         param=f"{at}.source")


def _tool_result(block: dict[str, Any], at: str) -> dict[str, Any]:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"{at}.tool_use_id: Field required", param=f"{at}.tool_use_id")
    content = block.get("content", "")
    if isinstance(content, str):
        text = content
    else:
        # Text of every text block; a chat tool message carries a string.
        text = "".join(_text(part, f"{at}.content.{k}")
                       for k, part in enumerate(_blocks(content, at)) if part["type"] == "text")
    if block.get("is_error"):
        # Chat has no error flag on a tool message; say it in words the model reads.
        text = f"Error: {text}"
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def _tool_call(block: dict[str, Any], at: str) -> dict[str, Any]:
    call_id, name = block.get("id"), block.get("name")
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise InvalidRequest(f"{at}: a tool_use block needs an id and a name", param=at)
    arguments = block.get("input", {})
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": orjson.dumps(arguments).decode()}}


def _tool(tool: Any, i: int) -> dict[str, Any]:
    at = f"tools.{i}"
    if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
        raise InvalidRequest(f"{at}.name: Field required", param=f"{at}.name")
    if tool.get("type") not in (None, "custom"):
        raise InvalidRequest(
            f"{at}.type: server tool '{tool['type']}' is not available through this gateway "
            "(only client tools with an input_schema)", param=f"{at}.type")
    function: dict[str, Any] = {"name": tool["name"],
                                "parameters": tool.get("input_schema") or {"type": "object"}}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any, has_tools: bool) -> dict[str, Any]:
    kind = choice.get("type") if isinstance(choice, dict) else None
    out: dict[str, Any]
    if kind == "auto":
        out = {"tool_choice": "auto"}
    elif kind == "any":
        out = {"tool_choice": "required"}
    elif kind == "none":
        out = {"tool_choice": "none"}
    elif kind == "tool" and isinstance(choice.get("name"), str):
        out = {"tool_choice": {"type": "function", "function": {"name": choice["name"]}}}
    else:
        raise InvalidRequest("tool_choice: type must be one of auto, any, tool (with a name), "
                             "none", param="tool_choice")
    if not has_tools:
        return {}  # chat refuses a tool_choice without tools; Anthropic ignores it
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False
    return out


def _text(block: dict[str, Any], at: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise InvalidRequest(f"{at}.text: Field required", param=f"{at}.text")
    return text


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidRequest(f"{where}: must be a list", param=where)
    return value
