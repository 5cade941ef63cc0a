"""The `embeddings` signature `Router`, `Client` and `AsyncClient` share, written once (one
sync, one async), as `_chat` does for `chat`. Each class supplies `_embed` (sync) or `_aembed`
(async), which take the request body."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ._wire import ProviderArg, with_provider
from .results import Embeddings

__all__ = ["EmbeddingInput", "aembeddings", "embeddings", "embeddings_body"]

EmbeddingInput = str | Sequence[str] | Sequence[int] | Sequence[Sequence[int]]
"""OpenAI's `input`: a text, texts, a token array or token arrays."""


class _Embeds(Protocol):
    def _embed(self, body: dict[str, Any]) -> Embeddings: ...


class _AEmbeds(Protocol):
    async def _aembed(self, body: dict[str, Any]) -> Embeddings: ...


def embeddings_body(model: str, input: EmbeddingInput, provider: ProviderArg,
                    params: dict[str, Any]) -> dict[str, Any]:
    """The embeddings request body: OpenAI's fields (floats unless `encoding_format` says
    otherwise, so `Embeddings.vectors` reads them as they are) plus our `provider` object."""
    value: Any = input if isinstance(input, str) else [
        item if isinstance(item, (str, int)) else list(item) for item in input]
    body: dict[str, Any] = {"model": model, "input": value, "encoding_format": "float", **params}
    return with_provider(body, provider, params)


def embeddings(self: _Embeds, *, model: str, input: EmbeddingInput,
               provider: ProviderArg = None, **params: Any) -> Embeddings:
    """Embed `input` with the best deployment of `model` that serves embeddings right now.

    OpenAI's embeddings parameters (`dimensions`, `user`, ...) go as keyword arguments and
    reach the provider untouched; routing options go as `provider`. Returns `Embeddings`
    (`vectors`, `usage`, and how it was routed); failures raise the `TokenlaneError`
    subclasses `chat` raises."""
    return self._embed(embeddings_body(model, input, provider, params))


async def aembeddings(self: _AEmbeds, *, model: str, input: EmbeddingInput,
                      provider: ProviderArg = None, **params: Any) -> Embeddings:
    """`embeddings`, awaited: the same arguments, results and errors."""
    return await self._aembed(embeddings_body(model, input, provider, params))
