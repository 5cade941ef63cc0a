"""Chat <-> Anthropic Messages for Anthropic upstreams (pure; the I/O is in anthropic.py).

Outbound, a chat-completions body becomes a Messages body: system messages join into
`system`, tool calls become `tool_use` blocks, tool messages `tool_result` blocks in the next
user turn, `stop` becomes `stop_sequences`, and `max_tokens` (required by Anthropic) defaults
to `DEFAULT_MAX_TOKENS`. Inbound, Anthropic's stream events become chat.completion.chunks
with the usage chunk OpenAI sends last: `prompt_tokens` counts every input token (fresh,
cache reads and cache writes), with cache reads as `prompt_tokens_details.cached_tokens` and
cache writes as `prompt_tokens_details.cache_write_tokens` (OpenRouter's name; priced by
tokenlane.pricing).
"""

from __future__ import annotations

from typing import Any

import orjson

from .base import UpstreamBadResponse
from .redact import redact

__all__ = ["DEFAULT_MAX_TOKENS", "FORWARDED", "ChunksFromEvents", "client_headers",
           "messages_body_from_chat"]

# The request headers of Anthropic's API a Messages client may set for its upstream.
FORWARDED = ("anthropic-version", "anthropic-beta")

DEFAULT_MAX_TOKENS = 4096
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop",
           "max_tokens": "length", "model_context_window_exceeded": "length",
           "tool_use": "tool_calls", "refusal": "content_filter"}


def messages_body_from_chat(body: dict[str, Any]) -> dict[str, Any]:
    """The Messages request for a chat-completions `body` (model already the upstream's)."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in body.get("messages") or ():
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_text_of(message.get("content")))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(message))
        elif role == "tool":
            _append(turns, "user", [{"type": "tool_result",
                                     "tool_use_id": message.get("tool_call_id") or "",
                                     "content": _text_of(message.get("content"))}])
        else:
            _append(turns, "user", _user_blocks(message.get("content")))
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS
    out: dict[str, Any] = {"model": body.get("model"), "messages": turns, "max_tokens": limit,
                           "stream": True}
    if system:
        out["system"] = "\n\n".join(system)
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("tools"):
        out["tools"] = [_tool(t["function"]) for t in body["tools"]
                        if isinstance(t, dict) and isinstance(t.get("function"), dict)]
    choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if choice is not None and out.get("tools"):
        out["tool_choice"] = choice
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}
    return out


def client_headers(configured_beta: str | None, forwarded: tuple[tuple[str, str], ...]
                   ) -> dict[str, str]:
    """The headers a Messages client sent for Anthropic, to set on one upstream request.

    The client's `anthropic-version` replaces the default (its body is written for that
    version); its `anthropic-beta` list joins the betas the provider's config turns on, each
    named once. Any other name is not the client's to set upstream and is left out."""
    out: dict[str, str] = {}
    for name, value in forwarded:
        if name == "anthropic-beta" and configured_beta:
            names = (b.strip() for b in f"{configured_beta},{value}".split(","))
            out[name] = ",".join(dict.fromkeys(b for b in names if b))
        elif name in FORWARDED:
            out[name] = value
    return out


def _append(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    # Consecutive turns of one role are one turn to Anthropic: the tool results answering
    # one assistant turn must all be in the user turn right after it.
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _user_blocks(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return [{"type": "text", "text": _text_of(content)}]
    blocks = []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "image_url":
            blocks.append({"type": "image", "source": _image_source(part.get("image_url"))})
        elif isinstance(part.get("text"), str):
            blocks.append({"type": "text", "text": part["text"]})
    return blocks


def _image_source(image: Any) -> dict[str, Any]:
    url = image.get("url", "") if isinstance(image, dict) else str(image or "")
    if url.startswith("data:") and ";base64," in url:
        media, _, data = url[5:].partition(";base64,")
        return {"type": "base64", "media_type": media, "data": data}
    return {"type": "url", "url": url}


def _assistant_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    text = _text_of(message.get("content"))
    if text:
        blocks.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        try:
            arguments = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            arguments = {}
        blocks.append({"type": "tool_use", "id": call.get("id") or "",
                       "name": function.get("name") or "",
                       "input": arguments if isinstance(arguments, dict) else {}})
    return blocks


def _tool(function: dict[str, Any]) -> dict[str, Any]:
    tool = {"name": function.get("name"),
            "input_schema": function.get("parameters") or {"type": "object"}}
    if function.get("description"):
        tool["description"] = function["description"]
    return tool


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    out: dict[str, Any] | None
    if choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        out = {"type": "tool", "name": choice["function"].get("name")}
    elif choice == "auto" or parallel is False:
        out = {"type": "auto"}
    else:
        out = None
    if out is not None and parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


class ChunksFromEvents:
    """Anthropic stream events in, chat.completion.chunks out. `completed` once
    `message_stop` arrived."""

    def __init__(self, created: int, secret: str | None = None) -> None:
        self.completed = False
        self._created = created
        self._secret = secret
        self._id = "chatcmpl-anthropic"
        self._model = ""
        self._usage: dict[str, int] = {}
        self._tools: dict[int, int] = {}  # content block index -> chat tool-call index

    def feed(self, name: str | None, data: dict[str, Any]) -> list[dict[str, Any]]:
        kind = data.get("type") or name
        if kind == "message_start":
            message = data.get("message") or {}
            self._id = "chatcmpl-" + str(message.get("id") or "anthropic")
            self._model = str(message.get("model") or "")
            self._take_usage(message.get("usage"))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "content_block_delta":
            return self._block_delta(data)
        if kind == "message_delta":
            self._take_usage(data.get("usage"))
            reason = (data.get("delta") or {}).get("stop_reason")
            return [self._chunk({}, _FINISH.get(reason, "stop"))] if reason else []
        if kind == "message_stop":
            self.completed = True
            return [self._usage_chunk()]
        if kind == "error":
            err = data.get("error")
            message = err.get("message") if isinstance(err, dict) else err
            raise UpstreamBadResponse(
                f"error event in stream: {redact(str(message), self._secret)}")
        return []  # ping, content_block_stop, and events added after this was written

    def _block_start(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        block = data.get("content_block") or {}
        if block.get("type") == "tool_use":
            call = self._tools[data.get("index", 0)] = len(self._tools)
            return [self._chunk({"tool_calls": [{
                "index": call, "id": block.get("id"), "type": "function",
                "function": {"name": block.get("name") or "", "arguments": ""}}]})]
        if block.get("type") == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        return []

    def _block_delta(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if kind == "input_json_delta" and delta.get("partial_json"):
            call = self._tools.get(data.get("index", 0))
            if call is None:
                raise UpstreamBadResponse("input_json_delta for a block that is not a tool_use")
            return [self._chunk({"tool_calls": [{
                "index": call, "function": {"arguments": delta["partial_json"]}}]})]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [self._chunk({"reasoning_content": delta["thinking"]})]
        return []

    def _take_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            # Counts are cumulative: a later event's value replaces an earlier one.
            self._usage.update({k: v for k, v in usage.items() if isinstance(v, int)})

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created,
                "model": self._model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                             "finish_reason": finish}]}

    def _usage_chunk(self) -> dict[str, Any]:
        usage = self._usage
        cached = usage.get("cache_read_input_tokens", 0)
        written = usage.get("cache_creation_input_tokens", 0)
        prompt = usage.get("input_tokens", 0) + cached + written
        output = usage.get("output_tokens", 0)
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created,
                "model": self._model, "choices": [],
                "usage": {"prompt_tokens": prompt, "completion_tokens": output,
                          "total_tokens": prompt + output,
                          "prompt_tokens_details": {"cached_tokens": cached,
                                                    "cache_write_tokens": written}}}
