"""`POST /v1/messages` and `POST /v1/messages/count_tokens`: the Anthropic Messages surface.

Claude Code and the Anthropic SDKs talk to any configured model through here: the request is
translated to chat (`surfaces/messages_request.py`), routed and measured by the engine like
any chat request, and its answer translated back. `anthropic-version` and `anthropic-beta`
are accepted and need not be sent; when sent they reach Anthropic-dialect upstreams (and no
other client header does). Errors are in Anthropic's shape with its statuses.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import InvalidRequest, TokenlaneError
from ..request import ChatRequest, check_nesting, prompt_tokens_estimate
from ..routing.engine import Engine
from ..surfaces.messages_errors import anthropic_error
from ..surfaces.messages_headers import forwarded_headers
from ..surfaces.messages_reply import message_from_completion
from ..surfaces.messages_request import chat_body_from_messages, messages_of
from ..surfaces.messages_stream import MessagesStream
from ..surfaces.sse_out import encode_events
from .surface import chat_request

__all__ = ["COUNT_TOKENS_PATH", "MESSAGES_PATH", "CountTokens", "Messages"]

MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"


class _AnthropicErrors:
    def error(self, exc: TokenlaneError) -> tuple[int, dict[str, Any]]:
        return anthropic_error(exc)


class Messages(_AnthropicErrors):
    path = MESSAGES_PATH

    def prepare(self, body: dict[str, Any], headers: dict[bytes, bytes]
                ) -> tuple[ChatRequest, MessagesPresenter]:
        chat = chat_request(chat_body_from_messages(body), headers)
        chat.upstream_headers = forwarded_headers(headers)
        return chat, MessagesPresenter(chat.model, chat.prompt_tokens)


class MessagesPresenter:
    def __init__(self, model: str, input_tokens_estimate: int) -> None:
        self.model = model
        self._stream = MessagesStream(model, input_tokens_estimate)

    def complete(self, completion: dict[str, Any]) -> dict[str, Any]:
        return message_from_completion(completion, self.model)

    def add(self, chunk: dict[str, Any]) -> bytes:
        return encode_events(self._stream.add(chunk))

    def finish(self) -> bytes:
        return encode_events(self._stream.finish())

    def broken(self, exc: TokenlaneError) -> bytes:
        # Anthropic ends a failed stream with one `error` event and no message_stop.
        return encode_events([("error", anthropic_error(exc)[1])])


class CountTokens(_AnthropicErrors):
    """An estimate (about four characters a token, as routing estimates prompts): the
    upstream models have their own tokenizers, and counting is not worth a model call."""

    path = COUNT_TOKENS_PATH

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def prepare(self, body: dict[str, Any], headers: dict[bytes, bytes]) -> dict[str, Any]:
        check_nesting(body)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise InvalidRequest("model: Field required", param="model")
        self.engine.route(model)  # ModelNotFound when it is not configured
        tokens = prompt_tokens_estimate(messages_of(body))
        if body.get("tools"):
            tokens += len(orjson.dumps(body["tools"])) // 4
        return {"input_tokens": tokens}
