"""The API dialects a simulated provider speaks: how a request reads and a reply is encoded.

The simulator plans every reply on an OpenAI chat body (`plan.plan_reply`), so a dialect only
translates at the edges: its request into a chat body, and the planned reply (timing, faults
and all) into its own bytes. `OPENAI` is the native one; `anthropic_wire.ANTHROPIC` speaks
the Messages API.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from . import wire
from .plan import unauthorized
from .replies import Completion, Failure

__all__ = ["OPENAI", "SimDialect", "authorization", "authorized"]


def authorization(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The Authorization header among raw ASGI `headers` (empty when absent)."""
    return next((value for key, value in headers if key.lower() == b"authorization"), b"")


def authorized(headers: Iterable[tuple[bytes, bytes]], api_key: str) -> bool:
    """Whether raw ASGI `headers` carry `Authorization: Bearer <api_key>`."""
    # Constant-time, as a real provider's check would be.
    return hmac.compare_digest(authorization(headers), b"Bearer " + api_key.encode())


class SimDialect(Protocol):
    def chat_body(self, body: Any) -> Any:
        """The chat-completions body to plan on (a `Failure` when the request is refused)."""
        ...

    def authorized(self, headers: Iterable[tuple[bytes, bytes]], api_key: str) -> bool: ...

    def unauthorized(self, headers: Iterable[tuple[bytes, bytes]]) -> Failure:
        """The 401 for a missing or wrong key."""
        ...

    def error_body(self, failure: Failure) -> bytes: ...

    def stream_events(self, reply: Completion, reply_id: str, created: int
                      ) -> Iterator[tuple[float, bytes]]:
        """`(delay, bytes)` pairs, one per planned OpenAI event (so fault positions hold)."""
        ...

    def completion_body(self, reply: Completion, reply_id: str, created: int) -> bytes: ...


class _OpenAI:
    def chat_body(self, body: Any) -> Any:
        return body

    def authorized(self, headers: Iterable[tuple[bytes, bytes]], api_key: str) -> bool:
        return authorized(headers, api_key)

    def unauthorized(self, headers: Iterable[tuple[bytes, bytes]]) -> Failure:
        return unauthorized(authorization(headers))

    def error_body(self, failure: Failure) -> bytes:
        return wire.error_body(failure)

    def stream_events(self, reply: Completion, reply_id: str, created: int
                      ) -> Iterator[tuple[float, bytes]]:
        return wire.stream_events(reply, reply_id, created)

    def completion_body(self, reply: Completion, reply_id: str, created: int) -> bytes:
        return wire.completion_body(reply, reply_id, created)


OPENAI: SimDialect = _OpenAI()
