"""`POST /v1/responses` (stateless subset), driven by the official openai SDK over loopback in
front of simulated providers; bodies and every stream event validated against the Responses
schemas of OpenAI's OpenAPI spec (skipped when the spec is absent)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tokenlane.sim import SimProviderSpec

from ..contract import validate, validate_error
from ..harness import MASTER_KEY, stack

FAST = SimProviderSpec(name="fast", ttft_s=0, tokens_per_s=1000, output_tokens=12, time_scale=0)
SLOW = SimProviderSpec(name="slow", ttft_s=0, tokens_per_s=50, output_tokens=12, time_scale=0)
WEATHER = {"type": "function", "name": "get_weather", "description": "Current weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"], "additionalProperties": False},
           "strict": True}


@pytest.fixture(scope="module")
def gw():
    with stack([FAST, SLOW], {"llama": ["fast", "slow"]},
               model_extra={"policy": "order"}) as s:
        yield s


def chat_text(gw: Any, messages: list[dict[str, Any]], **kwargs: Any) -> str:
    completion = gw.openai().chat.completions.create(model="llama", messages=messages, **kwargs)
    return completion.choices[0].message.content


def test_string_input_matches_chat(gw) -> None:
    raw = gw.openai().responses.with_raw_response.create(
        model="llama", input="Say something short.", instructions="Be brief.",
        temperature=0.3, max_output_tokens=100)
    response = raw.parse()
    assert response.status == "completed" and response.model == "llama"
    assert response.output_text == chat_text(gw, [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say something short."}])
    assert response.usage.output_tokens == 12 and response.usage.input_tokens > 0
    assert response.instructions == "Be brief." and response.temperature == 0.3
    assert raw.headers["x-tokenlane-deployment"] == "fast/fast-llama"
    assert raw.headers["x-tokenlane-route"].startswith("policy=order")
    body = json.loads(raw.text)
    assert body["id"].startswith("resp_") and body["output"][0]["type"] == "message"
    validate("Response", body)


def test_max_output_tokens_is_incomplete(gw) -> None:
    response = gw.openai().responses.create(model="llama", input="Hi", max_output_tokens=4)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage.output_tokens == 4
    validate("Response", response.model_dump(mode="json", exclude_unset=True))


def test_stream_semantic_events(gw) -> None:
    client = gw.openai()
    with client.responses.with_streaming_response.create(
            model="llama", input="Say something short.", stream=True) as raw:
        assert raw.headers["x-tokenlane-deployment"] == "fast/fast-llama"
        lines = [line for line in raw.iter_lines() if line]
    names = [x.removeprefix("event: ") for x in lines if x.startswith("event: ")]
    events = [json.loads(x.removeprefix("data: ")) for x in lines if x.startswith("data: ")]
    assert [e["type"] for e in events] == names
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for event in events:
        validate("ResponseStreamEvent", event)
    assert names[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]
    assert names[4:-4] == ["response.output_text.delta"] * 12
    assert names[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    final = events[-1]["response"]
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert final["output"][0]["content"][0]["text"] == text == chat_text(
        gw, [{"role": "user", "content": "Say something short."}])
    assert final["usage"]["output_tokens"] == 12
    validate("Response", final)


def test_stream_helper(gw) -> None:
    with gw.openai().responses.stream(model="llama", input="Say something short.") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text
    assert final.status == "completed"


def test_function_call_round_trip(gw) -> None:
    client = gw.openai()
    first = client.responses.create(model="llama", input="Weather in Paris?", tools=[WEATHER],
                                    tool_choice={"type": "function", "name": "get_weather"})
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert isinstance(json.loads(call.arguments)["city"], str)
    validate("Response", first.model_dump(mode="json", exclude_unset=True, by_alias=True))

    with client.responses.stream(model="llama", input="Weather in Paris?", tools=[WEATHER],
                                 tool_choice="required") as stream:
        events = list(stream)
        streamed = stream.get_final_response()
    deltas = "".join(e.delta for e in events
                     if e.type == "response.function_call_arguments.delta")
    assert deltas == streamed.output[0].arguments == call.arguments
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert [e.name for e in done] == ["get_weather"]
    for event in events:
        validate("ResponseStreamEvent",
                 event.model_dump(mode="json", exclude_unset=True, by_alias=True))

    second = client.responses.create(model="llama", tools=[WEATHER], input=[
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name,
         "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"},
    ])
    assert second.status == "completed" and second.output_text
    assert second.usage.input_tokens > first.usage.input_tokens


def test_developer_role_parts_and_json_schema_format(gw) -> None:
    response = gw.openai().responses.create(
        model="llama", input=[{"role": "developer", "content": "Answer in JSON."},
                              {"role": "user", "content": [
                                  {"type": "input_text", "text": "Hi"}]}],
        text={"format": {"type": "json_schema", "name": "reply", "strict": True,
                         "schema": {"type": "object", "properties": {}}}})
    assert response.status == "completed"
    assert response.text.format.type == "json_schema" and response.text.format.name == "reply"
    validate("Response", response.model_dump(mode="json", exclude_unset=True, by_alias=True))


@pytest.mark.parametrize(("extra", "param"), [
    ({"store": True}, "store"),
    ({"previous_response_id": "resp_123"}, "previous_response_id"),
    ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"input": []}, "input"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
])
def test_stateless_limits_are_clear_400s(gw, extra: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gw.openai().responses.create(**{"model": "llama", "input": "Hi", **extra})
    body = caught.value.response.json()
    validate_error(body)
    assert body["error"]["param"] == param


def test_unknown_model_and_auth(gw) -> None:
    with pytest.raises(openai.NotFoundError):
        gw.openai().responses.create(model="nope", input="Hi")
    response = httpx.post(f"{gw.url}/v1/responses", json={"model": "llama", "input": "Hi"})
    assert response.status_code == 401
    validate_error(response.json())
    ok = httpx.post(f"{gw.url}/v1/responses", json={"model": "llama", "input": "Hi"},
                    headers={"authorization": f"Bearer {MASTER_KEY}"})
    assert ok.status_code == 200


def test_broken_stream_ends_with_error_and_failed() -> None:
    broken = [FAST.model_copy(update={"fault": "error_event", "fault_after_tokens": 3})]
    with (stack(broken, {"llama": ["fast"]}) as s,
          s.openai().responses.with_streaming_response.create(
              model="llama", input="Hi", stream=True) as raw):
        events = [json.loads(x.removeprefix("data: ")) for x in raw.iter_lines()
                  if x.startswith("data: ")]
    for event in events:
        validate("ResponseStreamEvent", event)
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert len(deltas) == 3
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-1]["response"]["status"] == "failed"


def test_hostile_bodies_are_4xx(gw) -> None:
    auth = {"authorization": f"Bearer {MASTER_KEY}"}
    nested: Any = "x"
    for _ in range(300):
        nested = [nested]
    body = {"model": "llama", "input": "Hi", "tools": [
        {"type": "function", "name": "f", "parameters": {"type": "object", "default": nested}}]}
    response = httpx.post(f"{gw.url}/v1/responses", json=body, headers=auth)
    assert response.status_code == 400
    validate_error(response.json())
    response = httpx.post(f"{gw.url}/v1/responses", content=json.dumps({"model": "llama",
                          "input": "Hi"}), headers={**auth, "content-type": "text/plain"})
    assert response.status_code == 415
    validate_error(response.json())
