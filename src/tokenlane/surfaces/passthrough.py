"""Embeddings and legacy text completions: the pure part of passing them through (no I/O).

These bodies are not translated: they go upstream as the client sent them, the model renamed.
What routing needs is read from them here: the public model, the routing options, an estimate
of the prompt's tokens (from `input` / `prompt`, so TTFT predictions scale with it), the output
limit. A streamed text completion is checked chunk by chunk, and assembled into the
`text_completion` object for a client that did not stream (the gateway always streams legacy
completions from upstream, to measure TTFT and decode speed as it does for chat).
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidRequest
from ..request import ChatRequest, check_nesting
from ..routing.options import parse_options, split_model_suffix

__all__ = ["PASSTHROUGH_PATHS", "TextCompletionAssembler", "has_text", "passthrough_request",
           "text_chunk_ok"]

# Endpoint -> the path under a provider's base URL (and under the gateway's /v1/).
PASSTHROUGH_PATHS = {"embeddings": "embeddings", "completions": "completions"}
# The field holding what the model reads, per endpoint.
_INPUT_FIELD = {"embeddings": "input", "completions": "prompt"}
# OpenAI's legacy completions default when a request sets no max_tokens.
_COMPLETIONS_DEFAULT_MAX_TOKENS = 16


def passthrough_request(endpoint: str, body: dict[str, Any],
                        options_header: str | None = None) -> ChatRequest:
    """The engine's view of an embeddings or completions request; `body` (routing options
    taken out) is what goes upstream. Raises InvalidRequest naming the field."""
    check_nesting(body)
    options = parse_options(body.pop("provider", None), options_header)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("you must provide a model parameter", param="model",
                             code="missing_required_parameter" if model is None else "invalid_type")
    field = _INPUT_FIELD[endpoint]
    value = body.get(field)
    tokens = _tokens_of(value)
    if tokens is None:
        raise InvalidRequest(
            f"'{field}' must be a string, an array of strings, an array of tokens or an array "
            "of token arrays", param=field,
            code="missing_required_parameter" if value is None else "invalid_type")
    stream = body.get("stream", False) if endpoint == "completions" else False
    if not isinstance(stream, bool) and stream is not None:
        raise InvalidRequest("'stream' must be a boolean", param="stream", code="invalid_type")
    stream_options = body.get("stream_options")
    limit = body.get("max_tokens")
    if endpoint == "embeddings":
        limit = 1  # nothing is generated: predictions are about the wait for the answer
    elif not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
        limit = _COMPLETIONS_DEFAULT_MAX_TOKENS
    model, sort = split_model_suffix(model)
    return ChatRequest(
        body=body, model=model, stream=bool(stream),
        include_usage=bool(stream and isinstance(stream_options, dict)
                           and stream_options.get("include_usage")),
        prompt_tokens=tokens, max_output_tokens=limit, options=options, sort=sort)


def _tokens_of(value: Any) -> int | None:
    """About four characters a token, or the length of a token array; None when `value` is not
    one of the shapes the API accepts."""
    if isinstance(value, str):
        return len(value) // 4 + 1
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(v, str) for v in value):
        return sum(len(v) // 4 + 1 for v in value)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return len(value)
    if all(isinstance(v, list) and v and all(
            isinstance(t, int) and not isinstance(t, bool) for t in v) for v in value):
        return sum(len(v) for v in value)
    return None


def text_chunk_ok(chunk: Any) -> bool:
    """A `text_completion` stream chunk by the spec's types, as far as anything downstream
    reads it: choices a list of objects with an integer index, text a string or null, usage
    counts integers."""
    if type(chunk) is not dict or type(chunk.get("choices")) is not list:
        return False
    usage = chunk.get("usage")
    if usage is not None and (type(usage) is not dict or any(
            (n := usage.get(k)) is not None and type(n) is not int
            for k in ("prompt_tokens", "completion_tokens", "total_tokens"))):
        return False
    for choice in chunk["choices"]:
        if type(choice) is not dict or type(choice.get("index", 0)) is not int:
            return False
        text, finish = choice.get("text"), choice.get("finish_reason")
        if (text is not None and type(text) is not str) or (
                finish is not None and type(finish) is not str):
            return False
    return True


def has_text(chunk: dict[str, Any]) -> bool:
    """Whether the chunk carries generated text (what makes a first token)."""
    return any(choice.get("text") for choice in chunk["choices"])


class TextCompletionAssembler:
    """Streamed `text_completion` chunks in, the non-streamed `text_completion` out: text
    concatenated per choice, logprobs lists joined, the last finish reason, the usage chunk's
    usage."""

    def __init__(self) -> None:
        self._head: dict[str, Any] = {}
        self._choices: dict[int, dict[str, Any]] = {}
        self._texts: dict[int, list[str]] = {}
        self.usage: dict[str, Any] | None = None

    def add(self, chunk: dict[str, Any]) -> None:
        if not self._head:
            self._head = {k: v for k, v in chunk.items() if k not in ("choices", "usage")}
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for part in chunk["choices"]:
            index = part.get("index", 0)
            choice = self._choices.setdefault(
                index, {"text": "", "index": index, "logprobs": None, "finish_reason": None})
            self._texts.setdefault(index, []).append(part.get("text") or "")
            if part.get("finish_reason"):
                choice["finish_reason"] = part["finish_reason"]
            logprobs = part.get("logprobs")
            if isinstance(logprobs, dict):
                joined = choice["logprobs"] = choice["logprobs"] or {}
                for key, values in logprobs.items():
                    if isinstance(values, list):
                        joined.setdefault(key, []).extend(values)

    def result(self) -> dict[str, Any]:
        choices = []
        for index in sorted(self._choices):
            choice = self._choices[index]
            choice["text"] = "".join(self._texts[index])
            choices.append(choice)
        body = {**self._head, "object": "text_completion", "choices": choices}
        if self.usage is not None:
            body["usage"] = self.usage
        return body
