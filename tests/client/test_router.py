"""The in-process Router against simulated providers on loopback: sync and async, streams,
typed errors with attempts, shutdown."""

from __future__ import annotations

import asyncio
import gc
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tokenlane import (
    AsyncStream,
    ChatCompletion,
    ConfigError,
    InvalidRequest,
    ModelNotFound,
    NoDeploymentAvailable,
    Observation,
    Router,
    RoutingOptions,
    Stream,
    StreamBroken,
)
from tokenlane.sim import Simulator

from ..contract import validate_chat_chunk, validate_chat_completion
from .support import ENV, MESSAGES, N, router, router_config, simulator


@pytest.fixture(scope="module")
def sim():
    with simulator() as s:
        yield s


@pytest.fixture
def r(sim):
    with router(sim[1]) as r:
        yield r


def _disconnects(sim: Simulator, name: str, at_least: int) -> None:
    counters = sim.wait_counters(name, lambda c: c.disconnected >= at_least, timeout=10)
    assert counters.completed == 0


def test_chat_returns_an_openai_completion_with_decision_and_measurements(r) -> None:
    reply = r.chat(model="m", messages=MESSAGES, temperature=0.5)
    assert isinstance(reply, ChatCompletion)
    assert reply.model == "m" and reply.choices[0].finish_reason == "stop"
    assert reply.text == reply.choices[0].message.content and reply.text
    assert reply.usage is not None and reply.usage.completion_tokens == N
    assert reply.deployment == reply.decision.chosen == "fast/fast-m"
    assert reply.decision.policy == "order"
    assert [c.deployment for c in reply.decision.candidates] == ["fast/fast-m", "slow/slow-m"]
    for candidate in reply.decision.candidates:  # what was predicted for this request
        assert None not in (candidate.ttft_s, candidate.decode_tps, candidate.cost_usd)
    obs = reply.observation  # what was measured
    assert isinstance(obs, Observation)
    assert (obs.outcome, obs.deployment, obs.output_tokens) == ("ok", "fast/fast-m", N)
    assert obs.ttft_s is not None and obs.decode_tps is not None and obs.decode_tps > 0
    assert obs.cost > 0
    assert reply.to_openai().choices[0].message.content == reply.text
    validate_chat_completion(reply.raw)


def test_routing_options_typed_or_as_a_dict(r) -> None:
    assert r.chat(model="m", messages=MESSAGES,
                  provider=RoutingOptions(only=["slow"])).deployment == "slow/slow-m"
    assert r.chat(model="m", messages=MESSAGES,
                  provider={"order": ["slow", "fast"]}).deployment == "slow/slow-m"
    reply = r.chat(model="m:floor", messages=MESSAGES)  # OpenRouter's suffix: by price
    assert reply.decision.policy == "price" and reply.model == "m"


def test_openai_parameters_pass_through(r) -> None:
    reply = r.chat(model="m", messages=MESSAGES, max_tokens=5)
    assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 5
    tool = {"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    called = r.chat(model="m", messages=MESSAGES, tools=[tool], tool_choice="required")
    call = called.choices[0].message.tool_calls[0]
    assert call.function.name == "f" and "city" in call.function.arguments


def test_stream(r) -> None:
    with r.chat(model="m", messages=MESSAGES, stream=True,
                stream_options={"include_usage": True}) as stream:
        assert isinstance(stream, Stream)
        assert stream.deployment == stream.decision.chosen == "fast/fast-m"
        chunks = list(stream)
    assert stream.closed
    for chunk in chunks:
        validate_chat_chunk(chunk.raw)
        assert chunk.model == "m"
    assert sum(1 for c in chunks if c.text) == N
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == N
    assert stream.observation.outcome == "ok" and stream.observation.output_tokens == N


async def test_async_chat_and_stream(r) -> None:
    reply = await r.achat(model="m", messages=MESSAGES, provider={"only": ["slow"]})
    assert reply.deployment == "slow/slow-m" and reply.observation.outcome == "ok"
    stream = await r.achat(model="m", messages=MESSAGES, stream=True)
    assert isinstance(stream, AsyncStream)
    async with stream:
        text = [chunk.text async for chunk in stream]
    assert len([t for t in text if t]) == N
    assert stream.observation.outcome == "ok"
    stats = await r.astats()
    assert stats.deployment("slow/slow-m").samples == 1


def test_stats_are_the_engines_live_estimates(r) -> None:
    for _ in range(3):
        r.chat(model="m", messages=MESSAGES)
    stats = r.stats()
    fast = stats.deployment("fast/fast-m")
    assert fast.samples == 3 and fast.provider == "fast" and fast.circuit == "closed"
    assert fast.ttft_p50_s is not None and fast.price_output == 2.0
    assert stats.models["m"].policy == "order"
    assert stats.deployment("slow/slow-m").samples == 0
    assert r.models() == ["m", "failing", "picky", "broken", "trickle", "slowstart"]


def test_request_errors(r) -> None:
    with pytest.raises(ModelNotFound) as err:
        r.chat(model="nope", messages=MESSAGES)
    assert (err.value.status, err.value.param, err.value.code) == (404, "model", "model_not_found")
    with pytest.raises(InvalidRequest) as bad:
        r.chat(model="m", messages=MESSAGES, provider={"sortt": "price"})
    assert bad.value.param == "provider.sortt" and bad.value.status == 400
    with pytest.raises(InvalidRequest):
        r.chat(model="m", messages=[])


def test_a_stream_broken_after_the_first_token_raises_stream_broken(r) -> None:
    stream = r.chat(model="broken", messages=MESSAGES, stream=True)
    got = []
    with pytest.raises(StreamBroken) as err:
        for chunk in stream:
            got.append(chunk.text)
    assert err.value.code == "upstream_stream_broken" and stream.closed
    assert len([t for t in got if t]) == 3
    assert stream.observation.outcome == "bad_response"


def test_closing_a_stream_early_releases_the_upstream(r, sim) -> None:
    before = sim[0].counters("trickle").disconnected
    with r.chat(model="trickle", messages=MESSAGES, stream=True) as stream:
        assert next(stream) is not None
    _disconnects(sim[0], "trickle", before + 1)
    assert stream.observation.outcome == "cancelled"


async def test_closing_an_async_stream_early_releases_the_upstream(r, sim) -> None:
    before = sim[0].counters("trickle").disconnected
    stream = await r.achat(model="trickle", messages=MESSAGES, stream=True)
    await anext(stream)
    await stream.aclose()
    await sim[0].await_counters("trickle", lambda c: c.disconnected > before, timeout=10)
    assert stream.observation.outcome == "cancelled"


def test_a_dropped_stream_is_released_too(r, sim) -> None:
    before = sim[0].counters("trickle").disconnected
    stream = r.chat(model="trickle", messages=MESSAGES, stream=True)
    next(stream)
    del stream
    gc.collect()
    _disconnects(sim[0], "trickle", before + 1)


async def test_cancelling_achat_cancels_the_upstream(r, sim) -> None:
    before = sim[0].counters("slowstart")
    task = asyncio.create_task(r.achat(model="slowstart", messages=MESSAGES))
    await sim[0].await_counters("slowstart", lambda c: c.requests > before.requests)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await sim[0].await_counters("slowstart", lambda c: c.disconnected > before.disconnected,
                                timeout=10)


def test_close_cancels_open_streams_and_later_calls_fail(sim) -> None:
    before = sim[0].counters("trickle").disconnected
    r = router(sim[1])
    stream = r.chat(model="trickle", messages=MESSAGES, stream=True)
    next(stream)
    r.close()
    _disconnects(sim[0], "trickle", before + 1)
    with pytest.raises(RuntimeError, match="closed"):
        list(stream)
    with pytest.raises(RuntimeError, match="closed"):
        r.chat(model="m", messages=MESSAGES)
    r.close()  # idempotent
    assert r.closed


async def test_a_dropped_async_stream_is_released_too(r, sim) -> None:
    before = sim[0].counters("trickle").disconnected
    stream = await r.achat(model="trickle", messages=MESSAGES, stream=True)
    await anext(stream)
    del stream
    gc.collect()
    await sim[0].await_counters("trickle", lambda c: c.disconnected > before, timeout=10)


def _router_threads() -> int:
    return sum(t.name == "tokenlane-router" for t in threading.enumerate())


def test_a_dropped_router_stops_its_thread_but_not_under_its_streams(sim) -> None:
    threads = _router_threads()
    r = router(sim[1])
    assert r.chat(model="m", messages=MESSAGES).text
    assert _router_threads() == threads + 1
    stream = r.chat(model="m", messages=MESSAGES, stream=True)
    del r
    gc.collect()
    assert len([c for c in stream if c.text]) == N  # the stream kept its router alive
    del stream
    gc.collect()
    assert _router_threads() == threads


async def test_async_context_manager(sim) -> None:
    async with router(sim[1]) as r:
        assert (await r.achat(model="m", messages=MESSAGES)).text
    assert r.closed


def test_a_router_never_used_closes_without_a_thread(sim) -> None:
    # Counted by name: other tests' loops may still be retiring executor threads.
    threads = _router_threads()
    with router(sim[1]) as r:
        assert r.models()
        assert _router_threads() == threads
    assert _router_threads() == threads


def test_one_router_from_many_threads_and_loops(r) -> None:
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: r.chat(model="m", messages=MESSAGES), range(32)))
    assert all(reply.text for reply in replies)

    async def burst() -> list[ChatCompletion]:
        return await asyncio.gather(*(r.achat(model="m", messages=MESSAGES) for _ in range(8)))

    for _ in range(2):  # two event loops, one after the other, one engine
        assert len(asyncio.run(burst())) == 8
    assert r.stats().deployment("fast/fast-m").samples == 48


def test_on_observation_sees_every_attempt(sim) -> None:
    seen: list[Observation] = []
    with Router(router_config(sim[1]), env=ENV, on_observation=seen.append) as r:
        r.chat(model="m", messages=MESSAGES)
        with pytest.raises(NoDeploymentAvailable):
            r.chat(model="failing", messages=MESSAGES)
    assert [o.outcome for o in seen] == ["ok", "5xx", "5xx"]


def test_config_from_a_yaml_file_with_keys_from_env(sim, tmp_path: Path) -> None:
    path = tmp_path / "tokenlane.yaml"
    path.write_text(yaml.safe_dump(router_config(sim[1], {"m": ["fast"]})))
    with Router(path, env=ENV) as r:
        assert r.chat(model="m", messages=MESSAGES).deployment == "fast/fast-m"
    with pytest.raises(ConfigError, match="SIM_KEY"):
        Router(str(path), env={})
    path.write_text("models:\n  m:\n    speed: 3\n")
    with pytest.raises(ConfigError, match=r"tokenlane.yaml:\d+: models.m"):
        Router(path, env=ENV)


def test_a_local_server_on_the_gateways_default_port_is_fine_in_process() -> None:
    """vLLM's default (127.0.0.1:8000) is also the gateway's: refused by `tokenlane serve`
    (a request loop), but the in-process Router listens nowhere."""
    config = {"providers": {"local": {"preset": "vllm"}},
              "models": {"m": {"deployments": [{"provider": "local", "model": "x",
                                                "price": {"input": 0, "output": 0}}]}}}
    with Router(config) as local:
        assert [d.deployment for d in local.stats().models["m"].deployments] == ["local/x"]
