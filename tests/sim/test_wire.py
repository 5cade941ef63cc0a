"""Encoding replies: exact SSE framing and chunk shapes, checked with the SDK's own types."""

from __future__ import annotations

import dataclasses
import json
from random import Random
from typing import Any

import orjson
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tokenlane.sim import SimProviderSpec
from tokenlane.sim.plan import Completion, Failure, plan_reply
from tokenlane.sim.wire import DONE, completion_body, error_body, models_body, stream_events

from .support import HELLO, WEATHER_TOOL


def completion(body: dict[str, Any], **fields: Any) -> Completion:
    reply = plan_reply(SimProviderSpec(name="p", **fields), body, Random(0))
    assert isinstance(reply, Completion)
    return reply


def decode(events: list[tuple[float, bytes]]) -> list[dict[str, Any]]:
    out = []
    for _, event in events[:-1]:
        assert event.startswith(b"data: ") and event.endswith(b"\n\n")
        assert event.count(b"\n") == 2  # one line per event: no embedded newlines
        out.append(orjson.loads(event[6:]))
    return out


def test_text_stream_chunks() -> None:
    body = {
        "model": "m",
        "messages": HELLO,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    reply = completion(body, output_tokens=5, ttft_s=1, tokens_per_s=4)
    events = list(stream_events(reply, "chatcmpl-abc", 123))
    assert events[-1] == (0.0, DONE)
    chunks = decode(events)
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
        assert (chunk["id"], chunk["object"], chunk["created"], chunk["model"]) == (
            "chatcmpl-abc",
            "chat.completion.chunk",
            123,
            "m",
        )
        assert "usage" in chunk
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    contents = [c["choices"][0]["delta"]["content"] for c in chunks[1:6]]
    assert "".join(contents) == "".join(reply.pieces)
    assert chunks[6]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert chunks[7]["choices"] == []
    assert chunks[7]["usage"]["completion_tokens"] == 5
    assert all(c["usage"] is None for c in chunks[:7])
    # Role chunk waits the TTFT; the first word follows it at once, then one step per token.
    assert [d for d, _ in events] == [1.0, 0.0, 0.25, 0.25, 0.25, 0.25, 0.25, 0.0, 0.0]


def test_usage_key_absent_without_include_usage() -> None:
    reply = completion({"model": "m", "messages": HELLO, "stream": True}, output_tokens=2)
    chunks = decode(list(stream_events(reply, "chatcmpl-x", 1)))
    assert all("usage" not in c for c in chunks)
    assert len(chunks) == 1 + 2 + 1


def test_tool_call_stream_chunks() -> None:
    body = {"model": "m", "messages": HELLO, "tools": [WEATHER_TOOL], "tool_choice": "required"}
    reply = completion({**body, "stream": True})
    chunks = decode(list(stream_events(reply, "chatcmpl-t", 1)))
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    head = chunks[0]["choices"][0]["delta"]
    assert head["role"] == "assistant" and head["content"] is None
    assert head["tool_calls"] == [
        {
            "index": 0,
            "id": "call_t",
            "type": "function",
            "function": {"name": "get_weather", "arguments": ""},
        }
    ]
    fragments = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[1:-1]]
    assert all(f.keys() == {"index", "function"} and f["index"] == 0 for f in fragments)
    arguments = "".join(f["function"]["arguments"] for f in fragments)
    assert json.loads(arguments) == json.loads(reply.tool_call.arguments)  # type: ignore[union-attr]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_completion_body() -> None:
    reply = completion({"model": "m", "messages": HELLO}, output_tokens=3)
    data = orjson.loads(completion_body(reply, "chatcmpl-1", 99))
    ChatCompletion.model_validate(data)
    assert data["object"] == "chat.completion"
    assert data["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "this answer comes", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert data["usage"] == {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": 3,
        "total_tokens": reply.prompt_tokens + 3,
    }


def test_tokens_that_need_escaping_survive_the_template() -> None:
    reply = completion({"model": "m", "messages": HELLO, "stream": True}, output_tokens=1)
    tricky = dataclasses.replace(reply, pieces=('"quoted" \\ and\nnewline ü',))
    chunks = decode(list(stream_events(tricky, "chatcmpl-e", 1)))
    assert chunks[1]["choices"][0]["delta"]["content"] == '"quoted" \\ and\nnewline ü'


def test_error_and_models_bodies() -> None:
    failure = Failure(404, "nope", "invalid_request_error", param="model", code="model_not_found")
    assert orjson.loads(error_body(failure)) == {
        "error": {
            "message": "nope",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }
    listed = orjson.loads(models_body(SimProviderSpec(name="p", models=["a", "b"])))
    assert [m["id"] for m in listed["data"]] == ["a", "b"]
    assert listed["object"] == "list"
