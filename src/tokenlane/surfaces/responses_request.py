"""OpenAI Responses request (stateless subset) -> chat-completions body (pure).

    input: a string                       one user message
    input: items                          messages (input_text / input_image / output_text
                                          parts), function_call -> assistant tool_calls,
                                          function_call_output -> tool messages
    instructions                          a leading system message
    tools (type function)                 chat function tools
    tool_choice, parallel_tool_calls      unchanged ({"type":"function","name"} reshaped)
    max_output_tokens                     max_tokens
    temperature, top_p, user, stream      unchanged
    text.format json_schema / json_object response_format

Nothing is stored: `store: true`, `previous_response_id`, `conversation`, `background` and
item references are refused with a 400 that says so, as are built-in tools (web search, file
search, ...), which no chat deployment runs. Reasoning items in the input are dropped.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidRequest
from ..request import check_nesting

__all__ = ["chat_body_from_responses"]

_PASSED = ("temperature", "top_p", "user", "stream", "parallel_tool_calls")
_STATEFUL = {
    "previous_response_id": "previous_response_id needs stored responses",
    "conversation": "conversations need stored responses",
    "background": "background responses need storage",
}
_MESSAGE_ROLES = {"user": "user", "assistant": "assistant", "system": "system",
                  # Chat deployments other than OpenAI's rarely know `developer`.
                  "developer": "system"}


def chat_body_from_responses(body: dict[str, Any]) -> dict[str, Any]:
    """The chat-completions body equivalent to the Responses `body`; InvalidRequest (400)
    naming the field for what this stateless gateway cannot do."""
    check_nesting(body)  # before anything walks or re-encodes it
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("Missing required parameter: 'model'.", param="model",
                             code="missing_required_parameter")
    if body.get("store") is True:
        raise InvalidRequest(
            "This gateway does not store responses: send 'store': false (or leave it out) "
            "and pass the conversation in 'input'.", param="store", code="unsupported_parameter")
    for key, why in _STATEFUL.items():
        if body.get(key):
            raise InvalidRequest(
                f"'{key}' is not supported: {why}, and this gateway is stateless. "
                "Pass the whole conversation in 'input' instead.",
                param=key, code="unsupported_parameter")
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    messages += _input_messages(body.get("input"))
    chat: dict[str, Any] = {"model": model, "messages": messages}
    for key in _PASSED:
        if body.get(key) is not None:
            chat[key] = body[key]
    if chat.get("stream"):
        chat["stream_options"] = {"include_usage": True}  # response.completed reports usage
    limit = body.get("max_output_tokens")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise InvalidRequest("Invalid 'max_output_tokens': expected an integer >= 1.",
                                 param="max_output_tokens")
        chat["max_tokens"] = limit
    tools = body.get("tools")
    if tools:
        if not isinstance(tools, list):
            raise InvalidRequest("Invalid 'tools': expected an array.", param="tools")
        chat["tools"] = [_tool(tool, i) for i, tool in enumerate(tools)]
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    response_format = _response_format(body.get("text"))
    if response_format is not None:
        chat["response_format"] = response_format
    if "provider" in body:
        chat["provider"] = body["provider"]
    return chat


def _input_messages(items: Any) -> list[dict[str, Any]]:
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise InvalidRequest("Missing required parameter: 'input' (a string or a list of items).",
                             param="input", code="missing_required_parameter")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        at = f"input[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"Invalid '{at}': expected an object.", param=at)
        kind = item.get("type", "message")
        if kind == "message":
            out.append(_message(item, at))
        elif kind == "function_call":
            call = _function_call(item, at)
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant":
                # Consecutive calls (and the text before them) are one assistant turn in chat.
                last.setdefault("tool_calls", []).append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            out.append(_function_output(item, at))
        elif kind == "reasoning":
            continue  # a chat model cannot take another model's reasoning back
        elif kind == "item_reference":
            raise InvalidRequest(f"Invalid '{at}': item references need stored responses, and "
                                 "this gateway is stateless.", param=at,
                                 code="unsupported_parameter")
        else:
            raise InvalidRequest(f"Invalid '{at}.type': '{kind}' items are not supported by "
                                 "this gateway.", param=f"{at}.type")
    return out


def _message(item: dict[str, Any], at: str) -> dict[str, Any]:
    role = _MESSAGE_ROLES.get(item.get("role"))  # type: ignore[arg-type]
    if role is None:
        raise InvalidRequest(f"Invalid '{at}.role': expected user, assistant, system or "
                             "developer.", param=f"{at}.role")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise InvalidRequest(f"Invalid '{at}.content': expected a string or an array.",
                             param=f"{at}.content")
    parts = [_part(part, f"{at}.content[{j}]") for j, part in enumerate(content)]
    if role != "user" or all(p["type"] == "text" for p in parts):
        # Only user messages take images in chat; everything else is plain text.
        return {"role": role, "content": "".join(p.get("text", "") for p in parts)}
    return {"role": role, "content": parts}


def _part(part: Any, at: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
        return {"type": "text", "text": part["text"]}
    if kind == "refusal" and isinstance(part.get("refusal"), str):
        return {"type": "text", "text": part["refusal"]}
    if kind == "input_image" and isinstance(part.get("image_url"), str):
        image: dict[str, Any] = {"url": part["image_url"]}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise InvalidRequest(f"Invalid '{at}': content of type '{kind}' is not supported by this "
                         "gateway (text and image URLs are).", param=at)


def _function_call(item: dict[str, Any], at: str) -> dict[str, Any]:
    call_id, name = item.get("call_id"), item.get("name")
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise InvalidRequest(f"Invalid '{at}': a function_call needs 'call_id' and 'name'.",
                             param=at)
    arguments = item.get("arguments")
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": arguments if isinstance(arguments, str)
                         else "{}"}}


def _function_output(item: dict[str, Any], at: str) -> dict[str, Any]:
    call_id = item.get("call_id")
    if not isinstance(call_id, str):
        raise InvalidRequest(f"Invalid '{at}.call_id': expected a string.", param=f"{at}.call_id")
    output = item.get("output")
    if isinstance(output, list):
        output = "".join(_part(p, f"{at}.output[{k}]").get("text", "")
                         for k, p in enumerate(output))
    if not isinstance(output, str):
        raise InvalidRequest(f"Invalid '{at}.output': expected a string.", param=f"{at}.output")
    return {"role": "tool", "tool_call_id": call_id, "content": output}


def _tool(tool: Any, i: int) -> dict[str, Any]:
    at = f"tools[{i}]"
    kind = tool.get("type") if isinstance(tool, dict) else None
    if kind != "function":
        raise InvalidRequest(f"Invalid '{at}.type': '{kind}' tools are not available through "
                             "this gateway (function tools are).", param=f"{at}.type")
    if not isinstance(tool.get("name"), str):
        raise InvalidRequest(f"Missing required parameter: '{at}.name'.", param=f"{at}.name")
    function = {"name": tool["name"], "parameters": tool.get("parameters") or {"type": "object"}}
    for key in ("description", "strict"):
        if tool.get(key) is not None:
            function[key] = tool[key]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(
            choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise InvalidRequest("Invalid 'tool_choice': expected auto, none, required or "
                         "{'type': 'function', 'name': ...}.", param="tool_choice")


def _response_format(text: Any) -> dict[str, Any] | None:
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    if fmt["type"] == "json_schema" and isinstance(fmt.get("schema"), dict):
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        schema.setdefault("name", "response")
        return {"type": "json_schema", "json_schema": schema}
    raise InvalidRequest("Invalid 'text.format': expected text, json_object or json_schema "
                         "(with a schema).", param="text.format")
