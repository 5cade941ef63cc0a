"""`Client` and `AsyncClient`: a running tokenlane gateway over HTTP (httpx).

    with Client("http://127.0.0.1:8000", api_key="...") as gw:
        reply = gw.chat(model="llama-3.3-70b", messages=msgs, provider={"sort": "price"})
        print(reply.text, reply.decision.chosen)

Both are thin twins over `_BaseClient`, which builds requests and reads responses without
I/O (`_wire`); each twin only sends and reads. Already using the official `openai` SDK? Keep
it, and see `tokenlane.client.openai_compat` for routing options and the decision with it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Generic, TypeVar

import httpx
import orjson

from ..errors import TokenlaneError
from ..stats.observation import Observation
from . import _chat, _embeddings, _messages
from ._closing import AsyncClosing, Closing
from ._wire import (
    ChunkDecoder,
    MessageEventDecoder,
    NeedData,
    error_from_anthropic,
    error_from_response,
    route_from_headers,
)
from .anthropic_results import AnthropicMessage
from .results import ChatCompletion, Embeddings, RouterStats
from .streams import AsyncMessageStream, AsyncStream, MessageStream, Stream

__all__ = ["DEFAULT_TIMEOUT", "AsyncClient", "Client", "GatewayUnreachable"]

DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=5.0)
"""As the openai SDK: ten minutes for an answer, five seconds to connect."""

_STATS_PATH = "/v1/router/stats"
_MODELS_PATH = "/v1/models"

H = TypeVar("H", httpx.Client, httpx.AsyncClient)
# Reads an error response into the typed exception (OpenAI's shape, or Anthropic's).
Errors = Callable[[int, Mapping[str, str], bytes], TokenlaneError]


class GatewayUnreachable(TokenlaneError):
    """The gateway could not be reached or stopped answering (connect error, timeout, a
    connection dropped mid-response). The underlying httpx error is `__cause__`."""

    status = 503
    type = "api_connection_error"
    code = "gateway_unreachable"


@contextmanager
def _unreachable(what: str) -> Iterator[None]:
    """httpx's transport errors as GatewayUnreachable (sync and async code alike)."""
    try:
        yield
    except httpx.HTTPError as exc:
        raise GatewayUnreachable(f"{what}: {exc}") from exc


class _BaseClient(Generic[H]):
    """What both twins share: configuration, request building, response reading."""

    def __init__(
        self, base_url: str, api_key: str | None, headers: Mapping[str, str] | None,
        http: H, *, owns_http: bool,
    ) -> None:
        # Accept the openai SDK's style of base URL too (`.../v1`).
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        key = api_key if api_key is not None else os.environ.get("TOKENLANE_API_KEY")
        self._headers = {"accept": "application/json", **(headers or {})}
        if key:
            self._headers["authorization"] = f"Bearer {key}"
        self._http: H = http
        self._owns_http = owns_http

    def _chat_request(self, body: dict[str, Any]) -> httpx.Request:
        headers = {**self._headers, "content-type": "application/json"}
        if body.get("stream"):
            headers["accept"] = "text/event-stream"
        return self._http.build_request("POST", self.base_url + "/v1/chat/completions",
                                        content=orjson.dumps(body), headers=headers)

    def _embed_request(self, body: dict[str, Any]) -> httpx.Request:
        return self._http.build_request(
            "POST", self.base_url + "/v1/embeddings", content=orjson.dumps(body),
            headers={**self._headers, "content-type": "application/json"})

    def _message_request(self, body: dict[str, Any], betas: Sequence[str]) -> httpx.Request:
        headers = {**self._headers, "content-type": "application/json"}
        if body.get("stream"):
            headers["accept"] = "text/event-stream"
        beta = _messages.beta_headers(betas)
        headers.update(beta)
        return self._http.build_request("POST", self.base_url + "/v1/messages",
                                        content=orjson.dumps(body), headers=headers)

    @staticmethod
    def _message_of(response: httpx.Response) -> AnthropicMessage:
        decision, deployment = route_from_headers(response.headers)
        return AnthropicMessage(orjson.loads(response.content), decision=decision,
                                deployment=deployment)

    @staticmethod
    def _embedded(response: httpx.Response) -> Embeddings:
        decision, deployment = route_from_headers(response.headers)
        return Embeddings(orjson.loads(response.content), decision=decision,
                          deployment=deployment)

    def _get_request(self, path: str) -> httpx.Request:
        return self._http.build_request("GET", self.base_url + path, headers=self._headers)

    def _sending(self) -> AbstractContextManager[None]:
        return _unreachable(f"cannot reach the gateway at {self.base_url}")

    @staticmethod
    def _check(response: httpx.Response, errors: Errors = error_from_response) -> None:
        """Raise the typed error for an error response (its body already read)."""
        if response.status_code >= 400:
            raise errors(response.status_code, response.headers, response.content)

    @staticmethod
    def _completion(response: httpx.Response) -> ChatCompletion:
        decision, deployment = route_from_headers(response.headers)
        return ChatCompletion(orjson.loads(response.content), decision=decision,
                              deployment=deployment)

    @staticmethod
    def _models(response: httpx.Response) -> list[str]:
        return [str(card["id"]) for card in response.json().get("data") or ()]


class _HTTPSource:
    """A stream's chunks read from the gateway's SSE response (sync)."""

    observation: Observation | None = None

    def __init__(self, response: httpx.Response,
                 decoder: ChunkDecoder | MessageEventDecoder | None = None) -> None:
        self._response = response
        self._pieces = response.iter_bytes()  # decoded: a proxy in front may compress
        self._decoder = decoder or ChunkDecoder()

    def next_chunk(self) -> dict[str, Any] | None:
        while isinstance(chunk := self._decoder.next_chunk(), NeedData):
            with _unreachable("the gateway's stream failed"):
                self._decoder.feed(next(self._pieces, None))
        return chunk

    def close(self) -> None:
        self._response.close()


class _AsyncHTTPSource:
    """A stream's chunks read from the gateway's SSE response (async)."""

    observation: Observation | None = None

    def __init__(self, response: httpx.Response,
                 decoder: ChunkDecoder | MessageEventDecoder | None = None) -> None:
        self._response = response
        self._pieces: AsyncIterator[bytes] = response.aiter_bytes()
        self._decoder = decoder or ChunkDecoder()

    async def next_chunk(self) -> dict[str, Any] | None:
        while isinstance(chunk := self._decoder.next_chunk(), NeedData):
            with _unreachable("the gateway's stream failed"):
                self._decoder.feed(await anext(self._pieces, None))
        return chunk

    async def aclose(self) -> None:
        await self._response.aclose()


class Client(_BaseClient[httpx.Client], Closing):
    """A tokenlane gateway, synchronously.

    `base_url` is the gateway's root (`http://host:8000`; a trailing `/v1` is accepted).
    `api_key` defaults to `$TOKENLANE_API_KEY`. Pass `http_client` to bring your own
    `httpx.Client` (proxies, TLS, transports); it is then yours to close.

    `chat`, `messages` and `embeddings` have `Router`'s signatures, results and errors; the decision comes from the
    gateway's `x-tokenlane-route` header, and `observation` is None (the gateway measures but
    does not report per response).
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(base_url, api_key, headers,
                         http_client or httpx.Client(timeout=timeout),
                         owns_http=http_client is None)

    chat = _chat.chat

    def _create(self, body: dict[str, Any]) -> ChatCompletion | Stream:
        response = self._send(self._chat_request(body), stream=bool(body.get("stream")))
        if not body.get("stream"):
            return self._completion(response)
        decision, deployment = route_from_headers(response.headers)
        return Stream(_HTTPSource(response), decision=decision, deployment=deployment)

    messages = _messages.messages

    def _message(self, body: dict[str, Any], betas: Sequence[str]
                 ) -> AnthropicMessage | MessageStream:
        stream = bool(body.get("stream"))
        response = self._send(self._message_request(body, betas), stream=stream,
                              errors=error_from_anthropic)
        if not stream:
            return self._message_of(response)
        decision, deployment = route_from_headers(response.headers)
        return MessageStream(_HTTPSource(response, MessageEventDecoder()), decision=decision,
                             deployment=deployment)

    embeddings = _embeddings.embeddings

    def _embed(self, body: dict[str, Any]) -> Embeddings:
        return self._embedded(self._send(self._embed_request(body)))

    def stats(self) -> RouterStats:
        """The gateway's live routing estimates (`GET /v1/router/stats`)."""
        return RouterStats.from_dict(self._send(self._get_request(_STATS_PATH)).json())

    def models(self) -> list[str]:
        """The public model names the gateway serves (`GET /v1/models`)."""
        return self._models(self._send(self._get_request(_MODELS_PATH)))

    def _send(self, request: httpx.Request, stream: bool = False,
              errors: Errors = error_from_response) -> httpx.Response:
        with self._sending():
            response = self._http.send(request, stream=stream)
            if stream and response.status_code >= 400:
                try:
                    response.read()
                finally:
                    response.close()
        self._check(response, errors)
        return response

    def close(self) -> None:
        """Close the HTTP connections (unless the httpx client was passed in)."""
        if self._owns_http:
            self._http.close()


class AsyncClient(_BaseClient[httpx.AsyncClient], AsyncClosing):
    """A tokenlane gateway, from async code: `Client`'s twin, the same methods awaited
    (`chat` is `Router.achat`'s signature, `messages` `Router.amessages`'), `aclose()` and
    `async with`."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, api_key, headers,
                         http_client or httpx.AsyncClient(timeout=timeout),
                         owns_http=http_client is None)

    chat = _chat.achat

    async def _acreate(self, body: dict[str, Any]) -> ChatCompletion | AsyncStream:
        response = await self._send(self._chat_request(body), stream=bool(body.get("stream")))
        if not body.get("stream"):
            return self._completion(response)
        decision, deployment = route_from_headers(response.headers)
        return AsyncStream(_AsyncHTTPSource(response), decision=decision, deployment=deployment)

    messages = _messages.amessages

    async def _amessage(self, body: dict[str, Any], betas: Sequence[str]
                        ) -> AnthropicMessage | AsyncMessageStream:
        stream = bool(body.get("stream"))
        response = await self._send(self._message_request(body, betas), stream=stream,
                                    errors=error_from_anthropic)
        if not stream:
            return self._message_of(response)
        decision, deployment = route_from_headers(response.headers)
        return AsyncMessageStream(_AsyncHTTPSource(response, MessageEventDecoder()),
                                  decision=decision, deployment=deployment)

    embeddings = _embeddings.aembeddings

    async def _aembed(self, body: dict[str, Any]) -> Embeddings:
        return self._embedded(await self._send(self._embed_request(body)))

    async def stats(self) -> RouterStats:
        """The gateway's live routing estimates (`GET /v1/router/stats`)."""
        return RouterStats.from_dict((await self._send(self._get_request(_STATS_PATH))).json())

    async def models(self) -> list[str]:
        """The public model names the gateway serves (`GET /v1/models`)."""
        return self._models(await self._send(self._get_request(_MODELS_PATH)))

    async def _send(self, request: httpx.Request, stream: bool = False,
                    errors: Errors = error_from_response) -> httpx.Response:
        with self._sending():
            response = await self._http.send(request, stream=stream)
            if stream and response.status_code >= 400:
                try:
                    await response.aread()
                finally:
                    await response.aclose()
        self._check(response, errors)
        return response

    async def aclose(self) -> None:
        """Close the HTTP connections (unless the httpx client was passed in)."""
        if self._owns_http:
            await self._http.aclose()
