"""The `chat` signature `Router`, `Client` and `AsyncClient` share, written once (one sync,
one async).

`chat` and `achat` are plain functions that the classes take as methods (`chat = chat`): the
overloads that type `stream=True` → a stream are the contract, so they live in one place.
Each class supplies only `_create` (sync) or `_acreate` (async), which take the request body.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, overload

from ._wire import ProviderArg, chat_body
from .results import ChatCompletion
from .streams import AsyncStream, Stream

__all__ = ["Messages", "achat", "chat"]

Messages = Sequence[Mapping[str, Any]]
"""OpenAI's `messages`: dicts with `role`, `content`, and `tool_calls` / `tool_call_id`."""


class _Creates(Protocol):
    def _create(self, body: dict[str, Any]) -> ChatCompletion | Stream: ...


class _ACreates(Protocol):
    async def _acreate(self, body: dict[str, Any]) -> ChatCompletion | AsyncStream: ...


@overload
def chat(
    self: _Creates, *, model: str, messages: Messages, stream: Literal[False] = False,
    provider: ProviderArg = None, **params: Any,
) -> ChatCompletion: ...


@overload
def chat(
    self: _Creates, *, model: str, messages: Messages, stream: Literal[True],
    provider: ProviderArg = None, **params: Any,
) -> Stream: ...


@overload
def chat(
    self: _Creates, *, model: str, messages: Messages, stream: bool,
    provider: ProviderArg = None, **params: Any,
) -> ChatCompletion | Stream: ...


def chat(
    self: _Creates, *, model: str, messages: Messages, stream: bool = False,
    provider: ProviderArg = None, **params: Any,
) -> ChatCompletion | Stream:
    """Create a chat completion, routed to the best deployment of `model` right now.

    OpenAI's chat-completions parameters (`temperature`, `max_tokens`, `tools`,
    `stream_options`, ...) go as keyword arguments and reach the provider untouched; routing
    options go as `provider` (a `RoutingOptions`, or OpenRouter's `provider` object as a dict).

    Returns a `ChatCompletion` that also says how it was routed (`decision`, `deployment`), or
    with `stream=True` a `Stream` of `ChatCompletionChunk`s, returned once the first token has
    arrived. Failures raise `TokenlaneError` subclasses carrying OpenAI's error fields:
    `ModelNotFound`, `InvalidRequest`, `UpstreamRejected` (an upstream's own 4xx, with its
    `deployment`), `NoDeploymentAvailable` (with every attempt), `StreamBroken` while iterating,
    and from a gateway client `GatewayUnreachable`.
    """
    return self._create(chat_body(model, messages, stream, provider, params))


@overload
async def achat(
    self: _ACreates, *, model: str, messages: Messages, stream: Literal[False] = False,
    provider: ProviderArg = None, **params: Any,
) -> ChatCompletion: ...


@overload
async def achat(
    self: _ACreates, *, model: str, messages: Messages, stream: Literal[True],
    provider: ProviderArg = None, **params: Any,
) -> AsyncStream: ...


@overload
async def achat(
    self: _ACreates, *, model: str, messages: Messages, stream: bool,
    provider: ProviderArg = None, **params: Any,
) -> ChatCompletion | AsyncStream: ...


async def achat(
    self: _ACreates, *, model: str, messages: Messages, stream: bool = False,
    provider: ProviderArg = None, **params: Any,
) -> ChatCompletion | AsyncStream:
    """The sync `chat`, awaited: the same arguments, results and errors; a stream is an
    `AsyncStream` (`async for chunk in stream`). Cancelling the awaiting task cancels the
    request upstream."""
    return await self._acreate(chat_body(model, messages, stream, provider, params))
