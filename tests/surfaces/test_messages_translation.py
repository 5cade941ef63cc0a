"""Anthropic Messages <-> chat translation on fixtures, both ways (pure functions)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from tokenlane.errors import InvalidRequest
from tokenlane.surfaces.messages_errors import anthropic_error
from tokenlane.surfaces.messages_reply import message_from_completion, tool_input
from tokenlane.surfaces.messages_request import chat_body_from_messages
from tokenlane.surfaces.messages_stream import MessagesStream

EVENTS = TypeAdapter(RawMessageStreamEvent)
IMAGE = {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}

CLAUDE_CODE_LIKE: dict[str, Any] = {
    "model": "llama",
    "max_tokens": 1024,
    "stream": True,
    "system": [{"type": "text", "text": "You are a coding agent."},
               {"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image", "source": IMAGE}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_1", "name": "read", "input": {"path": "a.py"}},
            {"type": "tool_use", "id": "toolu_2", "name": "read", "input": {"path": "b.py"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "print(1)"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
             "content": [{"type": "text", "text": "no such file"}]},
            {"type": "text", "text": "Go on."}]},
    ],
    "tools": [{"name": "read", "description": "Read a file",
               "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
               "cache_control": {"type": "ephemeral"}}],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "stop_sequences": ["</done>"],
    "temperature": 0.2,
    "top_k": 5,
    "metadata": {"user_id": "user-42"},
    "thinking": {"type": "enabled", "budget_tokens": 1000},
}


def test_request_translates_every_part() -> None:
    chat = chat_body_from_messages(CLAUDE_CODE_LIKE)
    assert chat == {
        "model": "llama",
        "max_tokens": 1024,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "stop": ["</done>"],
        "user": "user-42",
        "tools": [{"type": "function", "function": {
            "name": "read", "description": "Read a file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "messages": [
            {"role": "system", "content": "You are a coding agent.\nBe terse."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}}]},
            {"role": "assistant", "content": "Let me look.", "tool_calls": [
                {"id": "toolu_1", "type": "function",
                 "function": {"name": "read", "arguments": '{"path":"a.py"}'}},
                {"id": "toolu_2", "type": "function",
                 "function": {"name": "read", "arguments": '{"path":"b.py"}'}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "print(1)"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: no such file"},
            {"role": "user", "content": "Go on."},
        ],
    }


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "any"}, {"tool_choice": "required"}),
    ({"type": "none"}, {"tool_choice": "none"}),
    ({"type": "tool", "name": "read"},
     {"tool_choice": {"type": "function", "function": {"name": "read"}}}),
])
def test_tool_choice(choice: dict[str, Any], expected: dict[str, Any]) -> None:
    body = {**CLAUDE_CODE_LIKE, "tool_choice": choice}
    chat = chat_body_from_messages(body)
    assert {k: chat[k] for k in expected} == expected
    assert "parallel_tool_calls" not in chat


def test_url_image_and_routing_options_kept() -> None:
    chat = chat_body_from_messages({
        "model": "m", "max_tokens": 5, "provider": {"sort": "price"},
        "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]}]})
    assert chat["messages"][0]["content"][0]["image_url"] == {"url": "https://x/y.png"}
    assert chat["provider"] == {"sort": "price"}
    assert "stream_options" not in chat


@pytest.mark.parametrize(("change", "param"), [
    ({"max_tokens": None}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"model": ""}, "model"),
    ({"messages": "hi"}, "messages"),
    ({"system": [{"type": "image", "source": IMAGE}]}, "system.0"),
    ({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
     "messages.0.content.0"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
     "messages.0.content.0.tool_use_id"),
    ({"tools": [{"type": "bash_20250124", "name": "bash"}]}, "tools.0.type"),
    ({"tool_choice": {"type": "whatever"}}, "tool_choice"),
    ({"stop_sequences": "stop"}, "stop_sequences"),
])
def test_refusals_name_the_field(change: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        chat_body_from_messages({**CLAUDE_CODE_LIKE, **change})
    assert caught.value.param == param
    assert caught.value.message.startswith(param)


COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-abc", "object": "chat.completion", "created": 1, "model": "llama",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": None, "message": {
        "role": "assistant", "content": "Reading.", "refusal": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "read", "arguments": '{"path": "a.py"}'}}]}}],
    "usage": {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107,
              "prompt_tokens_details": {"cached_tokens": 60}},
}


def test_reply_translates_text_tools_usage() -> None:
    message = message_from_completion(COMPLETION, "llama")
    assert message == {
        "id": "msg_abc", "type": "message", "role": "assistant", "model": "llama",
        "content": [{"type": "text", "text": "Reading."},
                    {"type": "tool_use", "id": "call_1", "name": "read",
                     "input": {"path": "a.py"}}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 40, "output_tokens": 7, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 60},
    }
    Message.model_validate(message)


@pytest.mark.parametrize(("finish", "stop"), [
    ("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal"),
    (None, "end_turn")])
def test_stop_reasons(finish: str | None, stop: str) -> None:
    completion = {**COMPLETION, "choices": [{**COMPLETION["choices"][0],
                                             "finish_reason": finish}]}
    assert message_from_completion(completion, "m")["stop_reason"] == stop


def test_tool_input_keeps_what_is_not_an_object() -> None:
    assert tool_input("") == {}
    assert tool_input('{"a": 1}') == {"a": 1}
    assert tool_input('{"a": 1') == {"_unparsed_arguments": '{"a": 1'}
    assert tool_input("[1]") == {"_unparsed_arguments": "[1]"}


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
          usage: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": "chatcmpl-s1", "object": "chat.completion.chunk",
                           "choices": [] if delta is None else [
                               {"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        out["usage"] = usage
    return out


def run(stream: MessagesStream, chunks: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    events = [e for c in chunks for e in stream.add(c)] + stream.finish()
    for name, data in events:
        assert data["type"] == name
        if name != "ping":
            EVENTS.validate_python(data)
    return events


def test_stream_text_then_two_tool_calls() -> None:
    events = run(MessagesStream("llama", 33), [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hi"}), chunk({"content": " there"}),
        chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                               "function": {"name": "read", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"path":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"a"}'}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "function": {
            "name": "read", "arguments": "{}"}}]}),
        chunk({}, finish="tool_calls"),
        chunk(usage={"prompt_tokens": 30, "completion_tokens": 9}),
    ])
    shape = [(n, d.get("index")) for n, d in events]
    assert shape == [
        ("message_start", None),
        ("content_block_start", 0), ("ping", None),
        ("content_block_delta", 0), ("content_block_delta", 0), ("content_block_stop", 0),
        ("content_block_start", 1), ("content_block_delta", 1), ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2), ("content_block_delta", 2), ("content_block_stop", 2),
        ("message_delta", None), ("message_stop", None),
    ]
    assert events[0][1]["message"]["usage"] == {"input_tokens": 33, "output_tokens": 0}
    assert events[0][1]["message"]["id"] == "msg_s1"
    assert events[6][1]["content_block"] == {"type": "tool_use", "id": "call_a",
                                             "name": "read", "input": {}}
    partial = "".join(d["delta"]["partial_json"] for n, d in events
                      if n == "content_block_delta" and d["index"] == 1)
    assert json.loads(partial) == {"path": "a"}
    assert events[-2][1] == {"type": "message_delta",
                             "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                             "usage": {"input_tokens": 30, "output_tokens": 9,
                                       "cache_creation_input_tokens": 0,
                                       "cache_read_input_tokens": 0}}


def test_stream_without_usage_keeps_the_estimate() -> None:
    events = run(MessagesStream("m", 12), [chunk({"content": "x"}, finish="length")])
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == "max_tokens"
    assert "input_tokens" not in delta["usage"]


def test_empty_stream_still_starts_and_stops() -> None:
    names = [n for n, _ in run(MessagesStream("m", 1), [])]
    assert names == ["message_start", "message_delta", "message_stop"]


class _Broken(InvalidRequest):
    status = 503


def test_errors_take_anthropics_types_and_statuses() -> None:
    assert anthropic_error(InvalidRequest("bad")) == (
        400, {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}})
    status, body = anthropic_error(_Broken("down"))
    assert status == 529 and body["error"]["type"] == "overloaded_error"


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
def test_reasoning_becomes_thinking(key: str) -> None:
    message = {**COMPLETION["choices"][0]["message"], key: "Think first."}
    completion = {**COMPLETION, "choices": [{**COMPLETION["choices"][0], "message": message}]}
    reply = message_from_completion(completion, "m")
    assert reply["content"][0] == {"type": "thinking", "thinking": "Think first.",
                                   "signature": ""}
    Message.model_validate(reply)
    events = run(MessagesStream("m", 1), [
        chunk({key: "Think"}), chunk({key: " first."}), chunk({"content": "Answer."}),
        chunk({}, finish="stop")])
    starts = [d["content_block"]["type"] for n, d in events if n == "content_block_start"]
    assert starts == ["thinking", "text"]
    thinking = "".join(d["delta"]["thinking"] for n, d in events
                       if n == "content_block_delta" and d["delta"]["type"] == "thinking_delta")
    assert thinking == "Think first."
