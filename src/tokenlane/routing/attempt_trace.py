"""The engine's tracing seam: told when each upstream attempt starts, gets its first token
and ends (`tokenlane.telemetry` implements it with OpenTelemetry).

An engine without one (the default) pays an `is None` test at those three moments of an
attempt and nothing per chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..request import ChatRequest
    from ..stats.observation import Observation
    from .decision import Decision
    from .stream import AttemptMeter

__all__ = ["AttemptTracer", "Headers"]

Headers = Sequence[tuple[str, str]]


class AttemptTracer(Protocol):
    def started(self, meter: AttemptMeter, request: ChatRequest, decision: Decision, *,
                hedge: bool = False, operation: str = "chat") -> Headers:
        """An attempt is about to be sent; the headers its upstream request should carry
        (`traceparent`). `hedge`: a backup raced beside a slow first attempt."""
        ...

    def answered(self, meter: AttemptMeter, chunk: dict[str, Any]) -> None:
        """The attempt's first token arrived in `chunk` (its id and model are the answer's)."""
        ...

    def ended(self, meter: AttemptMeter, observation: Observation) -> None:
        """The attempt is over, however it ended (every started attempt ends once)."""
        ...
