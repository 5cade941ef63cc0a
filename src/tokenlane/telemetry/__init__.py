"""OpenTelemetry tracing, optional: the `tokenlane[otel]` extra and `telemetry.otel: true`.

Off (the default), `build_telemetry` returns None and imports nothing from OpenTelemetry's
SDK: the app is assembled without a tracer anywhere, and the engine's tracing seam stays
empty. On, it builds the app's own tracer provider (telemetry/setup.py) and hands out the
three pieces the app plugs in: the engine's attempt tracer, the gate wrapper and the ASGI
middleware that opens each request's server span.

Trace context is W3C `traceparent`/`tracestate`, continued from the client and sent on each
upstream attempt. Baggage is not forwarded: upstreams are third parties, and what a client
put in its baggage is not theirs to read.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping
from typing import Any

from ..config import ConfigError, TelemetrySettings
from ..routing.attempt_trace import AttemptTracer

__all__ = ["Telemetry", "build_telemetry", "check_installed", "otlp_endpoint"]

_INSTRUMENTATION = "tokenlane"


class Telemetry:
    """The app's tracing: built by `build_telemetry`, plugged in by `create_app`."""

    def __init__(self, tracer_provider: Any, *, owned: bool) -> None:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        from .attempt_spans import AttemptSpans

        self.tracer_provider = tracer_provider
        self._owned = owned  # built here (so shut down here), or the caller's
        self._tracer = tracer_provider.get_tracer(_INSTRUMENTATION, _version())
        self._propagator = TraceContextTextMapPropagator()
        self.attempts: AttemptTracer = AttemptSpans(self._tracer, self._propagator)

    def traced_gate(self, gate: Any) -> Any:
        """`gate` with the request span's GenAI attributes written at admit and settle."""
        from .server_spans import TracedGate

        return TracedGate(gate)

    def server_spans(self, app: Any, paths: Iterable[str]) -> Any:
        """`app` with a server span around each request to one of `paths`."""
        from .server_spans import ServerSpans

        return ServerSpans(app, self._tracer, self._propagator, paths)

    def shutdown(self) -> None:
        """Export what is still batched and stop (a provider passed in is its owner's)."""
        if self._owned:
            self.tracer_provider.shutdown()


def build_telemetry(settings: TelemetrySettings, *, tracer_provider: Any = None,
                    source: str = "<config>") -> Telemetry | None:
    """None when tracing is off. `tracer_provider` (an SDK TracerProvider) replaces the one
    `settings` would build: tests pass one with an in-memory exporter."""
    if not settings.otel:
        return None
    if tracer_provider is not None:
        return Telemetry(tracer_provider, owned=False)
    check_installed(settings, source=source)
    from .setup import build_tracer_provider

    return Telemetry(build_tracer_provider(settings), owned=True)


def check_installed(settings: TelemetrySettings, *, source: str = "<config>") -> None:
    """Raise ConfigError when `settings` turn tracing on without the packages it needs."""
    if not settings.otel:
        return
    needed = ["opentelemetry.sdk"] + (
        ["opentelemetry.exporter.otlp.proto.http"] if settings.exporter == "otlp" else [])
    missing = [m for m in needed if not _installed(m)]
    if missing:
        raise ConfigError(f"{source}: telemetry.otel: true needs {', '.join(missing)}, "
                          "which is not installed: pip install 'tokenlane[otel]'")


def otlp_endpoint(settings: TelemetrySettings, env: Mapping[str, str]) -> str:
    """The traces URL the OTLP exporter posts to, resolved as the SDK resolves it."""
    if settings.endpoint:
        return settings.endpoint
    if traces := env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return traces
    return env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318").rstrip("/") + (
        "/v1/traces")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tokenlane")
    except PackageNotFoundError:
        return "0"
