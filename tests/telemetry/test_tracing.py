"""OpenTelemetry tracing end to end: the real app on loopback with `telemetry.otel: true` and
the SDK's in-memory exporter, simulated providers speaking real SSE, the openai SDK as the
client. A server span per request, a client span per upstream attempt with the GenAI
attributes, the client's trace continued and the attempt's `traceparent` sent upstream."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from tokenlane.config import parse_settings
from tokenlane.server import create_app
from tokenlane.sim import SimProviderSpec, Simulator

from ..harness import MASTER_KEY, SIM_KEY, Stack, gateway_config, stack
from ..loopback import serve
from .support import Spans, attempts, children, servers

MESSAGES = [{"role": "user", "content": "Say hello"}]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACED = {"telemetry": {"otel": True, "exporter": "none"}}
ORDER = {"policy": "order"}  # the plan is config order: which deployment answers is known


@pytest.fixture
def spans() -> Iterator[Spans]:
    collected = Spans()
    yield collected
    collected.provider.shutdown()


@pytest.fixture
def gw(spans: Spans) -> Iterator[Stack]:
    specs = [SimProviderSpec(name="fast", ttft_s=0.01, tokens_per_s=2000, output_tokens=12),
             SimProviderSpec(name="slow", ttft_s=0.01, tokens_per_s=2000, output_tokens=7)]
    with stack(specs, {"m": ["fast", "slow"]}, tracer_provider=spans.provider, extra=TRACED,
               model_extra=ORDER) as s:
        yield s


def attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_a_request_span_and_its_attempt_span_with_genai_attributes(gw: Stack,
                                                                    spans: Spans) -> None:
    raw = gw.openai().chat.completions.with_raw_response.create(
        model="m", messages=MESSAGES, max_tokens=40, temperature=0.3, top_p=0.9)
    reply = raw.parse()
    found = spans.requests()
    (request,) = servers(found)
    (attempt,) = children(found, request)
    assert request.name == "chat m" and request.kind is SpanKind.SERVER
    r = attrs(request)
    assert r["gen_ai.operation.name"] == "chat" and r["gen_ai.request.model"] == "m"
    assert r["http.request.method"] == "POST" and r["http.response.status_code"] == 200
    assert r["tokenlane.deployment"] == raw.headers["x-tokenlane-deployment"] == "fast/fast-m"
    assert f"why={r['tokenlane.why']}" in raw.headers["x-tokenlane-route"]
    assert r["tokenlane.request_id"] == raw.headers["x-request-id"]
    # Usage lives on the attempt span alone: a backend summing GenAI usage counts it once.
    assert "gen_ai.usage.output_tokens" not in r

    assert attempt.name == "chat fast-m" and attempt.kind is SpanKind.CLIENT
    a = attrs(attempt)
    sim_host, sim_port = gw.sim_url.removeprefix("http://").split(":")
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "fast"  # a loopback address: the configured name
    assert a["gen_ai.request.model"] == "fast-m"
    assert a["gen_ai.response.model"] == "fast-m"  # what the upstream said it ran
    assert a["gen_ai.request.max_tokens"] == 40
    assert a["gen_ai.request.temperature"] == 0.3 and a["gen_ai.request.top_p"] == 0.9
    assert a["gen_ai.request.stream"] is False
    assert a["gen_ai.usage.input_tokens"] == reply.usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == reply.usage.completion_tokens == 12
    assert a["gen_ai.response.finish_reasons"] == (reply.choices[0].finish_reason,)
    assert a["gen_ai.response.id"] == reply.id
    assert (a["server.address"], a["server.port"]) == (sim_host, int(sim_port))
    assert a["tokenlane.deployment"] == "fast/fast-m" and a["tokenlane.model"] == "m"
    assert a["tokenlane.outcome"] == "ok"
    assert a["tokenlane.fallback"] is False and a["tokenlane.hedge"] is False
    stats = {d["deployment"]: d for d in
             gw.engine.stats_report()["models"]["m"]["deployments"]}["fast/fast-m"]
    assert a["tokenlane.ttft_s"] == pytest.approx(stats["ttft_p50_s"])
    assert a["tokenlane.decode_tps"] > 0
    assert a["tokenlane.cost_usd"] > 0
    assert attempt.status.status_code is StatusCode.UNSET
    assert attempt.context.trace_id == request.context.trace_id


def test_a_fallback_is_two_attempt_spans(gw: Stack, spans: Spans) -> None:
    gw.sim.update("fast", fault="http_503")
    reply = gw.openai().chat.completions.create(model="m", messages=MESSAGES)
    found = spans.requests()
    (request,) = servers(found)
    failed, answered = children(found, request)
    assert attrs(failed)["tokenlane.deployment"] == "fast/fast-m"
    assert attrs(failed)["tokenlane.outcome"] == "5xx"
    assert attrs(failed)["error.type"] == "503"
    assert attrs(failed)["http.response.status_code"] == 503
    assert failed.status.status_code is StatusCode.ERROR
    assert attrs(failed)["tokenlane.fallback"] is False
    assert attrs(answered)["tokenlane.deployment"] == "slow/slow-m"
    assert attrs(answered)["tokenlane.fallback"] is True
    assert attrs(answered)["tokenlane.outcome"] == "ok"
    assert attrs(answered)["gen_ai.usage.output_tokens"] == reply.usage.completion_tokens == 7
    assert answered.status.status_code is StatusCode.UNSET
    assert attrs(request)["tokenlane.deployment"] == "slow/slow-m"
    assert request.status.status_code is StatusCode.UNSET  # the client got its answer


def test_a_stream_is_traced_to_its_end(gw: Stack, spans: Spans) -> None:
    text = "".join(chunk.choices[0].delta.content or ""
                   for chunk in gw.openai().chat.completions.create(
                       model="m", messages=MESSAGES, stream=True,
                       stream_options={"include_usage": True})
                   if chunk.choices)
    found = spans.requests()
    (request,) = servers(found)
    (attempt,) = children(found, request)
    a = attrs(attempt)
    assert text and a["gen_ai.request.stream"] is True
    assert a["gen_ai.usage.output_tokens"] == 12
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.response.time_to_first_chunk"] > 0
    assert a["tokenlane.ttft_s"] > 0 and a["tokenlane.decode_tps"] > 0
    # The request span lasts as long as the stream does: its attempt is inside it.
    assert request.start_time <= attempt.start_time
    assert attempt.end_time <= request.end_time
    assert attrs(request)["tokenlane.outcome"] == "ok"


def test_the_clients_trace_is_continued_and_sent_upstream(gw: Stack, spans: Spans) -> None:
    gw.openai().chat.completions.create(
        model="m", messages=MESSAGES,
        extra_headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    found = spans.requests()
    (request,) = servers(found)
    (attempt,) = children(found, request)
    assert format(request.context.trace_id, "032x") == TRACE_ID
    assert request.parent is not None and request.parent.is_remote
    assert format(request.parent.span_id, "016x") == PARENT_ID
    # The upstream saw a traceparent naming the client's trace and the attempt's span.
    (sent,) = gw.sim.counters("fast").traceparents
    version, trace_id, parent_id, flags = sent.split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    assert parent_id == format(attempt.context.span_id, "016x")


def test_without_a_client_trace_a_new_one_starts_and_reaches_upstream(gw: Stack,
                                                                       spans: Spans) -> None:
    gw.openai().chat.completions.create(model="m", messages=MESSAGES)
    (request,) = servers(spans.requests())
    assert request.parent is None
    (sent,) = gw.sim.counters("fast").traceparents
    assert sent.split("-")[1] == format(request.context.trace_id, "032x")


def test_a_hedge_is_marked(spans: Spans) -> None:
    # The first choice never produces a token; a backup starts after hedge_delay_s and wins.
    specs = [SimProviderSpec(name="stuck", fault="stall_before_first_token", stall_s=3600),
             SimProviderSpec(name="backup", ttft_s=0.01, tokens_per_s=2000, output_tokens=5)]
    failover = {"hedge": True, "hedge_delay_s": 0.05, "ttft_timeout_s": 60}
    with stack(specs, {"m": ["stuck", "backup"]}, tracer_provider=spans.provider,
               extra=TRACED, model_extra={**ORDER, "failover": failover}) as gw:
        gw.openai().chat.completions.create(model="m", messages=MESSAGES)
        found = spans.requests()
    (request,) = servers(found)
    primary, hedge = children(found, request)
    assert attrs(primary)["tokenlane.deployment"] == "stuck/stuck-m"
    assert attrs(primary)["tokenlane.hedge"] is False
    assert attrs(primary)["tokenlane.outcome"] in ("cancelled", "timeout")
    assert attrs(hedge)["tokenlane.deployment"] == "backup/backup-m"
    assert attrs(hedge)["tokenlane.hedge"] is True and attrs(hedge)["tokenlane.outcome"] == "ok"


def test_an_error_answer_is_a_failed_request_span(gw: Stack, spans: Spans) -> None:
    gw.sim.update("fast", fault="http_503")
    gw.sim.update("slow", fault="http_503")
    with pytest.raises(openai.APIStatusError) as caught:
        gw.openai().chat.completions.create(model="m", messages=MESSAGES)
    found = spans.requests()
    (request,) = servers(found)
    assert len(children(found, request)) == 2
    r = attrs(request)
    assert r["http.response.status_code"] == caught.value.status_code >= 500
    assert request.status.status_code is StatusCode.ERROR
    assert r["error.type"] == caught.value.body["code"]  # type: ignore[index]


def test_only_model_calls_are_traced(gw: Stack, spans: Spans) -> None:
    client = gw.openai()
    client.models.list()
    client.chat.completions.create(model="m", messages=MESSAGES)
    found = spans.requests()
    assert [s.name for s in servers(found)] == ["chat m"]
    assert len(attempts(found)) == 1


def test_the_messages_surface_is_traced_as_chat(gw: Stack, spans: Spans) -> None:
    import anthropic

    client = anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0)
    reply = client.messages.create(model="m", max_tokens=30, messages=MESSAGES)
    found = spans.requests()
    (request,) = servers(found)
    (attempt,) = children(found, request)
    assert request.name == "chat m"
    assert attrs(request)["tokenlane.surface"] == "/v1/messages"
    assert attrs(attempt)["gen_ai.request.max_tokens"] == 30
    assert attrs(attempt)["gen_ai.usage.output_tokens"] == reply.usage.output_tokens


def test_tracing_off_sends_no_traceparent_and_builds_no_tracer() -> None:
    specs = [SimProviderSpec(name="fast", ttft_s=0.01, tokens_per_s=2000, output_tokens=3)]
    with stack(specs, {"m": ["fast"]}) as gw:
        gw.openai().chat.completions.create(
            model="m", messages=MESSAGES,
            extra_headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
        assert gw.sim.counters("fast").requests == 1
        assert gw.sim.counters("fast").traceparents == ()
        assert gw.app.state.telemetry is None and gw.engine.tracer is None


def test_embeddings_are_traced_with_their_operation(spans: Spans) -> None:
    sim = Simulator([SimProviderSpec(name="vec", api_key=SIM_KEY)])
    with ExitStack() as running:
        sim_url = running.enter_context(serve(sim.app))
        data = gateway_config(sim_url, {"e": ["vec"]}, extra=TRACED)
        data["models"]["e"]["deployments"][0]["endpoints"] = ["embeddings"]
        app = create_app(parse_settings(data), env={"TL_TEST_KEYS": MASTER_KEY,
                                                    "SIM_KEY": SIM_KEY},
                         tracer_provider=spans.provider)
        url = running.enter_context(serve(app))
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0)
        reply = client.embeddings.create(model="e", input=["one", "two"])
        found = spans.requests()
        (sent,) = sim.counters("vec").traceparents
    (request,) = servers(found)
    (attempt,) = children(found, request)
    assert request.name == "embeddings e" and attempt.name == "embeddings vec-e"
    assert attrs(attempt)["gen_ai.operation.name"] == "embeddings"
    assert attrs(attempt)["gen_ai.usage.input_tokens"] == reply.usage.prompt_tokens
    assert sent.split("-")[2] == format(attempt.context.span_id, "016x")
