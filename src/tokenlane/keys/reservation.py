"""The most a request can cost: what admission reserves from a key's budgets (pure).

A budget holds only if no request costs more than its reservation, so both halves are upper
bounds rather than guesses:

- prompt: no tokenizer in use (byte-level BPE, SentencePiece with byte fallback) makes more
  tokens than the UTF-8 bytes it reads, so the bytes of every field the model reads (as JSON:
  messages, tools, schemas) bound what a provider can count, plus what a chat template adds
  around them. Images are counted at what one image may cost instead of their bytes. This is
  about 4x the typical count: the reservation is returned when the request is settled.
- output: the request's limit, else `keys.reserve_output_tokens`, which is then sent upstream
  as the request's limit (`hold_to`), so an answer cannot run past what was reserved; within
  a deployment's own cap on the limit (`max_output_tokens`) and its context window.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..capabilities import LIMIT_PARAMS
from ..request import ChatRequest
from ..types import Deployment

__all__ = ["IMAGE_TOKENS", "TEMPLATE_TOKENS", "TOOLS_TOKENS", "hold_to", "output_bound",
           "prompt_bound"]

# What one image may count as: OpenAI's high-detail tiles and patch counts reach ~2,500 for
# its largest inputs, Anthropic's ~1,600 (1.15 megapixels / 750).
IMAGE_TOKENS = 2_500
# A chat template's own tokens around the messages (a system preamble with dates, say).
TEMPLATE_TOKENS = 64
# The tool-use preamble some providers add when tools are offered (Anthropic: ~350).
TOOLS_TOKENS = 512

# The fields a model reads, across chat (and the surfaces translated onto it), legacy
# completions and embeddings.
_READ_FIELDS = ("messages", "tools", "functions", "response_format", "prompt", "input")
_IMAGE_PARTS = frozenset({"image_url", "input_image", "image"})


def prompt_bound(body: dict[str, Any]) -> int:
    """At least as many prompt tokens as any provider counts for `body`."""
    size = 0
    for field in _READ_FIELDS:
        value = body.get(field)
        if value is None:
            continue
        if isinstance(value, str):
            size += len(value) if value.isascii() else len(value.encode())
        else:
            size += len(orjson.dumps(value))
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") in _IMAGE_PARTS:
                    # An image's bytes (a data URL) say nothing of its tokens.
                    size += IMAGE_TOKENS - len(orjson.dumps(part))
    tools = TOOLS_TOKENS if body.get("tools") or body.get("functions") else 0
    return max(size, 0) + TEMPLATE_TOKENS + tools


def output_bound(limit: int, deployment: Deployment) -> int:
    """The most `deployment` can generate for a request limited to `limit` tokens."""
    for cap in (deployment.rules.max_output_tokens, deployment.context_window):
        if cap is not None and cap < limit:
            limit = cap
    return limit


def hold_to(chat: ChatRequest, limit: int) -> None:
    """Send `limit` as the output limit of a request that set none (a null or invalid one
    included: what an upstream does with those is its own)."""
    for param in LIMIT_PARAMS:
        chat.body.pop(param, None)
    chat.body["max_tokens"] = limit  # the deployment's rules rename it where needed
    chat.max_output_tokens = limit
