"""OpenAI chat-completions wire format: planned replies in, exact response bytes out.

Pure encoding, no I/O. `stream_events` yields `(delay, sse_event)` pairs; the ASGI layer
sleeps each delay and sends each event as its own body part. Shapes follow OpenAI's
`CreateChatCompletionResponse` and `CreateChatCompletionStreamResponse` schemas.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from .replies import Completion, Failure, StreamFault
from .spec import SimProviderSpec

__all__ = [
    "BAD_JSON_BODY",
    "DONE",
    "ERROR_EVENT",
    "GARBAGE_EVENT",
    "completion_body",
    "error_body",
    "events_until_fault",
    "models_body",
    "stream_events",
]

DONE = b"data: [DONE]\n\n"
# What the faults put on the wire (`faults`); byte for byte what their docs promise.
GARBAGE_EVENT = b"data: {this is not json\n\n"
ERROR_EVENT = (
    b'data: {"error": {"message": "simulated upstream failure", "type": "server_error", '
    b'"param": null, "code": null}}\n\n'
)
BAD_JSON_BODY = b'{"id": "chatcmpl-broken", "choices": ['
_SYSTEM_FINGERPRINT = "fp_tokenlane_sim"
# Stand-in for the one field that changes from chunk to chunk (see `_Template`).
_HOLE = "\x00tokenlane-sim-hole\x00"


def error_body(failure: Failure) -> bytes:
    return orjson.dumps(
        {
            "error": {
                "message": failure.message,
                "type": failure.type,
                "param": failure.param,
                "code": failure.code,
            }
        }
    )


def models_body(spec: SimProviderSpec) -> bytes:
    """`GET /v1/models`: the listed models (empty when the provider serves any id)."""
    data = [
        {"id": model, "object": "model", "created": 0, "owned_by": spec.name}
        for model in spec.models or ()
    ]
    return orjson.dumps({"object": "list", "data": data})


def completion_body(reply: Completion, completion_id: str, created: int) -> bytes:
    """The whole `chat.completion` object of a non-streamed reply.

    Under a `garbage` or `truncate` fault, the body stops right after the first
    `fault.after` tokens of the content (or of the tool call's arguments): not JSON.
    """
    body = _completion_body(reply, completion_id, created)
    fault = reply.fault
    if fault is None or fault.action not in ("garbage", "truncate"):
        return body
    text = "".join(reply.pieces) if reply.tool_call is None else reply.tool_call.arguments
    # JSON escapes character by character, so the encoded prefix is a prefix of the encoded
    # whole (less its closing quote).
    start = body.index(orjson.dumps(text), body.index(b'"choices"'))
    return body[: start + len(orjson.dumps("".join(reply.pieces[: fault.after]))) - 1]


def _completion_body(reply: Completion, completion_id: str, created: int) -> bytes:
    message: dict[str, Any]
    if reply.tool_call is None:
        message = {"role": "assistant", "content": "".join(reply.pieces), "refusal": None}
    else:
        call = reply.tool_call
        message = {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "tool_calls": [
                {
                    "id": _call_id(completion_id),
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
            ],
        }
    logprobs = _logprobs(reply.pieces) if reply.logprobs and reply.tool_call is None else None
    body = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": reply.model,
        "system_fingerprint": _SYSTEM_FINGERPRINT,
        "choices": [
            {"index": i, "message": message, "logprobs": logprobs,
             "finish_reason": reply.finish_reason}
            for i in range(reply.n)
        ],
        "usage": _usage(reply),
    }
    if reply.time_info is not None:
        body["time_info"] = _time_info(reply.time_info)
    return orjson.dumps(body)


def stream_events(
    reply: Completion, completion_id: str, created: int
) -> Iterator[tuple[float, bytes]]:
    """Every SSE event of a streamed reply, each with the wait before it.

    A role chunk, one chunk per token, a closing chunk carrying `finish_reason`, the usage
    chunk (empty `choices`) when `stream_options.include_usage` asked for it, then `[DONE]`.
    A `fault` changes what follows the first chunk and `fault.after` tokens: a stall adds to
    the next wait, garbage or an error event is slipped in, and an error event, a truncation
    or a reset ends the events there (the sender then ends the body, or resets).
    """
    events = _stream_events(reply, completion_id, created)
    if reply.fault is None:
        return events
    return _faulted(events, reply.fault)


def events_until_fault(fault: StreamFault) -> int | None:
    """How many events `stream_events` yields up to and including the fault's own, if it
    puts anything wrong on the wire (None for a stall, which only delays)."""
    if fault.action == "stall":
        return None
    inserted = fault.action in ("garbage", "error_event")
    return 1 + fault.after + inserted


def _faulted(
    events: Iterator[tuple[float, bytes]], fault: StreamFault
) -> Iterator[tuple[float, bytes]]:
    yield from itertools.islice(events, 1 + fault.after)
    action = fault.action
    if action == "stall":
        delay, event = next(events)  # there is always a closing chunk after the tokens
        yield fault.stall + delay, event
        yield from events
    elif action == "garbage":
        yield 0.0, GARBAGE_EVENT
        yield from events
    elif action == "error_event":
        yield 0.0, ERROR_EVENT
    # truncate, reset: nothing more


def _stream_events(
    reply: Completion, completion_id: str, created: int
) -> Iterator[tuple[float, bytes]]:
    head: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": reply.model,
        "system_fingerprint": _SYSTEM_FINGERPRINT,
    }
    # OpenAI sends `"usage": null` on every chunk but the last once usage was asked for.
    tail = {"usage": None} if reply.include_usage else {}
    delays = reply.delays

    def chunk(delta: dict[str, Any], finish_reason: str | None = None, index: int = 0,
              logprobs: dict[str, Any] | None = None, **extra: Any) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": logprobs,
                  "finish_reason": finish_reason}
        return _sse({**head, "choices": [choice], **tail, **extra})

    timing = {} if reply.time_info is None else {"time_info": _time_info(reply.time_info)}
    if reply.tool_call is None and (reply.n > 1 or reply.logprobs):
        # Several choices, or logprobs per token: each event built whole (the template's one
        # hole is not enough); every choice gets the same tokens, in turn.
        indexes = range(reply.n)
        for k in indexes:
            yield (delays[0] if k == 0 else 0.0), chunk(
                {"role": "assistant", "content": "", "refusal": None}, index=k)
        for i, piece in enumerate(reply.pieces):
            lp = _logprobs((piece,)) if reply.logprobs else None
            for k in indexes:
                yield (delays[i] if i and k == 0 else 0.0), chunk(
                    {"content": piece}, index=k, logprobs=lp)
        for k in indexes:
            last = k == reply.n - 1 and not reply.include_usage
            yield (delays[-1] if k == 0 else 0.0), chunk(
                {}, reply.finish_reason, index=k, **(timing if last else {}))
        if reply.include_usage:
            yield 0.0, _sse({**head, "choices": [], "usage": _usage(reply), **timing})
        yield 0.0, DONE
        return
    if reply.tool_call is None:
        yield delays[0], chunk({"role": "assistant", "content": "", "refusal": None})
        template = _Template(lambda hole: chunk({"content": hole}))
        for i, piece in enumerate(reply.pieces):
            yield (0.0 if i == 0 else delays[i]), template.fill(piece)
    else:
        call = {
            "index": 0,
            "id": _call_id(completion_id),
            "type": "function",
            "function": {"name": reply.tool_call.name, "arguments": ""},
        }
        yield delays[0], chunk({"role": "assistant", "content": None, "tool_calls": [call]})
        template = _Template(
            lambda hole: chunk({"tool_calls": [{"index": 0, "function": {"arguments": hole}}]})
        )
        for i, fragment in enumerate(reply.pieces, start=1):
            yield delays[i], template.fill(fragment)
    # Cerebras reports time_info on the last chunk before [DONE].
    yield delays[-1], chunk({}, reply.finish_reason, **({} if reply.include_usage else timing))
    if reply.include_usage:
        yield 0.0, _sse({**head, "choices": [], "usage": _usage(reply), **timing})
    yield 0.0, DONE


class _Template:
    """A chunk encoded once with a hole where the token goes, then filled per token.

    Per-token chunks differ only in one string, so splicing the JSON-encoded token into
    pre-encoded bytes gives the same bytes as encoding the whole chunk, at a fraction of
    the cost: the simulator's hot loop must stay cheap next to the gateway it measures.
    """

    __slots__ = ("_after", "_before")

    def __init__(self, encode: Callable[[str], bytes]) -> None:
        self._before, self._after = encode(_HOLE).split(orjson.dumps(_HOLE))

    def fill(self, text: str) -> bytes:
        return self._before + orjson.dumps(text) + self._after


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _usage(reply: Completion) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }
    if reply.usage_details:
        usage["prompt_tokens_details"] = {"cached_tokens": reply.prompt_tokens // 2}
        usage["completion_tokens_details"] = {"reasoning_tokens": reply.completion_tokens // 2}
    if reply.cache_write_tokens:
        details = usage.setdefault("prompt_tokens_details", {"cached_tokens": 0})
        # Never more than what is left of the prompt beside the cached part.
        details["cache_write_tokens"] = min(reply.cache_write_tokens,
                                            reply.prompt_tokens - details["cached_tokens"])
    return usage


def _logprobs(pieces: tuple[str, ...]) -> dict[str, Any]:
    """OpenAI's logprobs object for these tokens (a fixed, plausible value each)."""
    return {"content": [{"token": p, "logprob": -0.25, "bytes": list(p.encode()),
                         "top_logprobs": []} for p in pieces], "refusal": None}


def _time_info(info: tuple[float, float, float, float]) -> dict[str, float]:
    queue, prompt, completion, total = info
    return {"queue_time": queue, "prompt_time": prompt, "completion_time": completion,
            "total_time": total}


def _call_id(completion_id: str) -> str:
    # Derived rather than drawn: one call per completion, and ids need no extra randomness.
    return "call_" + completion_id.removeprefix("chatcmpl-")
