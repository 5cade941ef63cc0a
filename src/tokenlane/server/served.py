"""Every client request as the client saw it, once it ends: for client-facing metrics and the
dashboard's list of routing decisions.

The handlers already bracket each request with the admission gate (`await gate.admit(...)`,
then `ticket.settle(served, error)` however it ended; tokenlane.keys.admission), so
`RequestTap` wraps that gate rather than adding a second hook to every surface: the same
handlers, the same moments, one record per request handed to each listener.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from ..clock import Clock
from ..errors import TokenlaneError
from ..keys.admission import Gate, OpenGate, Served
from ..keys.records import VirtualKey
from ..request import ChatRequest
from ..routing.decision import Decision
from ..routing.stream import ChatStream

__all__ = ["DecisionLog", "RequestTap", "ServedRequest"]

# nginx's "client closed request": the client left before the answer was complete.
CLIENT_CLOSED = 499
UNKNOWN_MODEL = "unknown"


@dataclass(frozen=True, slots=True)
class ServedRequest:
    at: float  # engine-clock time the request ended
    surface: str
    model: str  # a configured model name, or UNKNOWN_MODEL (labels stay bounded)
    key: str | None  # the virtual key's id; None for a master key or auth off
    status: int
    duration_s: float  # received -> last byte out (or the error)
    ttft_s: float | None  # received -> first token in hand; streamed answers only
    input_tokens: int
    output_tokens: int
    cost: float  # the answering attempt's, at configured prices
    decision: Decision | None


Listener = Callable[[ServedRequest], None]


class RequestTap:
    """A gate that admits as `gate` does and tells `listeners` how each request ended."""

    def __init__(self, gate: Gate | OpenGate, clock: Clock, models: Collection[str],
                 listeners: Iterable[Listener]) -> None:
        self._gate = gate
        self._clock = clock
        self._models = frozenset(models)
        self._listeners = tuple(listeners)

    async def admit(self, key: VirtualKey | None, chat: ChatRequest, request_id: str,
                    surface: str) -> _TappedTicket:
        try:
            ticket = await self._gate.admit(key, chat, request_id, surface)
        except TokenlaneError as exc:  # refused by the key's limits: the client saw it too
            self._emit(key, chat, surface, None, exc)
            raise
        return _TappedTicket(self, ticket, key, chat, surface)

    def _emit(self, key: VirtualKey | None, chat: ChatRequest, surface: str, served: Served,
              error: BaseException | None) -> None:
        now = self._clock.now()
        start = chat.received_at if chat.received_at is not None else now
        # Any surface's result: chat streams and completions, and whatever else carries an
        # observation and a decision (other surfaces' results may carry neither).
        observation = getattr(served, "observation", None)
        ttft = None
        if isinstance(served, ChatStream) and served.meter.first_at is not None:
            ttft = max(0.0, served.meter.first_at - start)
        record = ServedRequest(
            at=now, surface=surface,
            model=chat.model if chat.model in self._models else UNKNOWN_MODEL,
            key=key.id if key is not None else None, status=_status(served, error),
            duration_s=max(0.0, now - start), ttft_s=ttft,
            input_tokens=observation.prompt_tokens if observation else 0,
            output_tokens=observation.output_tokens if observation else 0,
            cost=observation.cost if observation else 0.0,
            decision=getattr(served, "decision", None))
        for listener in self._listeners:
            listener(record)


class _TappedTicket:
    __slots__ = ("_chat", "_key", "_surface", "_tap", "_ticket")

    def __init__(self, tap: RequestTap, ticket: Any, key: VirtualKey | None, chat: ChatRequest,
                 surface: str) -> None:
        self._tap = tap
        self._ticket = ticket
        self._key = key
        self._chat = chat
        self._surface = surface

    @property
    def headers(self) -> tuple[tuple[bytes, bytes], ...]:
        return self._ticket.headers  # type: ignore[no-any-return]

    def settle(self, served: Served, error: BaseException | None = None) -> None:
        self._ticket.settle(served, error)
        self._tap._emit(self._key, self._chat, self._surface, served, error)


def _status(served: Served, error: BaseException | None) -> int:
    if error is None:
        return 200
    if isinstance(error, TokenlaneError):
        return error.status
    if isinstance(error, asyncio.CancelledError):
        # The client went away (ClientGone); a stream already under way was still a 200 on
        # the wire, but what the client got was cut short.
        return CLIENT_CLOSED
    return 500


class DecisionLog:
    """The last `size` routing decisions that answered a request, newest last."""

    def __init__(self, size: int = 50) -> None:
        self._entries: deque[tuple[ServedRequest, Decision]] = deque(maxlen=size)

    def add(self, record: ServedRequest) -> None:
        if record.decision is not None:
            self._entries.append((record, record.decision))

    def view(self, now: float) -> list[dict[str, Any]]:
        """Newest first, each with how long ago it ended and the decision's own record."""
        return [{"age_s": max(0.0, now - r.at), "model": r.model, "surface": r.surface,
                 "status": r.status, "duration_s": r.duration_s, "ttft_s": r.ttft_s,
                 **decision.to_dict()}
                for r, decision in reversed(self._entries)]
