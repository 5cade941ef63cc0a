"""The simulator as faithful as the demo needs: stop, n, response_format, tool_choice auto,
logprobs, x-ratelimit headers, time_info and Cerebras's two 429 kinds, through the openai SDK."""

from __future__ import annotations

import json

import openai
import pytest

from tokenlane.clock import ManualClock
from tokenlane.providers.headroom import classify_429, parse_rate_limits, parse_time_info
from tokenlane.sim import SimProviderSpec

from .support import SdkClient, StartSim

MESSAGES = [{"role": "user", "content": "hi"}]
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {
    "type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}]


def swift(**fields: object) -> SimProviderSpec:
    return SimProviderSpec(name="swift", ttft_s=0, time_scale=0, output_tokens=19, **fields)


def test_stop_cuts_before_the_stop_string(start_sim: StartSim, sdk: SdkClient) -> None:
    _, root = start_sim(swift())
    client = sdk(root)
    full = client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content
    assert full is not None and "one token" in full
    cut = client.chat.completions.create(model="m", messages=MESSAGES, stop=["one token", "zz"])
    assert cut.choices[0].message.content == full[:full.index("one token")]
    assert cut.choices[0].finish_reason == "stop"
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stop="token",
                                            stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == full[:full.index("token")]


def test_n_choices_and_logprobs(start_sim: StartSim, sdk: SdkClient) -> None:
    _, root = start_sim(swift())
    client = sdk(root)
    reply = client.chat.completions.create(model="m", messages=MESSAGES, n=3, logprobs=True,
                                           max_tokens=4)
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert len({c.message.content for c in reply.choices}) == 1
    tokens = [t.token for t in reply.choices[0].logprobs.content]
    assert "".join(tokens) == reply.choices[0].message.content and len(tokens) == 4
    chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, n=2,
                                                 logprobs=True, max_tokens=4, stream=True))
    by_index: dict[int, str] = {}
    for c in chunks:
        for choice in c.choices:
            by_index[choice.index] = by_index.get(choice.index, "") + (choice.delta.content or "")
            if choice.delta.content:
                assert choice.logprobs.content[0].token == choice.delta.content
    assert by_index[0] == by_index[1] == reply.choices[0].message.content


@pytest.mark.parametrize("fmt", [
    {"type": "json_object"},
    {"type": "json_schema", "json_schema": {"name": "x", "schema": {
        "type": "object", "properties": {"city": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["city", "n"]}}},
])
def test_response_format_is_valid_json(start_sim: StartSim, sdk: SdkClient, fmt) -> None:
    _, root = start_sim(swift())
    client = sdk(root)
    reply = client.chat.completions.create(model="m", messages=MESSAGES, response_format=fmt)
    data = json.loads(reply.choices[0].message.content)
    if fmt["type"] == "json_schema":
        assert set(data) == {"city", "n"} and isinstance(data["n"], int)
    else:
        assert isinstance(data, dict) and "swift" in data["answer"]
    chunks = client.chat.completions.create(model="m", messages=MESSAGES, response_format=fmt,
                                            stream=True)
    assert json.loads("".join(c.choices[0].delta.content or "" for c in chunks if c.choices))


def test_tool_choice_auto_sometimes_calls(start_sim: StartSim, sdk: SdkClient) -> None:
    _, root = start_sim(swift(seed=3))
    client = sdk(root)
    kinds = [client.chat.completions.create(model="m", messages=MESSAGES, tools=TOOLS)
             .choices[0].finish_reason for _ in range(20)]
    assert 3 <= kinds.count("tool_calls") <= 17 and "stop" in kinds
    never = client.chat.completions.create(model="m", messages=MESSAGES, tools=TOOLS,
                                           tool_choice="none")
    assert never.choices[0].finish_reason == "stop"


def test_rate_limit_headers_quota_and_reset(start_sim: StartSim, sdk: SdkClient) -> None:
    clock = ManualClock()
    _, root = start_sim(swift(rate_limit_headers="cerebras", requests_per_minute=10,
                              tokens_per_minute=100), clock=clock)
    client = sdk(root)
    raw = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES,
                                                           max_completion_tokens=60)
    limits = {(lim.resource, lim.window): lim for lim in parse_rate_limits(raw.headers.items())}
    tokens = limits[("tokens", "minute")]
    # Admitted on prompt + max_completion_tokens, whatever it then used.
    assert tokens.limit == 100 and tokens.remaining is not None and tokens.remaining < 40
    assert limits[("requests", "minute")].remaining == 9 and 0 < (tokens.reset_s or 0) <= 60
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="m", messages=MESSAGES, max_completion_tokens=60)
    assert classify_429(err.value.body) == "quota"
    assert parse_rate_limits(err.value.response.headers.items())
    clock.advance(60)
    assert client.chat.completions.create(model="m", messages=MESSAGES,
                                          max_completion_tokens=60).choices


def test_openai_style_headers(start_sim: StartSim, sdk: SdkClient) -> None:
    _, root = start_sim(swift(rate_limit_headers="openai", requests_per_minute=5))
    raw = sdk(root).chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    assert raw.headers["x-ratelimit-remaining-requests"] == "4"
    assert raw.headers["x-ratelimit-reset-requests"].endswith("s")


def test_429_kinds_and_time_info(start_sim: StartSim, sdk: SdkClient) -> None:
    _, root = start_sim(swift(rate_limit_rate=1, rate_limit_kind="capacity"))
    with pytest.raises(openai.RateLimitError) as err:
        sdk(root).chat.completions.create(model="m", messages=MESSAGES)
    assert classify_429(err.value.body) == "capacity"
    _, root = start_sim(SimProviderSpec(name="swift", ttft_s=0.2, tokens_per_s=100,
                                        time_scale=0, time_info=True, queue_s=0.05))
    raw = sdk(root).chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    info = parse_time_info(raw.http_response.json())
    assert info is not None and info.queue_s == 0.0  # time_scale 0: every delay is zero
    chunks = list(sdk(root).chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert parse_time_info(chunks[-1].model_dump()) is not None


def test_rejects_answer_like_groq(start_sim: StartSim, sdk: SdkClient) -> None:
    _, root = start_sim(swift(rejects=["logprobs", "message_names"]))
    client = sdk(root)
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="m", messages=MESSAGES, logprobs=True)
    assert "`logprobs` is not supported" in err.value.message
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "name": "ann", "content": "hi"}])
    assert "property 'name' is unsupported" in err.value.message
    assert client.chat.completions.create(model="m", messages=MESSAGES).choices
