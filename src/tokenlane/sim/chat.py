"""`POST /{provider}/v1/chat/completions`: the simulator's hot path, as a bare ASGI handler.

Benchmarks drive this route at zero delay and high concurrency next to the gateway they
measure, so it skips the framework: no Request object, and no middleware wrapping each of
the dozens of `send` calls a stream makes. Everything it decides comes from `plan_reply`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from ..clock import Clock
from . import wire
from .counters import CounterBoard
from .dialects import OPENAI, SimDialect, authorization, authorized
from .plan import (
    BAD_JSON,
    Broken,
    Completion,
    Failure,
    Reply,
    plan_reply,
    rate_limited,
    unknown_provider,
)
from .provider import ProviderState
from .responses import (
    DelayedJSONResponse,
    EventStreamResponse,
    Outcome,
    ResetResponse,
    read_body,
    send_json,
)
from .spec import SimProviderSpec

__all__ = ["ChatCompletions", "authorization", "authorized", "send_failure"]


class ChatCompletions:
    """Serves one chat-completions request for the provider named in the path, in `dialect`
    (OpenAI's by default; see `dialects`)."""

    def __init__(
        self, providers: Mapping[str, ProviderState], board: CounterBoard, clock: Clock,
        dialect: SimDialect = OPENAI,
    ) -> None:
        self._providers = providers
        self._board = board
        self._clock = clock
        self._dialect = dialect

    async def __call__(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        state = self._providers.get(name)
        dialect = self._dialect
        if state is None:
            await send_failure(send, unknown_provider(name, self._providers), dialect)
            return
        # Read once: a concurrent update applies from the next request.
        spec, counter = state.current
        self._board.request(name, _traceparent(scope["headers"]))
        state.received.append(scope["headers"])
        reply: Reply
        if spec.api_key is not None and not dialect.authorized(scope["headers"], spec.api_key):
            reply = dialect.unauthorized(scope["headers"])
        else:
            raw = await read_body(receive)
            if raw is None:  # gone before the request was even complete
                self._board.finished(name, completed=False)
                return
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                reply = BAD_JSON
            else:
                body = dialect.chat_body(body)
                reply = body if isinstance(body, Failure) else plan_reply(
                    spec, body, state.rng, next(counter))
                if isinstance(reply, Completion):
                    reply = _admit(state, spec, body, reply, self._clock.now())
        if isinstance(reply, Failure):
            self._board.error(name, reply.status)
            await send_failure(send, reply, dialect)
            return

        board = self._board

        def finish(outcome: Outcome) -> None:
            if outcome == "failed":
                board.error(name)
            else:
                board.finished(name, outcome == "completed")

        response: EventStreamResponse | DelayedJSONResponse | ResetResponse
        if isinstance(reply, Broken):
            if reply.kind == "reset":
                response = ResetResponse(reply.delay, self._clock, finish)
            else:
                response = DelayedJSONResponse(
                    wire.BAD_JSON_BODY, reply.delay, self._clock, finish, broken=True
                )
            await response(scope, receive, send)
            return

        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())  # wall clock: `created` is a Unix timestamp on the wire
        fault = reply.fault
        if reply.stream:
            events = dialect.stream_events(reply, completion_id, created)
            waits = reply.total_delay > 0
            if fault is None:
                response = EventStreamResponse(events, self._clock, finish, waits=waits,
                                               headers=reply.headers)
            else:
                response = EventStreamResponse(
                    events,
                    self._clock,
                    finish,
                    waits=waits,
                    fault_at=wire.events_until_fault(fault),
                    reset=fault.action == "reset",
                    headers=reply.headers,
                )
        else:
            body_bytes = dialect.completion_body(reply, completion_id, created)
            broken = fault is not None and fault.action != "stall"
            response = DelayedJSONResponse(
                body_bytes, reply.total_delay, self._clock, finish, broken=broken,
                headers=reply.headers,
            )
        await response(scope, receive, send)


def _traceparent(headers: list[tuple[bytes, bytes]]) -> str | None:
    for header, value in headers:
        if header == b"traceparent":
            return value.decode("latin-1")
    return None


def _admit(state: ProviderState, spec: SimProviderSpec, body: Any, reply: Completion,
           now: float) -> Reply:
    """The provider's per-minute limits: a quota 429 over them, their headers either way."""
    fits, headers = state.window.admit(spec, body, now)
    if not fits:
        return rate_limited("quota", reply.model, 0.0, headers)
    return replace(reply, headers=headers) if headers else reply


async def send_failure(send: Send, failure: Failure, dialect: SimDialect = OPENAI) -> None:
    await send_json(send, failure.status, dialect.error_body(failure), failure.headers)
