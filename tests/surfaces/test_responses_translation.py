"""OpenAI Responses <-> chat translation on fixtures, both ways (pure functions); outputs
validated against the spec's Responses schemas when it is present."""

from __future__ import annotations

from typing import Any

import pytest

from tokenlane.errors import InvalidRequest
from tokenlane.surfaces.responses_reply import ResponseEcho, response_from_completion
from tokenlane.surfaces.responses_request import chat_body_from_responses
from tokenlane.surfaces.responses_stream import ResponsesStream

from ..contract import validate

REQUEST: dict[str, Any] = {
    "model": "llama",
    "instructions": "Be brief.",
    "input": [
        {"role": "developer", "content": "Prefer metric units."},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Weather here?"},
            {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
        {"type": "function_call", "call_id": "call_1", "name": "weather",
         "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "call_id": "call_2", "name": "weather",
         "arguments": '{"city":"Rome"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "call_2",
         "output": [{"type": "input_text", "text": "rain"}]},
    ],
    "tools": [{"type": "function", "name": "weather", "parameters": {"type": "object"},
               "strict": True}],
    "tool_choice": {"type": "function", "name": "weather"},
    "max_output_tokens": 50,
    "temperature": 0.1,
    "parallel_tool_calls": False,
    "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"},
                        "strict": True}},
    "store": False,
    "stream": True,
}


def test_request_translates_every_part() -> None:
    assert chat_body_from_responses(REQUEST) == {
        "model": "llama",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "system", "content": "Prefer metric units."},
            {"role": "user", "content": [
                {"type": "text", "text": "Weather here?"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}]},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "weather", "arguments": '{"city":"Paris"}'}},
                {"id": "call_2", "type": "function",
                 "function": {"name": "weather", "arguments": '{"city":"Rome"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": "rain"},
        ],
        "temperature": 0.1,
        "stream": True,
        "stream_options": {"include_usage": True},
        "parallel_tool_calls": False,
        "max_tokens": 50,
        "tools": [{"type": "function", "function": {
            "name": "weather", "parameters": {"type": "object"}, "strict": True}}],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "w", "schema": {"type": "object"}, "strict": True}},
    }


def test_string_input_and_json_object() -> None:
    chat = chat_body_from_responses({"model": "m", "input": "Hi",
                                     "text": {"format": {"type": "json_object"}}})
    assert chat == {"model": "m", "messages": [{"role": "user", "content": "Hi"}],
                    "response_format": {"type": "json_object"}}


@pytest.mark.parametrize(("change", "param"), [
    ({"store": True}, "store"),
    ({"previous_response_id": "resp_1"}, "previous_response_id"),
    ({"conversation": "conv_1"}, "conversation"),
    ({"background": True}, "background"),
    ({"model": None}, "model"),
    ({"input": None}, "input"),
    ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0]"),
    ({"input": [{"type": "computer_call_output"}]}, "input[0].type"),
    ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
    ({"input": [{"role": "user", "content": [{"type": "input_file"}]}]},
     "input[0].content[0]"),
    ({"tools": [{"type": "file_search"}]}, "tools[0].type"),
    ({"tool_choice": {"type": "mcp"}}, "tool_choice"),
    ({"max_output_tokens": 0}, "max_output_tokens"),
    ({"text": {"format": {"type": "json_schema"}}}, "text.format"),
])
def test_refusals_name_the_field(change: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        chat_body_from_responses({**REQUEST, **change})
    assert caught.value.param == param


COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-r1", "object": "chat.completion", "created": 1, "model": "llama",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": None, "message": {
        "role": "assistant", "content": "Checking.", "refusal": None, "tool_calls": [
            {"id": "call_9", "type": "function",
             "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}]}}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25,
              "prompt_tokens_details": {"cached_tokens": 8},
              "completion_tokens_details": {"reasoning_tokens": 2}},
}


def test_reply_translates_text_tools_usage() -> None:
    response = response_from_completion(COMPLETION, ResponseEcho(REQUEST, "llama"), 1700000000.5)
    assert response["id"] == "resp_r1" and response["created_at"] == 1700000000
    assert response["status"] == "completed"
    assert response["output"] == [
        {"type": "message", "id": "msg_r1", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "text": "Checking.", "annotations": [],
                      "logprobs": []}]},
        {"type": "function_call", "id": "fc_call_9", "call_id": "call_9", "name": "weather",
         "arguments": '{"city":"Oslo"}', "status": "completed"}]
    assert response["usage"] == {
        "input_tokens": 20, "input_tokens_details": {"cached_tokens": 8, "cache_write_tokens": 0},
        "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 25}
    assert response["instructions"] == "Be brief." and response["tools"] == REQUEST["tools"]
    assert response["text"] == REQUEST["text"] and response["store"] is False
    validate("Response", response)


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
          usage: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": "chatcmpl-s2", "choices": [] if delta is None else [
        {"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        out["usage"] = usage
    return out


def test_stream_text_then_tool_call_then_incomplete() -> None:
    stream = ResponsesStream(ResponseEcho({"input": "x"}, "llama"), 1.0)
    chunks = [
        chunk({"role": "assistant", "content": "Hel"}), chunk({"content": "lo"}),
        chunk({"tool_calls": [{"index": 0, "id": "call_z", "function": {
            "name": "weather", "arguments": '{"ci'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty":"X"}'}}]}),
        chunk({}, finish="length"),
        chunk(usage={"prompt_tokens": 3, "completion_tokens": 4}),
    ]
    events = [e for c in chunks for e in stream.add(c)] + stream.finish()
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    for name, data in events:
        assert data["type"] == name
        validate("ResponseStreamEvent", data)
    names = [n for n, _ in events]
    assert names == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.incomplete",
    ]
    final = events[-1][1]["response"]
    assert final["status"] == "incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert [item["type"] for item in final["output"]] == ["message", "function_call"]
    assert final["output"][0]["content"][0]["text"] == "Hello"
    assert final["output"][1]["arguments"] == '{"city":"X"}'
    assert events[10][1]["item_id"] == final["output"][1]["id"] == "fc_call_z"
    assert final["usage"]["total_tokens"] == 7


def test_stream_failure_events() -> None:
    stream = ResponsesStream(ResponseEcho({}, "m"), 1.0)
    events = stream.add(chunk({"content": "a"})) + stream.failed("upstream_stream_broken", "x")
    for _, data in events:
        validate("ResponseStreamEvent", data)
    assert [n for n, _ in events[-2:]] == ["error", "response.failed"]


def test_reasoning_becomes_a_reasoning_item() -> None:
    message = {**COMPLETION["choices"][0]["message"], "reasoning": "Oslo, then."}
    completion = {**COMPLETION, "choices": [{**COMPLETION["choices"][0], "message": message}]}
    response = response_from_completion(completion, ResponseEcho({}, "m"), 1.0)
    assert [item["type"] for item in response["output"]] == [
        "reasoning", "message", "function_call"]
    assert response["output"][0]["content"] == [{"type": "reasoning_text", "text": "Oslo, then."}]
    assert response["output"][1]["id"] == "msg_r1_1"
    validate("Response", response)

    stream = ResponsesStream(ResponseEcho({}, "m"), 1.0)
    chunks = [chunk({"reasoning_content": "Hm"}), chunk({"reasoning_content": "m."}),
              chunk({"content": "Yes."}), chunk({}, finish="stop")]
    events = [e for c in chunks for e in stream.add(c)] + stream.finish()
    for _, data in events:
        validate("ResponseStreamEvent", data)
    names = [n for n, _ in events]
    assert names[2:7] == ["response.output_item.added", "response.reasoning_text.delta",
                          "response.reasoning_text.delta", "response.reasoning_text.done",
                          "response.output_item.done"]
    final = events[-1][1]["response"]
    assert final["output"][0]["content"][0]["text"] == "Hmm."
    assert final["output"][1]["content"][0]["text"] == "Yes."
    assert final["output"][0]["id"] != final["output"][1]["id"]
