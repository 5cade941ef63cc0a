"""The Anthropic dialect end to end: the gateway in front of a simulated Anthropic provider
(the simulator's `/v1/messages` route), checked against the same provider's OpenAI route.

The simulated provider plans one reply per request whichever API it is asked in, so what a
chat client gets through the Anthropic dialect must be what the provider's chat route says.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from tokenlane.config import parse_settings
from tokenlane.providers.anthropic import AnthropicDialect
from tokenlane.sim import SimProviderSpec, Simulator

from ..harness import MASTER_KEY, SIM_KEY
from .support import anthropic_stack

CLAUDE = SimProviderSpec(name="claude", ttft_s=0, tokens_per_s=1000, output_tokens=12,
                         time_scale=0, api_key=SIM_KEY)
BACKUP = SimProviderSpec(name="backup", ttft_s=0, tokens_per_s=1000, output_tokens=12,
                         time_scale=0, api_key=SIM_KEY)
USER = [{"role": "user", "content": "Say something short."}]
TOOL = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture(scope="module")
def gw():
    with anthropic_stack([CLAUDE, BACKUP], {"m": ["claude", "backup"]}) as s:
        yield s


def direct(gw: Any) -> openai.OpenAI:
    """The simulated provider's own OpenAI route: the reference."""
    return openai.OpenAI(base_url=Simulator.base_url(gw.sim_url, "claude"), api_key=SIM_KEY,
                         max_retries=0)


def test_chat_through_the_anthropic_dialect(gw) -> None:
    # Both simulator routes answer alike: make sure it is the Messages route being asked.
    assert isinstance(gw.engine.dialects["claude"], AnthropicDialect)
    raw = gw.openai().chat.completions.with_raw_response.create(model="m", messages=USER,
                                                                max_tokens=100)
    completion = raw.parse()
    reference = direct(gw).chat.completions.create(model="claude-m", messages=USER)
    assert raw.headers["x-tokenlane-deployment"] == "claude/claude-m"
    assert completion.choices[0].message.content == reference.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == 12 and completion.usage.prompt_tokens > 0
    assert completion.model == "m"
    row = next(d for d in gw.engine.stats_report()["models"]["m"]["deployments"]
               if d["provider"] == "claude")
    assert row["samples"] >= 1  # measured like any deployment


def test_stream_and_length(gw) -> None:
    chunks = list(gw.openai().chat.completions.create(
        model="m", messages=USER, max_tokens=5, stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reference = direct(gw).chat.completions.create(model="claude-m", messages=USER,
                                                   max_tokens=5)
    assert text == reference.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "length"
    assert chunks[-1].usage.completion_tokens == 5


def test_tool_call_through_the_anthropic_dialect(gw) -> None:
    completion = gw.openai().chat.completions.create(
        model="m", messages=USER, tools=[TOOL], tool_choice="required")
    reference = direct(gw).chat.completions.create(
        model="claude-m", messages=USER, tools=[TOOL], tool_choice="required")
    [call] = completion.choices[0].message.tool_calls
    assert completion.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == json.loads(
        reference.choices[0].message.tool_calls[0].function.arguments)
    # ... and the result goes back as a tool_result the provider accepts.
    answer = gw.openai().chat.completions.create(model="m", tools=[TOOL], messages=[
        *USER, completion.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny"}])
    assert answer.choices[0].finish_reason == "stop"


def test_messages_client_to_anthropic_upstream(gw) -> None:
    client = anthropic.Anthropic(base_url=gw.url, auth_token=MASTER_KEY, max_retries=0)
    with client.messages.stream(model="m", max_tokens=100, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    reference = direct(gw).chat.completions.create(model="claude-m", messages=USER)
    assert text == reference.choices[0].message.content
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 12


@pytest.mark.parametrize("fault", ["http_503", "http_529"])
def test_overloaded_anthropic_falls_back(fault: str) -> None:
    down = CLAUDE.model_copy(update={"fault": fault})
    with anthropic_stack([down, BACKUP], {"m": ["claude", "backup"]}) as s:
        raw = s.openai().chat.completions.with_raw_response.create(model="m", messages=USER)
        assert raw.headers["x-tokenlane-deployment"] == "backup/backup-m"
        assert raw.parse().choices[0].finish_reason == "stop"
        assert s.sim.counters("claude").errors == 1  # tried, refused, then the fallback


def test_anthropic_rate_limit_falls_back_and_its_retry_after_is_kept() -> None:
    limited = CLAUDE.model_copy(update={"rate_limit_rate": 1.0, "retry_after_s": 7})
    with anthropic_stack([limited, BACKUP], {"m": ["claude", "backup"]}) as s:
        raw = s.openai().chat.completions.with_raw_response.create(model="m", messages=USER)
        assert raw.headers["x-tokenlane-deployment"] == "backup/backup-m"
        assert s.sim.counters("claude").rate_limited == 1
        assert "claude/claude-m" in raw.headers["x-tokenlane-route"]
    with (anthropic_stack([limited], {"m": ["claude"]}) as s,
          pytest.raises(openai.RateLimitError) as caught):
        s.openai().chat.completions.create(model="m", messages=USER)
    # Anthropic's 429 and its Retry-After: the client is told when to come back.
    assert 0 < float(caught.value.response.headers["retry-after"]) <= 7
    assert caught.value.body["attempts"][0]["outcome"] == "429"


def test_mid_stream_error_event_breaks_the_stream() -> None:
    broken = CLAUDE.model_copy(update={"fault": "error_event", "fault_after_tokens": 2})
    with anthropic_stack([broken], {"m": ["claude"]}) as s, pytest.raises(openai.APIError):
        pieces = []
        for chunk in s.openai().chat.completions.create(model="m", messages=USER, stream=True):
            pieces.append(chunk.choices[0].delta.content)
    assert len([p for p in pieces if p]) == 2


def test_wrong_upstream_key_is_not_leaked() -> None:
    with anthropic_stack([CLAUDE.model_copy(update={"api_key": "another-key"})],
                         {"m": ["claude"]}) as s:
        with pytest.raises(openai.APIStatusError) as caught:
            s.openai().chat.completions.create(model="m", messages=USER)
        # Refused for its x-api-key (the simulated Anthropic provider reads no other header).
        assert "x-api-key" in caught.value.response.text
        assert SIM_KEY not in caught.value.response.text


EVENTS = TypeAdapter(RawMessageStreamEvent)


def test_the_simulated_anthropic_provider_speaks_messages(gw) -> None:
    """The simulator's Messages route, straight to Anthropic's SDK."""
    client = anthropic.Anthropic(base_url=f"{gw.sim_url}/claude", api_key=None,
                                 auth_token=None, default_headers={"x-api-key": SIM_KEY},
                                 max_retries=0)
    message = client.messages.create(model="claude-m", max_tokens=100, messages=USER)
    Message.model_validate(message.model_dump())
    with client.messages.with_streaming_response.create(
            model="claude-m", max_tokens=100, messages=USER, stream=True) as response:
        lines = [x for x in response.iter_lines() if x.startswith("data: ")]
    events = [json.loads(x.removeprefix("data: ")) for x in lines]
    for event in events:
        if event["type"] != "ping":
            EVENTS.validate_python(event)
    assert events[-1]["type"] == "message_stop"
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text == message.content[0].text
    with pytest.raises(anthropic.AuthenticationError) as caught:
        anthropic.Anthropic(base_url=f"{gw.sim_url}/claude", api_key=None, auth_token=None,
                            default_headers={"x-api-key": "wrong"}, max_retries=0
                            ).messages.create(model="claude-m", max_tokens=5, messages=USER)
    assert caught.value.body["error"]["type"] == "authentication_error"


def test_anthropic_preset_picks_the_dialect() -> None:
    settings = parse_settings({
        "server": {"auth": {"enabled": False}},
        "providers": {"anthropic": {"preset": "anthropic"},
                      "proxy": {"base_url": "http://127.0.0.1:9/v1", "dialect": "anthropic"},
                      "plain": {"base_url": "http://127.0.0.1:9/v1"}},
        "models": {"m": {"deployments": [
            {"provider": p, "model": "x", "price": {"input": 1, "output": 1}}
            for p in ("anthropic", "proxy", "plain")]}}})
    catalog = settings.resolve({"ANTHROPIC_API_KEY": "k"})
    anthropic_provider = catalog.providers["anthropic"]
    assert anthropic_provider.dialect == "anthropic"
    assert anthropic_provider.base_url == "https://api.anthropic.com/v1"
    assert catalog.providers["proxy"].dialect == "anthropic"
    assert catalog.providers["plain"].dialect == "openai"
