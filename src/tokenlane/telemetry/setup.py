"""The tracer provider `telemetry:` asks for: resource, exporter, span processor.

Imported only when tracing is on (it needs the `tokenlane[otel]` extra). The provider is the
app's own, never installed as OpenTelemetry's global: two gateways in one process (tests, a
library user's app beside ours) trace apart.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)

from ..config import TelemetrySettings

__all__ = ["build_tracer_provider"]


def build_tracer_provider(settings: TelemetrySettings,
                          env: Mapping[str, str] | None = None) -> TracerProvider:
    """The SDK's provider (sampler from OTEL_TRACES_SAMPLER, resource attributes from
    OTEL_RESOURCE_ATTRIBUTES, as the SDK reads them) with `settings.exporter` attached."""
    env = os.environ if env is None else env
    name = settings.service_name or env.get("OTEL_SERVICE_NAME") or "tokenlane"
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}),
                              shutdown_on_exit=False)  # the app's lifespan shuts it down
    if settings.exporter == "otlp":
        # Imported here: only this exporter needs protobuf and an HTTP client.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # Batched off the request path, on the processor's own thread.
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
            endpoint=settings.endpoint)))
    elif settings.exporter == "console":
        # One span per line as it ends: for a person watching a terminal, not for load.
        # stdout as it is now (the SDK's default is whatever it was when the SDK was imported).
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(
            out=sys.stdout, formatter=lambda span: span.to_json(indent=None) + "\n")))
    return provider
