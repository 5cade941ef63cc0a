"""`POST /v1/messages`, driven by the official anthropic SDK over loopback, in front of
simulated OpenAI-dialect providers: the answer must be what the chat endpoint gives for the
same request, in Anthropic's shapes (checked against the SDK's own types)."""

from __future__ import annotations

import json
import random
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import Message, MessageTokensCount, RawMessageStreamEvent
from pydantic import TypeAdapter

from tokenlane.capabilities import ALL_FEATURES
from tokenlane.config import parse_settings
from tokenlane.server import create_app
from tokenlane.sim import SimProviderSpec, Simulator

from ..harness import MASTER_KEY, SIM_KEY, Stack, gateway_config, stack
from ..loopback import serve

FAST = SimProviderSpec(name="fast", ttft_s=0, tokens_per_s=1000, output_tokens=12, time_scale=0)
SLOW = SimProviderSpec(name="slow", ttft_s=0, tokens_per_s=50, output_tokens=12, time_scale=0)
USER = [{"role": "user", "content": "Say something short."}]
WEATHER = {"name": "get_weather", "description": "Current weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}
EVENTS = TypeAdapter(RawMessageStreamEvent)


@pytest.fixture(scope="module")
def gw():
    with stack([FAST, SLOW], {"llama": ["fast", "slow"]},
               model_extra={"policy": "order"}) as s:
        yield s


def client(gw: Any, **kwargs: Any) -> anthropic.Anthropic:
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("auth_token", MASTER_KEY)
    return anthropic.Anthropic(base_url=gw.url, **kwargs)


def chat_text(gw: Any, **kwargs: Any) -> str:
    """What the chat endpoint answers for the same request: the reference for translation."""
    completion = gw.openai().chat.completions.create(model="llama", messages=USER, **kwargs)
    return completion.choices[0].message.content


def strict(model: type, data: dict[str, Any]) -> None:
    """`data` validates as the SDK type and carries every field the type requires."""
    model.model_validate(data)
    missing = [name for name, f in model.model_fields.items()
               if f.is_required() and name not in data]
    assert not missing, f"{model.__name__} lacks {missing}"


def test_non_stream_text_matches_chat(gw) -> None:
    raw = client(gw).messages.with_raw_response.create(
        model="llama", max_tokens=100, system="Be brief.", messages=USER,
        metadata={"user_id": "u-1"},
        # This SDK version no longer lists them, but the API still takes them.
        extra_body={"temperature": 0.5, "top_p": 0.9})
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.model == "llama"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == chat_text(gw)
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 12 and message.usage.input_tokens > 0
    assert raw.headers["x-tokenlane-deployment"] == "fast/fast-llama"
    assert raw.headers["x-tokenlane-route"].startswith("policy=order; chosen=fast/fast-llama")
    body = json.loads(raw.text())
    strict(Message, body)
    assert body["id"].startswith("msg_")


def test_max_tokens_stops_with_max_tokens(gw) -> None:
    message = client(gw).messages.create(model="llama", max_tokens=5, messages=USER)
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 5
    assert message.content[0].text == chat_text(gw, max_tokens=5)


def test_stream_event_sequence_is_anthropics(gw) -> None:
    with client(gw).messages.with_streaming_response.create(
            model="llama", max_tokens=100, messages=USER, stream=True) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-tokenlane-deployment"] == "fast/fast-llama"
        lines = [line for line in response.iter_lines() if line]
    names = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    datas = [json.loads(line.removeprefix("data: ")) for line in lines
             if line.startswith("data: ")]
    assert len(names) == len(datas)
    for name, data in zip(names, datas, strict=True):
        assert data["type"] == name
        if name != "ping":
            EVENTS.validate_python(data)
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[3:-3] == ["content_block_delta"] * 12
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start = datas[0]["message"]
    assert start["stop_reason"] is None and start["content"] == [] and start["model"] == "llama"
    strict(Message, start)
    assert datas[-2]["delta"]["stop_reason"] == "end_turn"
    assert datas[-2]["usage"]["output_tokens"] == 12
    text = "".join(d["delta"]["text"] for d in datas if d["type"] == "content_block_delta")
    assert text == chat_text(gw)


def test_stream_helper_final_message(gw) -> None:
    with client(gw).messages.stream(model="llama", max_tokens=100, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[0].text == chat_text(gw)
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 12
    # message_delta's count from upstream replaced message_start's estimate.
    assert final.usage.input_tokens == client(gw).messages.create(
        model="llama", max_tokens=100, messages=USER).usage.input_tokens


def test_tool_use_round_trip(gw) -> None:
    anthropic_client = client(gw)
    first = anthropic_client.messages.create(
        model="llama", max_tokens=200, messages=USER, tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"})
    assert first.stop_reason == "tool_use"
    [call] = first.content
    assert call.type == "tool_use" and call.name == "get_weather"
    assert isinstance(call.input, dict) and isinstance(call.input["city"], str)
    strict(Message, first.model_dump(exclude_unset=True))

    with anthropic_client.messages.stream(
            model="llama", max_tokens=200, messages=USER, tools=[WEATHER],
            tool_choice={"type": "any"}) as stream:
        streamed = stream.get_final_message()
    assert streamed.stop_reason == "tool_use"
    assert streamed.content[0].input == call.input

    history = [*USER, {"role": "assistant", "content": first.content},
               {"role": "user", "content": [
                   {"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 C"},
                   {"type": "text", "text": "Summarise it."}]}]
    second = anthropic_client.messages.create(model="llama", max_tokens=200, messages=history,
                                              tools=[WEATHER])
    assert second.stop_reason == "end_turn" and second.content[0].type == "text"
    assert second.usage.input_tokens > first.usage.input_tokens


async def test_async_client_and_stream(gw) -> None:
    async_client = anthropic.AsyncAnthropic(base_url=gw.url, auth_token=MASTER_KEY,
                                            max_retries=0)
    message = await async_client.messages.create(model="llama", max_tokens=100, messages=USER)
    async with async_client.messages.stream(model="llama", max_tokens=100,
                                            messages=USER) as stream:
        pieces = [text async for text in stream.text_stream]
    assert "".join(pieces) == message.content[0].text
    await async_client.close()


def test_x_api_key_and_bearer_both_accepted(gw) -> None:
    by_header = anthropic.Anthropic(base_url=gw.url, api_key=None, auth_token=None,
                                    default_headers={"X-Api-Key": MASTER_KEY}, max_retries=0)
    assert by_header.messages.create(model="llama", max_tokens=5, messages=USER).content
    response = httpx.post(f"{gw.url}/v1/messages", headers={
        "x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01",
        "anthropic-beta": "prompt-caching-2024-07-31"},
        json={"model": "llama", "max_tokens": 5, "messages": USER})
    assert response.status_code == 200 and response.json()["type"] == "message"


def test_wrong_key_is_anthropics_401(gw) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client(gw, auth_token="wrong").messages.create(model="llama", max_tokens=5,
                                                       messages=USER)
    assert caught.value.status_code == 401
    assert caught.value.body == {"type": "error", "error": {
        "type": "authentication_error", "message": "Incorrect API key provided."}}
    response = httpx.post(f"{gw.url}/v1/messages", json={"model": "llama"})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_unknown_model_is_not_found_error(gw) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client(gw).messages.create(model="claude-nope", max_tokens=5, messages=USER)
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "not_found_error"
    assert "claude-nope" in caught.value.body["error"]["message"]


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "llama", "messages": USER}, "max_tokens"),
    ({"model": "llama", "max_tokens": 5, "messages": []}, "messages"),
    ({"model": "llama", "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]},
     "messages.0.role"),
    ({"model": "llama", "max_tokens": 5, "messages": USER,
      "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools.0"),
])
def test_bad_requests_are_anthropic_400s(gw, body: dict[str, Any], param: str) -> None:
    response = httpx.post(f"{gw.url}/v1/messages", json=body,
                          headers={"authorization": f"Bearer {MASTER_KEY}"})
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert error["error"]["message"].startswith(param)
    assert "Traceback" not in response.text


def test_unparsable_body_is_anthropic_400(gw) -> None:
    response = httpx.post(f"{gw.url}/v1/messages", content=b"{not json",
                          headers={"authorization": f"Bearer {MASTER_KEY}",
                                   "content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_get_is_405(gw) -> None:
    response = httpx.get(f"{gw.url}/v1/messages",
                         headers={"authorization": f"Bearer {MASTER_KEY}"})
    assert response.status_code == 405 and response.json()["type"] == "error"


def test_count_tokens(gw) -> None:
    anthropic_client = client(gw)
    short = anthropic_client.messages.count_tokens(model="llama", messages=USER)
    longer = anthropic_client.messages.count_tokens(
        model="llama", system="A much longer system prompt " * 20, messages=USER,
        tools=[WEATHER])
    assert isinstance(short, MessageTokensCount)
    assert 0 < short.input_tokens < longer.input_tokens
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client.messages.count_tokens(model="nope", messages=USER)
    with pytest.raises(anthropic.BadRequestError):
        anthropic_client.messages.count_tokens(model="llama", messages=[])


def test_all_deployments_failing_is_overloaded_529() -> None:
    down = [FAST.model_copy(update={"fault": "http_503"})]
    with stack(down, {"llama": ["fast"]}) as s, pytest.raises(anthropic.OverloadedError) as caught:
        client(s).messages.create(model="llama", max_tokens=5, messages=USER)
    error = caught.value.body["error"]
    assert caught.value.status_code == 529 and error["type"] == "overloaded_error"
    assert [a["deployment"] for a in error["attempts"]] == ["fast/fast-llama"]


def test_fallback_before_first_token_is_invisible() -> None:
    specs = [FAST.model_copy(update={"fault": "http_503"}), SLOW]
    with stack(specs, {"llama": ["fast", "slow"]}, model_extra={"policy": "order"}) as s:
        raw = client(s).messages.with_raw_response.create(model="llama", max_tokens=50,
                                                          messages=USER)
        assert raw.headers["x-tokenlane-deployment"] == "slow/slow-llama"
        assert raw.parse().stop_reason == "end_turn"


def test_broken_stream_ends_with_an_error_event() -> None:
    broken = [FAST.model_copy(update={"fault": "error_event", "fault_after_tokens": 3})]
    with stack(broken, {"llama": ["fast"]}) as s:
        with pytest.raises(anthropic.APIStatusError) as caught:  # noqa: SIM117
            with client(s).messages.stream(model="llama", max_tokens=50,
                                           messages=USER) as stream:
                seen = []
                for text in stream.text_stream:
                    seen.append(text)  # noqa: PERF402 (kept up to the error)
        assert len(seen) == 3
        assert caught.value.body["type"] == "error"
        assert caught.value.body["error"]["type"] == "overloaded_error"


def test_models_list_the_surfaces_each_model_serves(gw) -> None:
    [card] = gw.openai().models.list().data
    assert card.id == "llama"
    assert card.model_extra["surfaces"] == ["chat.completions", "responses", "messages"]


def deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_hostile_bodies_are_4xx_in_anthropics_shape(gw, path: str) -> None:
    auth = {"authorization": f"Bearer {MASTER_KEY}"}
    nested = {"model": "llama", "max_tokens": 5, "messages": [
        *USER, {"role": "assistant", "content": [
            {"type": "tool_use", "id": "t", "name": "f", "input": deep(300)}]}]}
    response = httpx.post(f"{gw.url}{path}", json=nested, headers=auth)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    # What a web page can POST cross-site without a preflight is refused.
    response = httpx.post(f"{gw.url}{path}", content=json.dumps(nested),
                          headers={**auth, "content-type": "text/plain"})
    assert response.status_code == 415 and response.json()["type"] == "error"


PIXEL = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJR"
         "U5ErkJggg==")


def test_an_image_goes_to_a_deployment_that_sees() -> None:
    """Image blocks translate to image parts, and capabilities route them: a deployment
    without `vision` goes after one that has it (under an adaptive policy; `order` is
    followed to the letter)."""
    specs = [FAST.model_copy(update={"name": n, "api_key": SIM_KEY}) for n in ("blind", "eyes")]
    sim = Simulator(specs)
    picture = [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": PIXEL}},
        {"type": "text", "text": "What is this?"}]}]
    with serve(sim.app) as sim_url:
        data = gateway_config(sim_url, {"llama": ["blind", "eyes"]})
        data["models"]["llama"]["deployments"][0]["capabilities"] = sorted(
            ALL_FEATURES - {"vision"})
        settings = parse_settings(data)
        app = create_app(settings, env={"TL_TEST_KEYS": MASTER_KEY, "SIM_KEY": SIM_KEY},
                         rng=random.Random(7))
        with serve(app) as url:
            s = Stack(sim, sim_url, url, app, settings)
            for _ in range(6):  # cold, then thin (explored): never the blind one
                seen = client(s).messages.with_raw_response.create(
                    model="llama", max_tokens=20, messages=picture)
                assert seen.headers["x-tokenlane-deployment"] == "eyes/eyes-llama"
                assert seen.parse().stop_reason == "end_turn"
    assert sim.counters("blind").requests == 0
