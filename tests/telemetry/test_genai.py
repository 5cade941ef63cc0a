"""The span attributes as pure functions: what the request gave, type-checked."""

from __future__ import annotations

from tokenlane.request import chat_request_from_body
from tokenlane.stats.observation import Observation
from tokenlane.telemetry.genai import (
    answer_attributes,
    ended_attributes,
    error_type,
    operation_of,
    provider_name,
    request_attributes,
)
from tokenlane.types import Provider

MESSAGES = [{"role": "user", "content": "hi"}]


def provider(base_url: str, name: str = "mine") -> Provider:
    return Provider(name=name, base_url=base_url, api_key=None)


def test_request_parameters_that_are_given_and_well_typed() -> None:
    request = chat_request_from_body({
        "model": "m", "messages": MESSAGES, "max_completion_tokens": 99, "temperature": 0,
        "top_p": 1, "seed": 7, "n": 2, "stop": "END", "presence_penalty": 0.5})
    got = request_attributes(request, "chat")
    assert got == {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                   "gen_ai.request.stream": False, "gen_ai.request.max_tokens": 99,
                   "gen_ai.request.temperature": 0.0, "gen_ai.request.top_p": 1.0,
                   "gen_ai.request.presence_penalty": 0.5, "gen_ai.request.seed": 7,
                   "gen_ai.request.choice.count": 2, "gen_ai.request.stop_sequences": ["END"]}


def test_ill_typed_values_are_left_out() -> None:
    request = chat_request_from_body({
        "model": "m", "messages": MESSAGES, "temperature": "hot", "top_p": True,
        "seed": 1.5, "n": 1, "stop": ["a", 3]})
    assert set(request_attributes(request, "chat")) == {
        "gen_ai.operation.name", "gen_ai.request.model", "gen_ai.request.stream"}


def test_provider_names_follow_the_conventions_where_known() -> None:
    assert provider_name(provider("https://api.openai.com/v1")) == "openai"
    assert provider_name(provider("https://api.groq.com/openai/v1")) == "groq"
    assert provider_name(provider("https://api.anthropic.com/v1")) == "anthropic"
    assert provider_name(provider("https://api.cerebras.ai/v1")) == "cerebras"
    # Local servers share addresses: their configured name says more.
    assert provider_name(provider("http://127.0.0.1:8000/v1", "gpu-box")) == "gpu-box"


def test_operations_by_surface() -> None:
    assert operation_of("/v1/chat/completions") == operation_of("/v1/messages") == "chat"
    assert operation_of("/v1/embeddings") == "embeddings"
    assert operation_of("/v1/completions") == "text_completion"


def test_an_answer_and_an_ending() -> None:
    assert answer_attributes({"id": "chatcmpl-1", "model": "up-m"}, 0.25) == {
        "gen_ai.response.id": "chatcmpl-1", "gen_ai.response.model": "up-m",
        "gen_ai.response.time_to_first_chunk": 0.25}
    assert answer_attributes({"id": 5}, None) == {}
    ok = Observation("p/m", 1.0, "ok", 10, 20, 0.1, 50.0, 0.5, 0.001, 200)
    got = ended_attributes(ok, "length")
    assert got["gen_ai.response.finish_reasons"] == ["length"]
    assert got["gen_ai.usage.input_tokens"] == 10 and got["gen_ai.usage.output_tokens"] == 20
    assert "error.type" not in got


def test_error_types() -> None:
    assert error_type(Observation("p/m", 1.0, "429", status=429)) == "429"
    assert error_type(Observation("p/m", 1.0, "timeout")) == "timeout"
    assert error_type(Observation("p/m", 1.0, "stall", status=200)) == "stall"
    assert error_type(Observation("p/m", 1.0, "cancelled")) is None


def test_the_otlp_endpoint_as_the_sdk_resolves_it() -> None:
    from tokenlane.config import TelemetrySettings
    from tokenlane.telemetry import otlp_endpoint

    on = TelemetrySettings(otel=True)
    assert otlp_endpoint(on, {}) == "http://localhost:4318/v1/traces"
    assert otlp_endpoint(on, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}) == (
        "http://c:4318/v1/traces")
    assert otlp_endpoint(on, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                              "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t/x"}) == "http://t/x"
    given = TelemetrySettings(otel=True, endpoint="http://cfg:1/v1/traces")
    assert otlp_endpoint(given, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t/x"}) == (
        "http://cfg:1/v1/traces")
