"""Deterministic token arithmetic: how long a prompt is and what the model "says".

Everything here is pure, so a test can predict exactly what a simulated provider will answer:
one generated word is one token is one streamed content chunk.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

__all__ = [
    "ARGUMENT_FRAGMENT_CHARS",
    "estimate_prompt_tokens",
    "example_arguments",
    "split_arguments",
    "text_pieces",
]

# Roughly what a BPE tokenizer averages on English text; close enough for TTFT modelling.
_CHARS_PER_TOKEN = 4
# OpenAI's own counting recipe charges a few tokens of framing per message.
_TOKENS_PER_MESSAGE = 3
# Tool-call arguments stream in slices of about one token each, as real providers send them.
ARGUMENT_FRAGMENT_CHARS = 4
# Schemas can nest (or recurse through $ref); past this depth a value is just left empty.
_MAX_SCHEMA_DEPTH = 8


def estimate_prompt_tokens(body: Mapping[str, Any], chars_per_token: float = _CHARS_PER_TOKEN
                           ) -> int:
    """Prompt size of a chat request: ceil(chars / chars_per_token) + 3 per message, tools
    included.

    Counts message text (plain strings or lists of text parts), earlier tool calls and the
    `tools` definitions, which real providers also bill as prompt tokens.
    """
    messages = body.get("messages")
    if not isinstance(messages, list):
        return 0
    chars = 0
    for message in messages:
        if not isinstance(message, dict):
            continue
        chars += _content_chars(message.get("content"))
        tool_calls = message.get("tool_calls")
        if tool_calls:
            chars += len(orjson.dumps(tool_calls))
    tools = body.get("tools")
    if tools:
        chars += len(orjson.dumps(tools))
    return math.ceil(chars / chars_per_token) + _TOKENS_PER_MESSAGE * len(messages)


def _content_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        # Non-text parts (images, audio) are not modelled; they add no prompt tokens.
        return sum(
            len(part["text"])
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return 0


def text_pieces(provider: str, n: int) -> list[str]:
    """The first `n` tokens of the provider's answer, one word (with its space) per token.

    The provider's name is part of the sentence so a human reading a demo, or a test reading
    the text, can tell which provider answered.
    """
    words = (
        "this", "answer", "comes", "from", provider, "one", "token", "at", "a", "time,",
        "and", "every", "word", "you", "read", "is", "exactly", "one", "token.",
    )  # fmt: skip
    count = len(words)
    pieces = [words[i % count] + " " for i in range(n)]
    if pieces:
        pieces[-1] = pieces[-1][:-1]  # no trailing space after the last word
    return pieces


def example_arguments(parameters: Any) -> dict[str, Any]:
    """Plausible arguments for a function whose JSON schema is `parameters`.

    Fills every required property by type (string "example", number/integer 1, boolean true,
    array [], object with its own required properties), preferring `const`, then the first
    `enum` value, then `default`. Optional properties are left out, as a terse model would.
    """
    value = _example(parameters if isinstance(parameters, dict) else {}, 0)
    return value if isinstance(value, dict) else {}


def _example(schema: Mapping[str, Any], depth: int) -> Any:
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options and isinstance(options[0], dict):
            return _example(options[0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):  # ["string", "null"]: take the first non-null type
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        if depth >= _MAX_SCHEMA_DEPTH:
            return {}
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        required = schema.get("required")
        names: Sequence[Any] = required if isinstance(required, list) else ()
        return {
            name: _example(properties.get(name) or {}, depth + 1)
            for name in names
            if isinstance(name, str)
        }
    if kind == "array":
        return []
    if kind in ("number", "integer"):
        return 1
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "example"  # strings, and schemas too loose ($ref, no type) to say more


def split_arguments(arguments: str) -> list[str]:
    """Cut a JSON arguments string into the fragments a stream would carry, one per token."""
    size = ARGUMENT_FRAGMENT_CHARS
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]
