"""`POST /v1/responses`: OpenAI's Responses API, stateless subset, over the same engine.

The request is translated to chat (`surfaces/responses_request.py`), routed and measured like
any chat request, and presented as a `response` object or its semantic event stream. Errors
keep OpenAI's shape, as for chat.
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import TokenlaneError
from ..request import ChatRequest
from ..surfaces.responses_reply import ResponseEcho, response_from_completion
from ..surfaces.responses_request import chat_body_from_responses
from ..surfaces.responses_stream import ResponsesStream
from ..surfaces.sse_out import encode_events
from .surface import chat_request

__all__ = ["RESPONSES_PATH", "Responses"]

RESPONSES_PATH = "/v1/responses"


class Responses:
    path = RESPONSES_PATH

    def prepare(self, body: dict[str, Any], headers: dict[bytes, bytes]
                ) -> tuple[ChatRequest, ResponsesPresenter]:
        chat = chat_request(chat_body_from_responses(body), headers)
        # `created_at` is a Unix timestamp on the wire: the wall clock, read here, not in the
        # pure translation.
        return chat, ResponsesPresenter(ResponseEcho(body, chat.model), time.time())

    def error(self, exc: TokenlaneError) -> tuple[int, dict[str, Any]]:
        return exc.status, exc.to_body()


class ResponsesPresenter:
    def __init__(self, echo: ResponseEcho, created_at: float) -> None:
        self._echo = echo
        self._created_at = created_at
        self._stream = ResponsesStream(echo, created_at)

    def complete(self, completion: dict[str, Any]) -> dict[str, Any]:
        return response_from_completion(completion, self._echo, self._created_at)

    def add(self, chunk: dict[str, Any]) -> bytes:
        return encode_events(self._stream.add(chunk))

    def finish(self) -> bytes:
        return encode_events(self._stream.finish())

    def broken(self, exc: TokenlaneError) -> bytes:
        return encode_events(self._stream.failed(exc.code or exc.type, exc.message))
