"""Spans the gateway ended, collected in memory through the real SDK, and waited for on a
condition (spans end on the server's thread, just after the client got its last byte)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind


class Spans(InMemorySpanExporter):
    def __init__(self) -> None:
        super().__init__()
        self._changed = threading.Condition()
        self.provider = TracerProvider(shutdown_on_exit=False)
        self.provider.add_span_processor(SimpleSpanProcessor(self))

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._changed:
            result = super().export(spans)
            self._changed.notify_all()
        return result

    def wait(self, until: Callable[[list[ReadableSpan]], bool], timeout: float = 30.0
             ) -> list[ReadableSpan]:
        """The finished spans once `until(spans)` holds; TimeoutError after `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not until(spans := list(self.get_finished_spans())):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"spans never matched; have {[s.name for s in spans]}")
                self._changed.wait(remaining)
            return spans

    def requests(self, count: int = 1) -> list[ReadableSpan]:
        """Every span, once `count` request (server) spans have ended."""
        return self.wait(lambda spans: len(servers(spans)) >= count)


def servers(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.kind is SpanKind.SERVER]


def attempts(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    """Client spans, in the order they started."""
    return sorted((s for s in spans if s.kind is SpanKind.CLIENT), key=lambda s: s.start_time)


def children(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in attempts(spans) if s.parent is not None
            and s.parent.span_id == parent.context.span_id]
