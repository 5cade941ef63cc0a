"""`messages` in the Python library (Anthropic's Messages API): the in-process Router (sync
and async) and the gateway clients, against simulated providers on loopback, one speaking
Anthropic's API upstream and one OpenAI's. The reference is what the official anthropic SDK
gets from the gateway's `POST /v1/messages` for the same request: the library reuses that
translation, so the answers must be the same."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from tokenlane import AsyncClient, Client, InvalidRequest, ModelNotFound, Router, StreamBroken
from tokenlane.client import AnthropicMessage, AsyncMessageStream, MessageStream
from tokenlane.sim import SimProviderSpec

from ..harness import MASTER_KEY, SIM_KEY
from ..providers.support import anthropic_stack

CLAUDE = SimProviderSpec(name="claude", ttft_s=0, tokens_per_s=1000, output_tokens=9,
                         time_scale=0, api_key=SIM_KEY)
BACKUP = CLAUDE.model_copy(update={"name": "backup"})
USER = [{"role": "user", "content": "Say something short."}]
ENV = {"TL_TEST_KEYS": MASTER_KEY, "SIM_KEY": SIM_KEY}
WEATHER = {"name": "get_weather", "description": "Current weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}
ON_BACKUP = {"only": ["backup/backup-m"], "allow_fallbacks": False}


@pytest.fixture(scope="module")
def gw():
    with anthropic_stack([CLAUDE, BACKUP], {"m": ["claude", "backup"]}) as s:
        yield s


@pytest.fixture(scope="module")
def router(gw):
    with Router(gw.settings, env=ENV) as r:
        yield r


def reference(gw: Any, **kwargs: Any) -> anthropic.types.Message:
    sdk = anthropic.Anthropic(base_url=gw.url, auth_token=MASTER_KEY, max_retries=0)
    return sdk.messages.create(model="m", max_tokens=50, messages=USER, **kwargs)


def test_router_messages_in_process(gw, router) -> None:
    reply = router.messages(model="m", max_tokens=50, messages=USER, system="Be brief.",
                            betas=["prompt-caching-2024-07-31"])
    assert isinstance(reply, AnthropicMessage)
    expected = reference(gw, system="Be brief.")
    assert reply.text == expected.content[0].text and reply.text
    assert reply.stop_reason == expected.stop_reason == "end_turn"
    assert reply.model == "m" and reply.id.startswith("msg_")
    assert reply.usage["output_tokens"] == 9
    assert reply.to_anthropic().content[0].text == reply.text  # the SDK's own type
    assert reply.deployment == "claude/claude-m"
    assert reply.decision is not None and reply.decision.chosen == "claude/claude-m"
    assert reply.observation is not None and reply.observation.output_tokens == 9
    # The betas reached the Anthropic upstream as the gateway forwards a client's.
    seen = [h for h in gw.sim.request_headers("claude")
            if h.get("anthropic-beta") == "prompt-caching-2024-07-31"]
    assert seen


def test_router_message_stream_is_anthropics_event_sequence(gw, router) -> None:
    with router.messages(model="m", max_tokens=50, messages=USER, stream=True) as stream:
        assert isinstance(stream, MessageStream)
        assert stream.deployment == "claude/claude-m"
        events = list(stream)
    types = [e.type for e in events]
    assert types[:3] == ["message_start", "content_block_start", "ping"]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    for event in events:
        validated = event.to_anthropic()
        assert (validated is None) == (event.type == "ping")
    assert "".join(e.text for e in events) == reference(gw).content[0].text
    assert events[-2].raw["usage"]["output_tokens"] == 9
    assert stream.observation is not None and stream.observation.outcome == "ok"


async def test_router_amessages_tool_use_on_an_openai_deployment(gw, router) -> None:
    first = await router.amessages(model="m", max_tokens=100, messages=USER, tools=[WEATHER],
                                   tool_choice={"type": "tool", "name": "get_weather"},
                                   provider=ON_BACKUP)
    assert first.deployment == "backup/backup-m"
    assert first.stop_reason == "tool_use"
    [call] = first.tool_uses
    assert call["name"] == "get_weather" and isinstance(call["input"]["city"], str)
    answer = await router.amessages(model="m", max_tokens=100, tools=[WEATHER], messages=[
        *USER, {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"],
                                      "content": "Sunny"}]}], provider=ON_BACKUP)
    assert answer.stop_reason == "end_turn" and answer.text
    stream = await router.amessages(model="m", max_tokens=50, messages=USER, stream=True)
    assert isinstance(stream, AsyncMessageStream)
    async with stream:
        text = "".join([e.text async for e in stream])
    assert text == reference(gw).content[0].text


def test_router_messages_errors(router) -> None:
    with pytest.raises(ModelNotFound):
        router.messages(model="nope", max_tokens=5, messages=USER)
    with pytest.raises(InvalidRequest) as caught:
        router.messages(model="m", max_tokens=0, messages=USER)
    assert caught.value.param == "max_tokens"
    with pytest.raises(TypeError):
        router.messages(model="m", max_tokens=5, messages=USER, betas="one-string")


def test_gateway_client_messages(gw) -> None:
    with Client(gw.url, api_key=MASTER_KEY) as client:
        reply = client.messages(model="m", max_tokens=50, messages=USER,
                                betas=["token-efficient-tools-2025-02-19"])
        with client.messages(model="m", max_tokens=50, messages=USER, stream=True) as stream:
            events = list(stream)
        with pytest.raises(ModelNotFound) as missing:
            client.messages(model="nope", max_tokens=5, messages=USER)
        with pytest.raises(InvalidRequest):
            client.messages(model="m", max_tokens=0, messages=USER)
    assert reply.text == reference(gw).content[0].text
    assert reply.deployment == "claude/claude-m" and reply.decision.policy == "order"
    assert reply.observation is None
    assert gw.sim.request_headers("claude")[-3]["anthropic-beta"] == (
        "token-efficient-tools-2025-02-19")
    assert events[-1].type == "message_stop"
    assert "".join(e.text for e in events) == reply.text
    assert stream.deployment == "claude/claude-m"
    assert missing.value.type == "not_found_error"  # Anthropic's, as the gateway sent it


async def test_async_gateway_client_messages(gw) -> None:
    async with AsyncClient(gw.url, api_key=MASTER_KEY) as client:
        reply = await client.messages(model="m", max_tokens=50, messages=USER,
                                      provider=ON_BACKUP)
        stream = await client.messages(model="m", max_tokens=50, messages=USER, stream=True)
        async with stream:
            events = [e async for e in stream]
    assert reply.deployment == "backup/backup-m"
    assert reply.text == reference(gw, extra_body={"provider": ON_BACKUP}).content[0].text
    assert "".join(e.text for e in events) == reference(gw).content[0].text


def test_a_stream_broken_after_the_first_token_raises() -> None:
    broken = CLAUDE.model_copy(update={"fault": "error_event", "fault_after_tokens": 2})
    with anthropic_stack([broken], {"m": ["claude"]}) as s:
        with Router(s.settings, env=ENV) as router:
            stream = router.messages(model="m", max_tokens=50, messages=USER, stream=True)
            with stream, pytest.raises(StreamBroken):
                for _ in stream:
                    pass
        texts: list[str] = []
        with Client(s.url, api_key=MASTER_KEY) as client:
            stream = client.messages(model="m", max_tokens=50, messages=USER, stream=True)
            with stream, pytest.raises(StreamBroken):
                texts.extend(e.text for e in stream)
    assert len([t for t in texts if t]) == 2  # what came before the break, then the error
