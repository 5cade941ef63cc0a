"""A client span per upstream attempt, and the `traceparent` its request carries.

The engine calls `AttemptSpans` at three moments of an attempt (routing/attempt_trace.py):
sent, first token, ended. Nothing happens per chunk. The span's parent is whatever span is
current when the attempt starts: the request's server span (server_spans.py), inherited by
a hedge's task as asyncio copies the context into it.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from ..request import ChatRequest
from ..routing.attempt_trace import Headers
from ..routing.decision import Decision
from ..routing.stream import AttemptMeter
from ..stats.observation import Observation
from .genai import answer_attributes, attempt_attributes, ended_attributes, error_type

__all__ = ["AttemptSpans"]


class AttemptSpans:
    """Implements the engine's `AttemptTracer` with OpenTelemetry spans."""

    def __init__(self, tracer: Tracer, propagator: TextMapPropagator) -> None:
        self._tracer = tracer
        self._propagator = propagator
        # The open span of each attempt in flight, until the engine says it ended.
        self._spans: dict[AttemptMeter, Span] = {}

    def started(self, meter: AttemptMeter, request: ChatRequest, decision: Decision, *,
                hedge: bool = False, operation: str = "chat") -> Headers:
        if meter.probe:
            # The gateway's own re-measurement serves no client: no trace of its own.
            return ()
        deployment = meter.deployment
        span = self._tracer.start_span(
            f"{operation} {deployment.upstream_model}", kind=SpanKind.CLIENT,
            attributes=attempt_attributes(deployment, request, decision, hedge=hedge,
                                          operation=operation))
        self._spans[meter] = span
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=trace.set_span_in_context(span))
        return tuple(carrier.items())

    def answered(self, meter: AttemptMeter, chunk: dict[str, Any]) -> None:
        span = self._spans.get(meter)
        if span is not None:
            ttft = None if meter.first_at is None else meter.first_at - meter.sent_at
            span.set_attributes(answer_attributes(chunk, ttft))

    def ended(self, meter: AttemptMeter, observation: Observation) -> None:
        span = self._spans.pop(meter, None)
        if span is None:
            return
        span.set_attributes(ended_attributes(observation, meter.finish_reason))
        if (kind := error_type(observation)) is not None:
            span.set_status(Status(StatusCode.ERROR, f"{observation.outcome}: {kind}"))
        span.end()
