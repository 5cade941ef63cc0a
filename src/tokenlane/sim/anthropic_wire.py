"""The simulator speaking Anthropic's Messages API (`POST /{provider}/v1/messages`).

A Messages request is planned as the chat request it translates to (the gateway's own
surface translation), so timing, token counts, tool calls and faults behave exactly as on the
OpenAI route; the planned OpenAI events are then re-encoded as Anthropic's event sequence,
one OpenAI event to one group of Anthropic events, so a fault strikes at the same point.
Keys are read from `x-api-key` as Anthropic's API does; errors take its shape.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from ..errors import InvalidRequest
from ..surfaces.messages_errors import anthropic_error_body
from ..surfaces.messages_reply import message_from_completion
from ..surfaces.messages_request import chat_body_from_messages
from ..surfaces.messages_stream import MessagesStream
from ..surfaces.sse_out import encode_events
from . import wire
from .dialects import SimDialect
from .plan import invalid
from .replies import Completion, Failure

__all__ = ["ANTHROPIC", "ERROR_EVENT"]

_DATA = b"data: "
ERROR_EVENT = encode_events([("error", anthropic_error_body(529, "Overloaded"))])


class _Anthropic:
    def chat_body(self, body: Any) -> Any:
        if not isinstance(body, dict):
            return invalid("The request body must be a JSON object.")
        try:
            return chat_body_from_messages(body)
        except InvalidRequest as exc:
            return invalid(exc.message, param=exc.param)

    def authorized(self, headers: Iterable[tuple[bytes, bytes]], api_key: str) -> bool:
        return hmac.compare_digest(_api_key(headers), api_key.encode())

    def unauthorized(self, headers: Iterable[tuple[bytes, bytes]]) -> Failure:
        return Failure(401, "invalid x-api-key", "authentication_error")

    def error_body(self, failure: Failure) -> bytes:
        body = anthropic_error_body(failure.status, failure.message)
        if failure.type == "authentication_error":
            body["error"]["type"] = failure.type
        return orjson.dumps(body)

    def stream_events(self, reply: Completion, reply_id: str, created: int
                      ) -> Iterator[tuple[float, bytes]]:
        translator = MessagesStream(reply.model, reply.prompt_tokens)
        for delay, event in wire.stream_events(reply, reply_id, created):
            if event == wire.DONE:
                yield delay, encode_events(translator.finish())
            elif event == wire.ERROR_EVENT:
                yield delay, ERROR_EVENT
            elif event == wire.GARBAGE_EVENT:
                yield delay, b"event: content_block_delta\n" + event
            else:
                chunk = orjson.loads(event.removeprefix(_DATA))
                yield delay, encode_events(translator.add(chunk))

    def completion_body(self, reply: Completion, reply_id: str, created: int) -> bytes:
        body = wire.completion_body(reply, reply_id, created)
        try:
            completion = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body  # a fault cut it short: as broken in any dialect
        return orjson.dumps(message_from_completion(completion, reply.model))


def _api_key(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    return next((value for key, value in headers if key.lower() == b"x-api-key"), b"")


ANTHROPIC: SimDialect = _Anthropic()
