"""Chat <-> Anthropic Messages translation for Anthropic upstreams, on fixtures both ways."""

from __future__ import annotations

from typing import Any

import pytest

from tokenlane.assemble import CompletionAssembler
from tokenlane.providers.anthropic_wire import (
    DEFAULT_MAX_TOKENS,
    ChunksFromEvents,
    client_headers,
    messages_body_from_chat,
)
from tokenlane.providers.base import UpstreamBadResponse


def test_chat_body_becomes_a_messages_body() -> None:
    chat = {
        "model": "claude-x", "stream": True, "stream_options": {"include_usage": True},
        "max_completion_tokens": 300, "temperature": 0.4, "stop": "END", "user": "u1",
        "parallel_tool_calls": False,
        "tools": [{"type": "function", "function": {
            "name": "read", "description": "Read", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "read"}},
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
            {"role": "assistant", "content": "Reading.", "tool_calls": [
                {"id": "c1", "type": "function",
                 "function": {"name": "read", "arguments": '{"p": 1}'}},
                {"id": "c2", "type": "function",
                 "function": {"name": "read", "arguments": "not json"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "one"},
            {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "two"}]},
            {"role": "user", "content": "Thanks."},
        ],
    }
    assert messages_body_from_chat(chat) == {
        "model": "claude-x", "max_tokens": 300, "stream": True,
        "system": "Be terse.\n\nUse tools.",
        "temperature": 0.4, "stop_sequences": ["END"], "metadata": {"user_id": "u1"},
        "tools": [{"name": "read", "description": "Read", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "read", "disable_parallel_tool_use": True},
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": "QUJD"}},
                {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Reading."},
                {"type": "tool_use", "id": "c1", "name": "read", "input": {"p": 1}},
                {"type": "tool_use", "id": "c2", "name": "read", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "c1", "content": "one"},
                {"type": "tool_result", "tool_use_id": "c2", "content": "two"},
                {"type": "text", "text": "Thanks."}]},
        ],
    }


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", {"type": "auto"}), ("required", {"type": "any"}), ("none", {"type": "none"}),
    (None, None)])
def test_tool_choice(choice: Any, expected: Any) -> None:
    body = messages_body_from_chat({
        "model": "m", "messages": [{"role": "user", "content": "hi"}], "tool_choice": choice,
        "tools": [{"type": "function", "function": {"name": "f"}}]})
    assert body.get("tool_choice") == expected
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS


# Anthropic's documented stream, text then a tool call, with a cache read and a cache write.
EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("message_start", {"type": "message_start", "message": {
        "id": "msg_01", "type": "message", "role": "assistant", "content": [],
        "model": "claude-x", "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 25, "cache_read_input_tokens": 100,
                  "cache_creation_input_tokens": 10, "output_tokens": 1}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0,
                             "content_block": {"type": "text", "text": ""}}),
    ("ping", {"type": "ping"}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": "Let me "}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": "check."}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
        "type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1,
                             "delta": {"type": "input_json_delta", "partial_json": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
        "type": "input_json_delta", "partial_json": '{"location": "San Fra'}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
        "type": "input_json_delta", "partial_json": 'ncisco"}'}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ("message_delta", {"type": "message_delta",
                       "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                       "usage": {"output_tokens": 89}}),
    ("message_stop", {"type": "message_stop"}),
]


def test_stream_events_become_chat_chunks() -> None:
    translate = ChunksFromEvents(created=1700000000)
    chunks = [c for name, data in EVENTS for c in translate.feed(name, data)]
    assert translate.completed
    assert all(c["id"] == "chatcmpl-msg_01" and c["created"] == 1700000000 for c in chunks)
    assembler = CompletionAssembler()
    for c in chunks:
        assembler.add(c)
    result = assembler.result()
    assert result["model"] == "claude-x"
    choice = result["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    assert choice["message"]["tool_calls"] == [{
        "id": "toolu_01", "type": "function",
        "function": {"name": "get_weather", "arguments": '{"location": "San Francisco"}'}}]
    assert result["usage"] == {"prompt_tokens": 135, "completion_tokens": 89,
                               "total_tokens": 224,
                               "prompt_tokens_details": {"cached_tokens": 100,
                                                         "cache_write_tokens": 10}}


@pytest.mark.parametrize(("stop", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("refusal", "content_filter")])
def test_stop_reasons(stop: str, finish: str) -> None:
    translate = ChunksFromEvents(created=0)
    [chunk] = translate.feed("message_delta", {
        "type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": 2}})
    assert chunk["choices"][0]["finish_reason"] == finish


def test_error_event_is_a_bad_response_without_the_key() -> None:
    translate = ChunksFromEvents(created=0, secret="sk-ant-secret-key-123")
    with pytest.raises(UpstreamBadResponse) as caught:
        translate.feed("error", {"type": "error", "error": {
            "type": "overloaded_error", "message": "Overloaded for sk-ant-secret-key-123"}})
    assert "Overloaded" in str(caught.value) and "secret" not in str(caught.value)


def test_json_delta_for_a_text_block_is_a_bad_response() -> None:
    translate = ChunksFromEvents(created=0)
    with pytest.raises(UpstreamBadResponse):
        translate.feed("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": {"type": "input_json_delta",
                                                         "partial_json": "{"}})


def test_client_headers_version_replaces_betas_join() -> None:
    forwarded = (("anthropic-version", "2099-12-31"), ("anthropic-beta", "b2, b1,,b3"))
    assert client_headers(None, forwarded) == {"anthropic-version": "2099-12-31",
                                               "anthropic-beta": "b2, b1,,b3"}
    # The provider's configured betas come first; each beta is named once.
    assert client_headers("b1,b0", forwarded) == {"anthropic-version": "2099-12-31",
                                                  "anthropic-beta": "b1,b0,b2,b3"}
    # Only Anthropic's own headers, whatever a caller hands in.
    assert client_headers("b0", (("x-other", "v"), ("authorization", "Bearer k"))) == {}
