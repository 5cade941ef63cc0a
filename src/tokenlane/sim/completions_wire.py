"""The simulator's legacy `POST /{provider}/v1/completions` (text completions).

A completions request is planned as the chat request its prompt makes (one user message; a
list of prompts is joined into one), so timing, limits, errors and faults behave as on the
chat route; each planned chat event is re-encoded as one `text_completion` event (the role
chunk becomes an empty text), so a fault strikes at the same point. Shapes follow the spec's
`CreateCompletionResponse`, streamed or not.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from . import wire
from .dialects import OPENAI, SimDialect
from .plan import invalid
from .replies import Completion, Failure

__all__ = ["COMPLETIONS", "OpenAIEdges"]

_DATA = b"data: "
# What carries over from a legacy request to the chat request it is planned as.
_KEPT = ("model", "max_tokens", "stream", "stream_options", "n", "stop", "seed", "temperature")


class OpenAIEdges:
    """Keys and errors as OpenAI's API has them, for dialects that only reshape bodies."""

    def authorized(self, headers: Iterable[tuple[bytes, bytes]], api_key: str) -> bool:
        return OPENAI.authorized(headers, api_key)

    def unauthorized(self, headers: Iterable[tuple[bytes, bytes]]) -> Failure:
        return OPENAI.unauthorized(headers)

    def error_body(self, failure: Failure) -> bytes:
        return OPENAI.error_body(failure)


class _Completions(OpenAIEdges):
    def chat_body(self, body: Any) -> Any:
        if not isinstance(body, dict):
            return invalid("The request body must be a JSON object.")
        prompt = body.get("prompt")
        if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
            prompt = "\n".join(prompt)
        if not isinstance(prompt, str):
            return invalid("'prompt' must be a string or an array of strings.", param="prompt")
        chat = {k: body[k] for k in _KEPT if k in body}
        chat.setdefault("max_tokens", 16)  # the legacy API's default
        chat["messages"] = [{"role": "user", "content": prompt or " "}]
        return chat

    def stream_events(self, reply: Completion, reply_id: str, created: int
                      ) -> Iterator[tuple[float, bytes]]:
        for delay, event in wire.stream_events(reply, reply_id, created):
            if not event.startswith(_DATA) or event in (
                    wire.DONE, wire.ERROR_EVENT, wire.GARBAGE_EVENT):
                yield delay, event
                continue
            chunk = orjson.loads(event.removeprefix(_DATA))
            yield delay, _DATA + orjson.dumps(_text_chunk(chunk)) + b"\n\n"

    def completion_body(self, reply: Completion, reply_id: str, created: int) -> bytes:
        body = wire.completion_body(reply, reply_id, created)
        try:
            completion = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body  # a fault cut it short: as broken in any dialect
        choices = [{"text": c["message"].get("content") or "", "index": c["index"],
                    "logprobs": None, "finish_reason": c["finish_reason"]}
                   for c in completion["choices"]]
        return orjson.dumps({**_head(completion), "choices": choices,
                             "usage": completion["usage"]})


def _head(chat: dict[str, Any]) -> dict[str, Any]:
    return {"id": "cmpl-" + chat["id"].removeprefix("chatcmpl-"), "object": "text_completion",
            "created": chat["created"], "model": chat["model"],
            "system_fingerprint": chat.get("system_fingerprint")}


def _text_chunk(chunk: dict[str, Any]) -> dict[str, Any]:
    out = {**_head(chunk), "choices": [
        {"text": (c.get("delta") or {}).get("content") or "", "index": c["index"],
         "logprobs": None, "finish_reason": c.get("finish_reason")}
        for c in chunk["choices"]]}
    if "usage" in chunk:
        out["usage"] = chunk["usage"]
    return out


COMPLETIONS: SimDialect = _Completions()
