"""The gateway's OpenAI-compatible surface, driven by the official openai SDK over loopback."""

from __future__ import annotations

import json
import logging

import httpx
import openai
import pytest

from tokenlane.sim import SimProviderSpec

from ..contract import validate_chat_chunk, validate_chat_completion, validate_error
from ..harness import MASTER_KEY, SIM_KEY, stack

FAST = SimProviderSpec(name="fast", ttft_s=0, tokens_per_s=1000, output_tokens=12, time_scale=0)
SLOW = SimProviderSpec(name="slow", ttft_s=0, tokens_per_s=50, output_tokens=12, time_scale=0)
MESSAGES = [{"role": "user", "content": "Say something short."}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def gw():
    with stack([FAST, SLOW], {"llama": ["fast", "slow"]},
               model_extra={"policy": "order"}) as s:
        yield s


def test_non_stream(gw) -> None:
    raw = gw.openai().chat.completions.with_raw_response.create(model="llama", messages=MESSAGES)
    completion = raw.parse()
    assert completion.model == "llama"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == 12
    assert raw.headers["x-tokenlane-deployment"] == "fast/fast-llama"
    assert len(raw.headers["x-request-id"]) >= 16
    assert raw.headers["x-tokenlane-route"].startswith("policy=order; chosen=fast/fast-llama")
    validate_chat_completion(json.loads(raw.text))


def test_stream_with_usage(gw) -> None:
    with gw.openai().chat.completions.with_streaming_response.create(
        model="llama", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-tokenlane-deployment"] == "fast/fast-llama"
        chunks = list(response.parse())
    for chunk in chunks:
        validate_chat_chunk(chunk.model_dump(exclude_unset=True))
        assert chunk.model == "llama"
    content = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(content) == 12
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_usage_hides_the_usage_we_asked_upstream_for(gw) -> None:
    chunks = list(gw.openai().chat.completions.create(model="llama", messages=MESSAGES,
                                                      stream=True))
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_async_stream_and_max_tokens(gw) -> None:
    client = gw.async_openai()
    stream = await client.chat.completions.create(model="llama", messages=MESSAGES, stream=True,
                                                  max_tokens=5)
    text = []
    finish = None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    assert len(text) == 5 and finish == "length"
    await client.close()


def test_tool_call_round_trip(gw) -> None:
    client = gw.openai()
    first = client.chat.completions.create(
        model="llama", messages=MESSAGES, tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    validate_chat_completion(first.model_dump(exclude_unset=True))
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert "city" in json.loads(call.function.arguments)
    # Streamed, the same call arrives in pieces that assemble to valid JSON.
    pieces = list(client.chat.completions.create(
        model="llama", messages=MESSAGES, tools=[WEATHER_TOOL], tool_choice="required",
        stream=True))
    args = "".join(c.choices[0].delta.tool_calls[0].function.arguments or ""
                   for c in pieces if c.choices and c.choices[0].delta.tool_calls)
    assert json.loads(args)["city"]
    # Send the tool result back; the model answers in text.
    second = client.chat.completions.create(model="llama", tools=[WEATHER_TOOL], messages=[
        *MESSAGES,
        first.choices[0].message.model_dump(exclude_unset=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'},
    ])
    assert second.choices[0].finish_reason == "stop" and second.choices[0].message.content


def test_assembled_non_stream_equals_the_providers_own(gw) -> None:
    """What a non-streaming client gets (assembled from the upstream stream) is what the
    provider itself returns without streaming, tool calls included."""
    direct = openai.OpenAI(base_url=f"{gw.sim_url}/fast/v1", api_key=SIM_KEY)
    for extra in ({}, {"tools": [WEATHER_TOOL], "tool_choice": "required"}):
        ours = gw.openai().chat.completions.create(model="llama", messages=MESSAGES, **extra)
        theirs = direct.chat.completions.create(model="fast-llama", messages=MESSAGES, **extra)
        a = ours.model_dump(exclude={"id", "created", "model"})
        b = theirs.model_dump(exclude={"id", "created", "model"})
        for msg in (a, b):  # tool call ids are random per response
            for call in msg["choices"][0]["message"].get("tool_calls") or ():
                call["id"] = "call"
        assert a == b


@pytest.mark.parametrize(
    ("kwargs", "exc", "status"),
    [
        ({"model": "nope", "messages": MESSAGES}, openai.NotFoundError, 404),
        ({"model": "llama", "messages": []}, openai.BadRequestError, 400),
        ({"model": "llama", "messages": MESSAGES, "extra_body": {"provider": {"sortt": "x"}}},
         openai.BadRequestError, 400),
    ],
)
def test_client_errors_raise_what_openai_would(gw, kwargs, exc, status) -> None:
    with pytest.raises(exc) as err:
        gw.openai().chat.completions.create(**kwargs)
    assert err.value.status_code == status
    validate_error(err.value.response.json())


def test_missing_model_and_invalid_json(gw) -> None:
    r = httpx.post(f"{gw.url}/v1/chat/completions", content=b"{not json",
                   headers={"authorization": "Bearer tl-test-master-key",
                            "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    validate_error(r.json())
    r = httpx.post(f"{gw.url}/v1/chat/completions", json={"messages": MESSAGES},
                   headers={"authorization": "Bearer tl-test-master-key"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "model"


def test_body_over_limit_is_413(gw) -> None:
    limit = gw.settings.server.max_body_bytes
    with pytest.raises(openai.APIStatusError) as err:
        gw.openai().chat.completions.create(
            model="llama", messages=[{"role": "user", "content": "x" * (limit + 1)}])
    assert err.value.status_code == 413
    validate_error(err.value.response.json())


def test_auth(gw) -> None:
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{gw.url}/v1", api_key="wrong", max_retries=0).models.list()
    r = httpx.get(f"{gw.url}/v1/models")
    assert r.status_code == 401
    validate_error(r.json())


def test_models_endpoints(gw) -> None:
    client = gw.openai()
    assert [m.id for m in client.models.list()] == ["llama"]
    assert client.models.retrieve("llama").id == "llama"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")
    assert httpx.get(f"{gw.url}/healthz").json() == {"status": "ok"}


def test_unknown_route_is_openai_shaped(gw) -> None:
    r = httpx.get(f"{gw.url}/v1/nothing-here")
    assert r.status_code == 404
    validate_error(r.json())


def test_chat_endpoint_wants_post(gw) -> None:
    r = httpx.get(f"{gw.url}/v1/chat/completions")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    validate_error(r.json())
    assert r.headers["x-request-id"]


def test_request_id_is_echoed(gw) -> None:
    r = httpx.get(f"{gw.url}/healthz", headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"


def test_client_disconnect_cancels_upstream(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    slow = SimProviderSpec(name="trickle", ttft_s=0, tokens_per_s=20, output_tokens=400,
                           time_scale=1)
    with stack([slow], {"m": ["trickle"]}) as s:
        with httpx.stream("POST", f"{s.url}/v1/chat/completions",
                          headers={"authorization": "Bearer tl-test-master-key"},
                          json={"model": "m", "messages": MESSAGES, "stream": True}) as r:
            lines = r.iter_lines()
            got = [next(lines) for _ in range(4)]
            assert any(line.startswith("data: ") for line in got)
        counters = s.sim.wait_counters("trickle", lambda c: c.disconnected >= 1, timeout=10)
        assert counters.disconnected == 1 and counters.completed == 0
    assert_no_tracebacks(caplog)  # after the stack is down: every handler has ended


def test_non_streaming_client_disconnect_cancels_upstream(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    slow = SimProviderSpec(name="slowstart", ttft_s=30, time_scale=1)
    with stack([slow], {"m": ["slowstart"]}) as s:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{s.url}/v1/chat/completions", timeout=httpx.Timeout(5, read=0.3),
                       headers={"authorization": "Bearer tl-test-master-key"},
                       json={"model": "m", "messages": MESSAGES})
        counters = s.sim.wait_counters("slowstart", lambda c: c.disconnected >= 1, timeout=10)
        assert counters.disconnected == 1 and counters.completed == 0
    assert_no_tracebacks(caplog)


def assert_no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    """A client going away is routine: a debug line at most, never an error with a traceback."""
    noisy = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not noisy, [r.getMessage() for r in noisy]


def test_upstream_4xx_passes_through_and_keys_never_leak(caplog) -> None:
    picky = SimProviderSpec(name="picky", models=["something-else"], ttft_s=0, time_scale=0)
    caplog.set_level(logging.DEBUG)
    with stack([picky], {"m": ["picky"]}) as s:
        with pytest.raises(openai.NotFoundError) as err:
            s.openai().chat.completions.create(model="m", messages=MESSAGES)
        assert err.value.status_code == 404
        assert err.value.response.headers["x-tokenlane-deployment"] == "picky/picky-m"
        body = err.value.response.json()
        validate_error(body)
        assert SIM_KEY not in err.value.response.text
        assert s.sim.counters("picky").requests == 1  # not retried elsewhere or again
    assert caplog.records
    assert all(SIM_KEY not in r.getMessage() for r in caplog.records)


def test_upstream_echoing_our_key_masked_never_reaches_the_client(caplog) -> None:
    """An upstream that rejects our key echoes it masked, as OpenAI does. That is the
    gateway's credential failing, not the client's: a 502 `upstream_auth_failed` (never a 401
    that would read as the client's own key being wrong), without even the masked key."""
    caplog.set_level(logging.DEBUG)
    with stack([SimProviderSpec(name="strict", ttft_s=0, time_scale=0)], {"m": ["strict"]}) as s:
        s.sim.update("strict", api_key="sk-sim-rotated-key-456")  # ours is now the wrong one
        with pytest.raises(openai.APIStatusError) as err:
            s.openai().chat.completions.create(model="m", messages=MESSAGES)
        body = err.value.response.json()
        validate_error(body)
        assert err.value.status_code == 502
        assert body["error"]["code"] == "upstream_auth_failed"
        assert [(a["outcome"], a["status"]) for a in body["error"]["attempts"]] == [("auth", 401)]
        assert "[redacted]" in body["error"]["message"]
    shown = SIM_KEY[:7], SIM_KEY[-4:], "***"
    for text in [err.value.response.text, *(r.getMessage() for r in caplog.records)]:
        assert not any(part in text for part in shown), text


def test_a_provider_refusing_our_key_is_failed_over_and_kept_out(caplog) -> None:
    """401 from one provider: the request is served by the next, that deployment's circuit
    opens for `auth_open_s` (no probe, no user goes back), and the log says whose key to fix
    (the variable's name, never the key)."""
    caplog.set_level(logging.INFO)
    specs = [SimProviderSpec(name=n, ttft_s=0, time_scale=0) for n in ("locked", "open")]
    with stack(specs, {"m": ["locked", "open"]}, model_extra={"policy": "order"}) as s:
        s.sim.update("locked", api_key="sk-sim-someone-elses-key")
        client = s.openai()
        for _ in range(3):
            raw = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
            assert raw.headers["x-tokenlane-deployment"] == "open/open-m"
        assert s.sim.counters("locked").requests == 1  # refused once, then left alone
        stats = httpx.get(f"{s.url}/v1/router/stats",
                          headers={"authorization": f"Bearer {MASTER_KEY}"}).json()
        locked = stats["models"]["m"]["deployments"][0]
        assert locked["circuit"] == "open" and locked["error_rate"] == 1.0
        metrics = httpx.get(f"{s.url}/metrics",
                            headers={"authorization": f"Bearer {MASTER_KEY}"}).text
        assert 'outcome="auth"' in metrics
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("refused the gateway's credentials" in w and "$SIM_KEY" in w for w in warnings)
    assert all(SIM_KEY not in r.getMessage() for r in caplog.records)


def test_all_deployments_failing_is_503_listing_attempts() -> None:
    broken = [SimProviderSpec(name=n, error_rate=1.0, ttft_s=0, time_scale=0) for n in "ab"]
    with stack(broken, {"m": ["a", "b"]}) as s:
        with pytest.raises(openai.InternalServerError) as err:
            s.openai().chat.completions.create(model="m", messages=MESSAGES)
        assert err.value.status_code == 503
        message = err.value.response.json()["error"]["message"]
        assert "a/a-m: 5xx HTTP 500" in message and "b/b-m: 5xx HTTP 500" in message
        assert SIM_KEY not in err.value.response.text
        attempts = err.value.response.json()["error"]["attempts"]
        assert sorted((a["deployment"], a["outcome"], a["status"]) for a in attempts) == [
            ("a/a-m", "5xx", 500), ("b/b-m", "5xx", 500)]
