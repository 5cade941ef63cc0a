"""The simulator's `POST /{provider}/v1/embeddings`.

An embeddings request is planned as a one-token chat request on its input text, so the
provider's TTFT (the wait for the answer), injected errors, 429s, resets, bad bodies and
per-minute limits behave exactly as on the chat route. The answer is `CreateEmbeddingResponse`:
one vector per input, derived from a SHA-256 of that input (the same input always gets the
same vector, from any provider), unit length, `dimensions` long (default 16), as floats or
base64 float32 (what the openai SDK asks for by default); `usage.prompt_tokens` is the planned
prompt size.

A dialect instance holds one request's inputs between reading it and answering it: the
handler makes one per request.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from ..clock import Clock
from .chat import ChatCompletions
from .completions_wire import OpenAIEdges
from .counters import CounterBoard
from .plan import invalid
from .provider import ProviderState
from .replies import Completion

__all__ = ["DEFAULT_DIMENSIONS", "Embeddings", "embedding_vector"]

DEFAULT_DIMENSIONS = 16
_MAX_DIMENSIONS = 4096


def embedding_vector(item: str | list[int], dimensions: int) -> list[float]:
    """The unit vector of one input: SHA-256 counter blocks read as signed bytes."""
    seed = item.encode() if isinstance(item, str) else orjson.dumps(item)
    raw = b""
    block = 0
    while len(raw) < dimensions:
        raw += hashlib.sha256(seed + block.to_bytes(4, "big")).digest()
        block += 1
    values = [(b - 127.5) / 127.5 for b in raw[:dimensions]]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


class Embeddings:
    """Serves one embeddings request for the provider named in the path."""

    def __init__(self, providers: Mapping[str, ProviderState], board: CounterBoard, clock: Clock
                 ) -> None:
        self._providers = providers
        self._board = board
        self._clock = clock

    async def __call__(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        handler = ChatCompletions(self._providers, self._board, self._clock, _EmbeddingsDialect())
        await handler(name, scope, receive, send)


class _EmbeddingsDialect(OpenAIEdges):
    def __init__(self) -> None:
        self._inputs: list[str | list[int]] = []
        self._dimensions = DEFAULT_DIMENSIONS
        self._base64 = False

    def chat_body(self, body: Any) -> Any:
        if not isinstance(body, dict):
            return invalid("The request body must be a JSON object.")
        inputs = _inputs(body.get("input"))
        if inputs is None:
            return invalid("'input' must be a string, an array of strings or an array of "
                           "token arrays.", param="input")
        dimensions = body.get("dimensions", DEFAULT_DIMENSIONS)
        if type(dimensions) is not int or not 1 <= dimensions <= _MAX_DIMENSIONS:
            return invalid(f"'dimensions' must be an integer from 1 to {_MAX_DIMENSIONS}.",
                           param="dimensions")
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            return invalid("'encoding_format' must be 'float' or 'base64'.",
                           param="encoding_format")
        self._inputs, self._dimensions, self._base64 = inputs, dimensions, encoding == "base64"
        text = "\n".join(i if isinstance(i, str) else " ".join(map(str, i)) for i in inputs)
        return {"model": body.get("model"), "messages": [{"role": "user", "content": text}],
                "max_tokens": 1}

    def stream_events(self, reply: Completion, reply_id: str, created: int
                      ) -> Iterator[tuple[float, bytes]]:
        raise AssertionError("embeddings are never streamed")  # chat_body sets no stream

    def completion_body(self, reply: Completion, reply_id: str, created: int) -> bytes:
        data = []
        for index, item in enumerate(self._inputs):
            vector = embedding_vector(item, self._dimensions)
            encoded: Any = (base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
                            if self._base64 else vector)
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        body = orjson.dumps({
            "object": "list", "data": data, "model": reply.model,
            "usage": {"prompt_tokens": reply.prompt_tokens, "total_tokens": reply.prompt_tokens}})
        fault = reply.fault
        if fault is not None and fault.action in ("garbage", "truncate"):
            return body[: len(body) // 2]  # cut short, as a broken body is on any route
        return body


def _inputs(value: Any) -> list[str | list[int]] | None:
    if isinstance(value, str) and value:
        return [value]
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(v, str) and v for v in value):
        return list(value)
    if all(type(v) is int for v in value):
        return [value]
    if all(isinstance(v, list) and v and all(type(t) is int for t in v) for v in value):
        return list(value)
    return None
