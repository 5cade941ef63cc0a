"""The simulator over real HTTP, driven by the official `openai` SDK as a client would."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tokenlane.sim import Simulator

from .support import HELLO, WEATHER_TOOL, SdkClient, StartSim, instant


def test_non_stream_completion(start_sim: StartSim, sdk: SdkClient) -> None:
    sim, root = start_sim(instant(output_tokens=7))
    reply = sdk(root).chat.completions.create(model="llama-3.3-70b", messages=HELLO)
    assert reply.id.startswith("chatcmpl-")
    assert reply.object == "chat.completion"
    assert reply.model == "llama-3.3-70b"
    choice = reply.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content and "swift" in choice.message.content
    assert len(choice.message.content.split()) == 7
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 7
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 7
    assert sim.counters("swift").completed == 1


def test_stream_with_usage(start_sim: StartSim, sdk: SdkClient) -> None:
    sim, root = start_sim(instant(output_tokens=12))
    stream = sdk(root).chat.completions.create(
        model="m", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert len({c.id for c in chunks}) == 1
    contents = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    assert len(contents) == usage_chunk.usage.completion_tokens == 12
    assert finishes == ["stop"]
    assert all(c.usage is None for c in chunks[:-1])
    assert sim.counters("swift").completed == 1


def test_stream_is_real_sse(start_sim: StartSim) -> None:
    _, root = start_sim(instant(output_tokens=3))
    body = {"model": "m", "messages": HELLO, "stream": True}
    with httpx.stream("POST", f"{root}/swift/v1/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith("data: ") for line in lines)
    assert len(lines) == 1 + 3 + 1 + 1  # role, tokens, finish, [DONE]


def test_max_tokens_gives_finish_reason_length(start_sim: StartSim, sdk: SdkClient) -> None:
    _, root = start_sim(instant(output_tokens=50))
    reply = sdk(root).chat.completions.create(model="m", messages=HELLO, max_tokens=4)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 4


def test_forced_tool_call(start_sim: StartSim, sdk: SdkClient) -> None:
    _, root = start_sim(instant())
    reply = sdk(root).chat.completions.create(
        model="m",
        messages=HELLO,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    arguments = json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert arguments == {"city": "example", "unit": "celsius", "days": 1}


def test_forced_tool_call_streamed(start_sim: StartSim, sdk: SdkClient) -> None:
    _, root = start_sim(instant())
    stream = sdk(root).chat.completions.create(
        model="m",
        messages=HELLO,
        tools=[WEATHER_TOOL],
        tool_choice="required",
        stream=True,
        stream_options={"include_usage": True},
    )
    name, call_id, arguments, finish, usage, deltas = None, None, "", None, None, 0
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or ():
                assert call.index == 0
                deltas += 1
                call_id = call.id or call_id
                if call.function and call.function.name:
                    name = call.function.name
                arguments += (call.function and call.function.arguments) or ""
    assert name == "get_weather" and call_id and call_id.startswith("call_")
    assert json.loads(arguments) == {"city": "example", "unit": "celsius", "days": 1}
    assert finish == "tool_calls"
    assert usage is not None and usage.completion_tokens == deltas


def test_rate_limited_with_retry_after(start_sim: StartSim, sdk: SdkClient) -> None:
    sim, root = start_sim(instant(rate_limit_rate=1.0, retry_after_s=1.5))
    with pytest.raises(openai.RateLimitError) as caught:
        sdk(root).chat.completions.create(model="m", messages=HELLO)
    assert caught.value.response.headers["retry-after"] == "1.5"
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.type == "requests"
    counters = sim.counters("swift")
    assert (counters.errors, counters.rate_limited, counters.completed) == (1, 1, 0)


def test_server_error(start_sim: StartSim, sdk: SdkClient) -> None:
    sim, root = start_sim(instant(error_rate=1.0))
    with pytest.raises(openai.InternalServerError) as caught:
        sdk(root).chat.completions.create(model="m", messages=HELLO, stream=True)
    assert caught.value.status_code == 500
    assert caught.value.type == "server_error"
    assert sim.counters("swift").errors == 1


def test_api_key_is_checked(start_sim: StartSim, sdk: SdkClient) -> None:
    _, root = start_sim(instant(api_key="sk-right"))
    with pytest.raises(openai.AuthenticationError) as caught:
        sdk(root, api_key="sk-wrong").chat.completions.create(model="m", messages=HELLO)
    assert caught.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        sdk(root, api_key="sk-wrong").models.list()
    ok = sdk(root, api_key="sk-right").chat.completions.create(model="m", messages=HELLO)
    assert ok.choices[0].finish_reason == "stop"


def test_unknown_model(start_sim: StartSim, sdk: SdkClient) -> None:
    _, root = start_sim(instant(models=["llama-3.3-70b"]))
    with pytest.raises(openai.NotFoundError) as caught:
        sdk(root).chat.completions.create(model="gpt-9", messages=HELLO)
    assert caught.value.code == "model_not_found"
    assert caught.value.param == "model"
    assert [m.id for m in sdk(root).models.list()] == ["llama-3.3-70b"]


def test_unknown_provider_and_route(start_sim: StartSim, sdk: SdkClient) -> None:
    _, root = start_sim(instant())
    with pytest.raises(openai.NotFoundError):
        sdk(root, name="nobody").chat.completions.create(model="m", messages=HELLO)
    response = httpx.get(f"{root}/no/such/route")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_bad_requests(start_sim: StartSim) -> None:
    sim, root = start_sim(instant())
    url = f"{root}/swift/v1/chat/completions"
    assert httpx.post(url, content=b"{not json").status_code == 400
    missing = httpx.post(url, json={"model": "m"})
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "messages"
    assert sim.counters("swift").errors == 2


def test_counters_show_which_provider_served(start_sim: StartSim, sdk: SdkClient) -> None:
    sim, root = start_sim(instant("swift"), instant("steady"))
    for _ in range(3):
        sdk(root, "steady").chat.completions.create(model="m", messages=HELLO)
    assert sim.counters("steady").completed == 3
    assert sim.counters("swift").requests == 0


async def test_async_client_and_unknown_request_fields(start_sim: StartSim) -> None:
    _, root = start_sim(instant(output_tokens=4))
    async with openai.AsyncOpenAI(
        base_url=Simulator.base_url(root, "swift"), api_key="k", max_retries=0
    ) as aclient:
        stream = await aclient.chat.completions.create(
            model="m",
            messages=HELLO,
            stream=True,
            temperature=0.2,
            user="someone",
            extra_body={"provider": {"sort": "latency"}, "top_k": 5},
        )
        words = [c.choices[0].delta.content async for c in stream if c.choices]
    assert "".join(w or "" for w in words).split() == ["this", "answer", "comes", "from"]
