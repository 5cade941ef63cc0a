"""What `telemetry.exporter` sends: OTLP over HTTP to a collector (here one on loopback that
decodes the protobuf), flushed when the gateway shuts down; `tokenlane check` names the
missing extra as `serve` would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tokenlane.config import TelemetrySettings
from tokenlane.sim import SimProviderSpec
from tokenlane.telemetry.setup import build_tracer_provider

from ..harness import stack
from ..loopback import http_app, serve

MESSAGES = [{"role": "user", "content": "hi"}]


class Collector:
    """An OTLP/HTTP traces endpoint that keeps what it was sent."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []

    async def handle(self, scope: dict[str, Any], body: bytes, send: Any) -> None:
        if scope["path"] == "/v1/traces":
            self.requests.append(ExportTraceServiceRequest.FromString(body))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/x-protobuf")]})
        await send({"type": "http.response.body", "body": b""})

    def spans(self) -> list[tuple[str, Any]]:
        """(service.name, span) of every span received."""
        out = []
        for request in self.requests:
            for resource in request.resource_spans:
                service = {a.key: a.value.string_value
                           for a in resource.resource.attributes}.get("service.name")
                out += [(service, span) for scoped in resource.scope_spans
                        for span in scoped.spans]
        return out


@pytest.fixture
def collector() -> Iterator[tuple[Collector, str]]:
    received = Collector()
    with serve(http_app(received.handle)) as url:
        yield received, url


def test_otlp_export_reaches_the_collector_by_shutdown(collector) -> None:
    received, url = collector
    telemetry = {"otel": True, "exporter": "otlp", "endpoint": f"{url}/v1/traces",
                 "service_name": "tl-export-test"}
    specs = [SimProviderSpec(name="fast", ttft_s=0.01, tokens_per_s=2000, output_tokens=4)]
    with stack(specs, {"m": ["fast"]}, extra={"telemetry": telemetry}) as gw:
        gw.openai().chat.completions.create(model="m", messages=MESSAGES)
    # Leaving the stack ran the gateway's shutdown, which flushed the batch.
    spans = received.spans()
    assert {service for service, _ in spans} == {"tl-export-test"}
    by_name = {span.name: span for _, span in spans}
    assert set(by_name) == {"chat m", "chat fast-m"}
    assert by_name["chat fast-m"].parent_span_id == by_name["chat m"].span_id
    assert by_name["chat fast-m"].trace_id == by_name["chat m"].trace_id


def test_console_prints_a_json_line_per_span(capsys: pytest.CaptureFixture[str]) -> None:
    specs = [SimProviderSpec(name="fast", ttft_s=0.01, tokens_per_s=2000, output_tokens=4)]
    telemetry = {"otel": True, "exporter": "console"}
    with stack(specs, {"m": ["fast"]}, extra={"telemetry": telemetry}) as gw:
        gw.openai().chat.completions.create(model="m", messages=MESSAGES)
    # Simple (unbatched) processing: each span was written as it ended, before shutdown.
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()
             if line.startswith("{")]
    assert {line["name"] for line in lines} == {"chat m", "chat fast-m"}
    assert {line["resource"]["attributes"]["service.name"] for line in lines} == {"tokenlane"}


def test_the_service_name_comes_from_config_then_the_environment() -> None:
    def service(settings: TelemetrySettings, env: dict[str, str]) -> str:
        provider = build_tracer_provider(settings, env)
        try:
            return str(provider.resource.attributes["service.name"])
        finally:
            provider.shutdown()

    on = TelemetrySettings(otel=True, exporter="none")
    assert service(on, {}) == "tokenlane"
    assert service(on, {"OTEL_SERVICE_NAME": "edge-gw"}) == "edge-gw"
    named = TelemetrySettings(otel=True, exporter="none", service_name="from-config")
    assert service(named, {"OTEL_SERVICE_NAME": "edge-gw"}) == "from-config"
