"""The `messages` signature (Anthropic's Messages API) `Router`, `Client` and `AsyncClient`
share, written once (one sync, one async), as `_chat` does for `chat`. Each class supplies
`_message` (sync) or `_amessage` (async), which take the request body and the betas.

The body is Anthropic's; translating it to a chat request, and the answer back, is the
gateway's own surface translation (`tokenlane.surfaces.messages_*`), in process or behind
`POST /v1/messages`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, overload

from ..surfaces.messages_headers import UpstreamHeaders, forwarded_headers
from ._wire import ProviderArg, with_provider
from .anthropic_results import AnthropicMessage
from .streams import AsyncMessageStream, MessageStream

__all__ = ["amessages", "beta_headers", "messages", "messages_body"]

_Turns = Sequence[Mapping[str, Any]]
_System = str | Sequence[Mapping[str, Any]] | None


class _Sends(Protocol):
    def _message(self, body: dict[str, Any], betas: Sequence[str]
                 ) -> AnthropicMessage | MessageStream: ...


class _ASends(Protocol):
    async def _amessage(self, body: dict[str, Any], betas: Sequence[str]
                        ) -> AnthropicMessage | AsyncMessageStream: ...


def messages_body(model: str, turns: _Turns, max_tokens: int, stream: bool, system: _System,
                  provider: ProviderArg, params: Mapping[str, Any]) -> dict[str, Any]:
    """The Messages request body: Anthropic's fields plus our `provider` object."""
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens,
                            "messages": [dict(m) for m in turns], **params}
    if system is not None:
        body["system"] = system if isinstance(system, str) else [dict(b) for b in system]
    if stream:
        body["stream"] = True
    return with_provider(body, provider, params)


def beta_headers(betas: Sequence[str]) -> UpstreamHeaders:
    """`anthropic-beta` for Anthropic upstreams, checked as the gateway checks a client's."""
    if isinstance(betas, str):
        raise TypeError("betas is a list of beta names, not one string")
    if not betas:
        return ()
    return forwarded_headers({b"anthropic-beta": ",".join(betas).encode()})


@overload
def messages(
    self: _Sends, *, model: str, messages: _Turns, max_tokens: int,
    stream: Literal[False] = False, system: _System = None, provider: ProviderArg = None,
    betas: Sequence[str] = (), **params: Any,
) -> AnthropicMessage: ...


@overload
def messages(
    self: _Sends, *, model: str, messages: _Turns, max_tokens: int, stream: Literal[True],
    system: _System = None, provider: ProviderArg = None, betas: Sequence[str] = (),
    **params: Any,
) -> MessageStream: ...


def messages(
    self: _Sends, *, model: str, messages: _Turns, max_tokens: int, stream: bool = False,
    system: _System = None, provider: ProviderArg = None, betas: Sequence[str] = (),
    **params: Any,
) -> AnthropicMessage | MessageStream:
    """Create an Anthropic message, routed to the best deployment of `model` right now
    (any provider's: the request is translated for OpenAI-dialect deployments).

    Anthropic's Messages parameters (`tools`, `tool_choice`, `stop_sequences`,
    `temperature`, `top_p`, `metadata`) go as keyword arguments; `betas` become the
    `anthropic-beta` header of Anthropic-dialect upstreams; routing options go as
    `provider`. Returns an `AnthropicMessage` (with `decision`, `deployment`), or with
    `stream=True` a `MessageStream` of `AnthropicEvent`s, returned once the first token has
    arrived. Failures raise the `TokenlaneError` subclasses `chat` raises."""
    return self._message(
        messages_body(model, messages, max_tokens, stream, system, provider, params), betas)


@overload
async def amessages(
    self: _ASends, *, model: str, messages: _Turns, max_tokens: int,
    stream: Literal[False] = False, system: _System = None, provider: ProviderArg = None,
    betas: Sequence[str] = (), **params: Any,
) -> AnthropicMessage: ...


@overload
async def amessages(
    self: _ASends, *, model: str, messages: _Turns, max_tokens: int, stream: Literal[True],
    system: _System = None, provider: ProviderArg = None, betas: Sequence[str] = (),
    **params: Any,
) -> AsyncMessageStream: ...


async def amessages(
    self: _ASends, *, model: str, messages: _Turns, max_tokens: int, stream: bool = False,
    system: _System = None, provider: ProviderArg = None, betas: Sequence[str] = (),
    **params: Any,
) -> AnthropicMessage | AsyncMessageStream:
    """`messages`, awaited: the same arguments, results and errors; a stream is an
    `AsyncMessageStream` (`async for event in stream`)."""
    return await self._amessage(
        messages_body(model, messages, max_tokens, stream, system, provider, params), betas)
