"""`POST /v1/embeddings` and `POST /v1/completions` through the gateway, driven by the official
openai SDK over loopback in front of simulated providers: answers pass through (model renamed),
the decision headers are on every answer, a failing first deployment is failed over, client
faults come back unchanged, and what was measured shows in /v1/router/stats. Bodies are
validated against the spec's CreateEmbeddingResponse / CreateCompletionResponse (skipped when
the spec is absent)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
import openai
import pytest

from tokenlane.config import parse_settings
from tokenlane.server import create_app
from tokenlane.sim import SimProviderSpec, Simulator
from tokenlane.sim.embeddings_wire import embedding_vector

from ..contract import validate, validate_error
from ..harness import MASTER_KEY, SIM_KEY, Stack, gateway_config
from ..loopback import serve

QUICK = {"ttft_s": 0.0, "tokens_per_s": 1000.0, "output_tokens": 12, "time_scale": 0.0}
NAMES = ("vec1", "vec2", "txt1", "txt2", "chatty")
# Which endpoints each model's deployments serve.
ENDPOINTS = {"embed": ["embeddings"], "base": ["chat", "completions"], "llama": ["chat"]}


@contextmanager
def passthrough_stack() -> Iterator[Stack]:
    specs = [SimProviderSpec(name=n, api_key=SIM_KEY, **QUICK) for n in NAMES]
    sim = Simulator(specs)
    with ExitStack() as stack_:
        sim_url = stack_.enter_context(serve(sim.app))
        data = gateway_config(sim_url, {"embed": ["vec1", "vec2"], "base": ["txt1", "txt2"],
                                        "llama": ["chatty"]}, model_extra={"policy": "order"})
        for model, endpoints in ENDPOINTS.items():
            for deployment in data["models"][model]["deployments"]:
                deployment["endpoints"] = endpoints
        settings = parse_settings(data)
        app = create_app(settings, env={"TL_TEST_KEYS": MASTER_KEY, "SIM_KEY": SIM_KEY},
                         rng=random.Random(7))
        yield Stack(sim, sim_url, stack_.enter_context(serve(app)), app, settings)


@pytest.fixture
def gw() -> Iterator[Stack]:
    with passthrough_stack() as s:
        yield s


def stats_of(gw: Stack, model: str) -> dict[str, dict[str, Any]]:
    report = httpx.get(f"{gw.url}/v1/router/stats",
                       headers={"authorization": f"Bearer {MASTER_KEY}"}).json()
    return {d["deployment"]: d for d in report["models"][model]["deployments"]}


# -- embeddings ------------------------------------------------------------------------------


def test_embeddings_pass_through_with_the_decision(gw) -> None:
    raw = gw.openai().embeddings.with_raw_response.create(
        model="embed", input=["first text", "second text"], encoding_format="float")
    body = json.loads(raw.text)
    validate("CreateEmbeddingResponse", body)
    assert body["model"] == "embed"
    assert [d["embedding"] for d in body["data"]] == [
        pytest.approx(embedding_vector("first text", 16)),
        pytest.approx(embedding_vector("second text", 16))]
    assert body["usage"]["prompt_tokens"] > 0
    assert raw.headers["x-tokenlane-deployment"] == "vec1/vec1-embed"
    assert raw.headers["x-tokenlane-route"].startswith("policy=order; chosen=vec1/vec1-embed")


def test_sdk_default_base64_and_dimensions(gw) -> None:
    result = gw.openai().embeddings.create(model="embed", input="hello", dimensions=5)
    vector = result.data[0].embedding
    assert vector == pytest.approx(embedding_vector("hello", 5), abs=1e-6)
    assert result.model == "embed" and result.usage.prompt_tokens > 0


def test_a_failing_first_deployment_is_failed_over_and_measured(gw) -> None:
    gw.sim.update("vec1", fault="http_503")
    raw = gw.openai().embeddings.with_raw_response.create(
        model="embed", input="fail me over", encoding_format="float")
    assert raw.headers["x-tokenlane-deployment"] == "vec2/vec2-embed"
    assert raw.parse().data[0].embedding == pytest.approx(embedding_vector("fail me over", 16))
    assert gw.sim.counters("vec1").errors == 1
    stats = stats_of(gw, "embed")
    assert stats["vec1/vec1-embed"]["error_rate"] == pytest.approx(1.0)
    # An embedding arrives whole: its latency is what the TTFT estimate holds.
    assert stats["vec2/vec2-embed"]["ttft_p50_s"] is not None
    assert stats["vec2/vec2-embed"]["samples"] == 1


def test_latency_orders_embedding_deployments(gw) -> None:
    gw.sim.update("vec1", ttft_s=0.3, time_scale=1.0)
    client = gw.openai()
    for _ in range(3):
        client.embeddings.create(model="embed", input="warm up",
                                 extra_body={"provider": {"order": ["vec2", "vec1"]}})
    client.embeddings.create(model="embed", input="warm up")  # vec1 by the model's order
    stats = stats_of(gw, "embed")
    assert stats["vec1/vec1-embed"]["ttft_p50_s"] > 0.25 > stats["vec2/vec2-embed"]["ttft_p50_s"]
    raw = client.embeddings.with_raw_response.create(
        model="embed", input="which is quicker", extra_body={"provider": {"sort": "latency"}})
    assert raw.headers["x-tokenlane-deployment"] == "vec2/vec2-embed"
    assert "policy=latency; chosen=vec2/vec2-embed" in raw.headers["x-tokenlane-route"]


def test_a_client_fault_comes_back_unchanged_and_untried_elsewhere(gw) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gw.openai().embeddings.create(model="embed", input="x", dimensions=0)
    body = caught.value.response.json()
    validate_error(body)
    assert body["error"]["param"] == "dimensions"
    assert caught.value.response.headers["x-tokenlane-deployment"] == "vec1/vec1-embed"
    assert gw.sim.counters("vec2").requests == 0


@pytest.mark.parametrize("body,param", [
    ({"model": "embed"}, "input"),
    ({"model": "embed", "input": [1.5]}, "input"),
    ({"input": "x"}, "model"),
])
def test_bad_embedding_requests_are_a_400(gw, body, param) -> None:
    response = httpx.post(f"{gw.url}/v1/embeddings", json=body,
                          headers={"authorization": f"Bearer {MASTER_KEY}"})
    assert response.status_code == 400
    validate_error(response.json())
    assert response.json()["error"]["param"] == param
    assert sum(gw.sim.counters(n).requests for n in NAMES) == 0


def test_models_serve_only_their_endpoints(gw) -> None:
    client = gw.openai()
    with pytest.raises(openai.NotFoundError, match="does not serve /v1/embeddings"):
        client.embeddings.create(model="llama", input="x")
    with pytest.raises(openai.NotFoundError, match="not a chat model"):
        client.chat.completions.create(model="embed", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.embeddings.create(model="nope", input="x")
    cards = {m.id: m.model_dump()["surfaces"] for m in client.models.list()}
    assert cards == {"embed": ["embeddings"],
                     "base": ["chat.completions", "responses", "messages", "completions"],
                     "llama": ["chat.completions", "responses", "messages"]}


def test_auth_and_content_type_are_checked(gw) -> None:
    response = httpx.post(f"{gw.url}/v1/embeddings", json={"model": "embed", "input": "x"})
    assert response.status_code == 401
    response = httpx.post(f"{gw.url}/v1/completions", content=b'{"model": "base"}',
                          headers={"authorization": f"Bearer {MASTER_KEY}",
                                   "content-type": "text/plain"})
    assert response.status_code == 415
    validate_error(response.json())


# -- legacy completions ----------------------------------------------------------------------


def test_completion_passes_through_and_matches_its_stream(gw) -> None:
    client = gw.openai()
    raw = client.completions.with_raw_response.create(model="base", prompt="Once upon",
                                                      max_tokens=40)
    body = json.loads(raw.text)
    validate("CreateCompletionResponse", body)
    assert body["model"] == "base" and body["object"] == "text_completion"
    assert body["usage"]["completion_tokens"] == 12 and body["choices"][0]["finish_reason"]
    assert raw.headers["x-tokenlane-deployment"] == "txt1/txt1-base"
    assert raw.headers["x-tokenlane-route"].startswith("policy=order; chosen=txt1/txt1-base")
    stream = client.completions.create(model="base", prompt="Once upon", max_tokens=40,
                                       stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == body["choices"][0]["text"]
    assert all(c.model == "base" for c in chunks)
    assert all(c.usage is None for c in chunks)  # not asked for: none, as from OpenAI


def test_completion_stream_events_match_the_spec(gw) -> None:
    with gw.openai().completions.with_streaming_response.create(
            model="base", prompt="Hi", stream=True,
            stream_options={"include_usage": True}) as raw:
        assert raw.headers["x-tokenlane-deployment"] == "txt1/txt1-base"
        assert raw.headers["x-tokenlane-route"]
        lines = [line for line in raw.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    # The spec describes stream chunks by the non-stream schema, though OpenAI itself sends
    # `finish_reason: null` (and `usage: null`, usage asked for) before the last ones: those
    # are checked for their text, the closing and the usage chunk against the schema.
    *texts, closing, usage = chunks
    assert all(isinstance(c["choices"][0]["text"], str) and c["choices"][0]["finish_reason"]
               is None for c in texts)
    validate("CreateCompletionResponse", {k: v for k, v in closing.items() if k != "usage"})
    assert closing["choices"][0]["finish_reason"] == "stop"
    validate("CreateCompletionResponse", usage)
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 12


def test_completion_failover_and_measurement(gw) -> None:
    gw.sim.update("txt1", fault="reset_before_headers")
    raw = gw.openai().completions.with_raw_response.create(model="base", prompt="Hi")
    assert raw.headers["x-tokenlane-deployment"] == "txt2/txt2-base"
    assert raw.parse().usage.completion_tokens == 12
    stats = stats_of(gw, "base")
    assert stats["txt1/txt1-base"]["error_rate"] == pytest.approx(1.0)
    measured = stats["txt2/txt2-base"]
    assert measured["ttft_p50_s"] is not None and measured["decode_tps_p50"] is not None


def test_a_break_after_the_first_text_ends_the_stream_with_an_error(gw) -> None:
    gw.sim.update("txt1", fault="reset_after_first_chunk", fault_after_tokens=2)
    stream = gw.openai().completions.create(model="base", prompt="Hi", stream=True)
    texts = []
    with pytest.raises(openai.APIError, match="upstream stream broke"):
        for chunk in stream:
            texts.append(chunk.choices[0].text)
    assert texts and gw.sim.counters("txt2").requests == 0
    assert stats_of(gw, "base")["txt1/txt1-base"]["error_rate"] == pytest.approx(1.0)


def test_a_break_mid_answer_of_a_non_streamed_completion_moves_on(gw) -> None:
    gw.sim.update("txt1", fault="truncate", fault_after_tokens=3)
    raw = gw.openai().completions.with_raw_response.create(model="base", prompt="Hi")
    assert raw.headers["x-tokenlane-deployment"] == "txt2/txt2-base"
    assert raw.parse().usage.completion_tokens == 12


async def test_async_client_embeddings(gw) -> None:
    async with gw.async_openai() as client:
        result = await client.embeddings.create(model="embed", input="async",
                                                encoding_format="float")
    assert result.data[0].embedding == pytest.approx(embedding_vector("async", 16))
