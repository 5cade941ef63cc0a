"""Parsing a client's chat request: only what routing needs, the rest stays an untouched dict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from .errors import InvalidRequest
from .routing.options import (
    NO_OPTIONS,
    RoutingOptions,
    Sort,
    parse_options,
    split_model_suffix,
)

__all__ = ["MAX_NESTING", "OPTIONS_HEADER", "ChatRequest", "check_header_nesting",
           "check_nesting", "json_object", "parse_chat_request", "prompt_tokens_estimate"]


@dataclass(slots=True)
class ChatRequest:
    body: dict[str, Any]  # as the client sent it; `model` is replaced per deployment
    model: str  # public model name asked for
    stream: bool
    include_usage: bool
    prompt_tokens: int  # estimate, for predictions made before the upstream counts
    max_output_tokens: int | None
    options: RoutingOptions = NO_OPTIONS
    sort: Sort | None = None  # from a model suffix such as `:nitro`
    received_at: float | None = None  # engine clock time the gateway got it (overhead metric)
    probe: bool = False  # the gateway's own re-measurement (routing.probes), not a client's
    # OpenRouter's `models`: public models to fall back to, in order, when `model` fails.
    fallback_models: tuple[str, ...] = ()
    # logging.content: a stream keeps its text for the request log (never accumulated when
    # content logging is off: the relay stays a pass-through).
    keep_text: bool = False
    # Client headers meant for an upstream of the client's own API (Anthropic's version and
    # betas: surfaces/messages_headers.py); only the dialect that speaks that API sends them.
    upstream_headers: tuple[tuple[str, str], ...] = ()


def parse_chat_request(raw: bytes, options_header: str | None = None) -> ChatRequest:
    return chat_request_from_body(json_object(raw), options_header)


def json_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


def chat_request_from_body(body: dict[str, Any], options_header: str | None = None) -> ChatRequest:
    """Validate what routing needs. Routing options are taken out of the body: upstreams
    must not see them."""
    check_nesting(body)
    if options_header:
        check_header_nesting(options_header)
    provider_options = body.pop("provider", None)
    fallbacks = body.pop("models", None)  # the gateway's to honour, not the upstream's
    if fallbacks is not None and (not isinstance(fallbacks, list) or not all(
            isinstance(m, str) and m for m in fallbacks)):
        raise InvalidRequest("'models' must be an array of model names", param="models",
                             code="invalid_type")
    options = parse_options(provider_options, options_header)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("you must provide a model parameter", param="model",
                             code="missing_required_parameter" if model is None else "invalid_type")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest(
            "'messages' must be a non-empty array", param="messages",
            code="missing_required_parameter" if messages is None else "invalid_type",
        )
    stream = body.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise InvalidRequest("'stream' must be a boolean", param="stream", code="invalid_type")
    stream_options = body.get("stream_options")
    include_usage = bool(
        stream and isinstance(stream_options, dict) and stream_options.get("include_usage"))
    limit = body.get("max_completion_tokens")
    if limit is None:  # absent or null: the older name may still say it
        limit = body.get("max_tokens")
    model, sort = split_model_suffix(model)
    return ChatRequest(
        body=body,
        model=model,
        stream=bool(stream),
        include_usage=include_usage,
        prompt_tokens=prompt_tokens_estimate(messages),
        max_output_tokens=limit if isinstance(limit, int) and limit > 0 else None,
        options=options,
        sort=sort,
        fallback_models=tuple(fallbacks or ()),
    )


# JSON nested deeper than this is refused: the body is written again on its way upstream, and
# orjson (like any recursive encoder) stops at 255 levels. No real request comes near it.
MAX_NESTING = 128
_CONTAINERS = (dict, list)


def check_nesting(body: dict[str, Any], limit: int = MAX_NESTING) -> None:
    """InvalidRequest naming the top-level field whose value nests deeper than `limit`.

    Walks with an explicit stack, not recursion: the depth is the client's to choose."""
    for field, value in body.items():
        if type(value) not in _CONTAINERS:
            continue
        stack = [(value, 2)]
        while stack:
            node, depth = stack.pop()
            if depth > limit:
                raise InvalidRequest(
                    f"'{field}' is nested more than {limit} levels deep.", param=field,
                    code="invalid_value")
            children = node.values() if type(node) is dict else node
            stack.extend((child, depth + 1) for child in children
                         if type(child) in _CONTAINERS)


OPTIONS_HEADER = "x-tokenlane-provider"


def check_header_nesting(options_header: str, limit: int = MAX_NESTING) -> None:
    """The routing options header gets the body's depth check (InvalidRequest naming the
    header) before its options are read; JSON that does not parse is left for them to refuse."""
    try:
        value = orjson.loads(options_header)
    except orjson.JSONDecodeError:
        return
    check_nesting({OPTIONS_HEADER: value}, limit)


def prompt_tokens_estimate(messages: list[Any]) -> int:
    """About four characters a token plus a few per message: good enough to rank by."""
    chars = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    chars += len(part["text"])
    return chars // 4 + 3 * len(messages) + 1
