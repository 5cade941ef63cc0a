"""`Client` and `AsyncClient`: a running tokenlane gateway over HTTP (httpx).

    with Client("http://127.0.0.1:8000", api_key="...") as gw:
        reply = gw.chat(model="llama-3.3-70b", messages=msgs, provider={"sort": "price"})
        print(reply.text, reply.decision.chosen)

Both are thin twins over `_BaseClient`, which builds requests and reads responses without
I/O (`_wire`). Already using the official `openai` SDK? Keep it, and see `tokenlane.client.
openai_compat` for routing options and the decision with it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self, overload

import httpx
import orjson

from ..errors import TokenlaneError
from ..stats.observation import Observation
from ._wire import ChunkDecoder, ProviderArg, chat_body, error_from_response, route_from_headers
from .results import ChatCompletion, RouterStats
from .streams import AsyncStream, Stream

__all__ = ["DEFAULT_TIMEOUT", "AsyncClient", "Client", "GatewayUnreachable"]

DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=5.0)
"""As the openai SDK: ten minutes for an answer, five seconds to connect."""

Messages = Sequence[Mapping[str, Any]]


class GatewayUnreachable(TokenlaneError):
    """The gateway could not be reached or stopped answering (connect error, timeout, a
    connection dropped mid-response). The underlying httpx error is `__cause__`."""

    status = 503
    type = "api_connection_error"
    code = "gateway_unreachable"


class _BaseClient:
    """What both twins share: configuration, request building, response reading."""

    def __init__(self, base_url: str, api_key: str | None, headers: Mapping[str, str] | None):
        url = base_url.rstrip("/")
        # Accept the openai SDK's style of base URL too (`.../v1`).
        self.base_url = url.removesuffix("/v1")
        key = api_key if api_key is not None else os.environ.get("TOKENLANE_API_KEY")
        self._headers = {"accept": "application/json", **(headers or {})}
        if key:
            self._headers["authorization"] = f"Bearer {key}"

    def _chat_request(
        self, model: str, messages: Messages, stream: bool, provider: ProviderArg,
        params: Mapping[str, Any],
    ) -> dict[str, Any]:
        body = chat_body(model, messages, stream, provider, params)
        headers = {"content-type": "application/json"}
        if stream:
            headers["accept"] = "text/event-stream"
        return {"method": "POST", "url": self._url("/v1/chat/completions"),
                "content": orjson.dumps(body), "headers": {**self._headers, **headers}}

    def _get_request(self, path: str) -> dict[str, Any]:
        return {"method": "GET", "url": self._url(path), "headers": self._headers}

    def _url(self, path: str) -> str:
        return self.base_url + path

    @staticmethod
    def _check(response: httpx.Response) -> None:
        """Raise the typed error for an error response (its body already read)."""
        if response.status_code >= 400:
            raise error_from_response(response.status_code, response.headers, response.content)

    @staticmethod
    def _completion(response: httpx.Response) -> ChatCompletion:
        decision, deployment = route_from_headers(response.headers)
        body = orjson.loads(response.content)
        return ChatCompletion(body, decision=decision, deployment=deployment)

    @staticmethod
    def _models(response: httpx.Response) -> list[str]:
        return [str(card["id"]) for card in response.json().get("data") or ()]


class _HTTPSource:
    """A stream's chunks read from the gateway's SSE response (sync)."""

    observation: Observation | None = None

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._pieces = response.iter_raw()
        self._decoder = ChunkDecoder()
        self._ready: list[dict[str, Any]] = []

    def next_chunk(self) -> dict[str, Any] | None:
        while not self._ready:
            if self._decoder.done:
                return None
            try:
                piece = next(self._pieces, None)
            except httpx.HTTPError as exc:
                raise GatewayUnreachable(f"the gateway's stream failed: {exc}") from exc
            if piece is None:
                self._decoder.finish()
                return None
            self._ready = self._decoder.feed(piece)
        return self._ready.pop(0)

    def close(self) -> None:
        self._response.close()


class _AsyncHTTPSource:
    """A stream's chunks read from the gateway's SSE response (async)."""

    observation: Observation | None = None

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._pieces = response.aiter_raw()
        self._decoder = ChunkDecoder()
        self._ready: list[dict[str, Any]] = []

    async def next_chunk(self) -> dict[str, Any] | None:
        while not self._ready:
            if self._decoder.done:
                return None
            try:
                piece = await anext(self._pieces, None)
            except httpx.HTTPError as exc:
                raise GatewayUnreachable(f"the gateway's stream failed: {exc}") from exc
            if piece is None:
                self._decoder.finish()
                return None
            self._ready = self._decoder.feed(piece)
        return self._ready.pop(0)

    async def aclose(self) -> None:
        await self._response.aclose()


class Client(_BaseClient):
    """A tokenlane gateway, synchronously.

    `base_url` is the gateway's root (`http://host:8000`; a trailing `/v1` is accepted).
    `api_key` defaults to `$TOKENLANE_API_KEY`. Pass `http_client` to bring your own
    `httpx.Client` (proxies, TLS, transports); it is then yours to close.
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
        super().__init__(base_url, api_key, headers)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)

    @overload
    def chat(
        self, *, model: str, messages: Messages, stream: Literal[False] = False,
        provider: ProviderArg = None, **params: Any,
    ) -> ChatCompletion: ...

    @overload
    def chat(
        self, *, model: str, messages: Messages, stream: Literal[True],
        provider: ProviderArg = None, **params: Any,
    ) -> Stream: ...

    @overload
    def chat(
        self, *, model: str, messages: Messages, stream: bool,
        provider: ProviderArg = None, **params: Any,
    ) -> ChatCompletion | Stream: ...

    def chat(
        self, *, model: str, messages: Messages, stream: bool = False,
        provider: ProviderArg = None, **params: Any,
    ) -> ChatCompletion | Stream:
        """Create a chat completion through the gateway.

        OpenAI's parameters as keyword arguments; routing options as `provider` (sent as the
        body's `provider` object). The result's `decision` is parsed from the
        `x-tokenlane-route` header. Error responses raise the same `TokenlaneError` classes
        the in-process `Router` raises (`NoDeploymentAvailable.attempts` included);
        `GatewayUnreachable` when the gateway cannot be reached.
        """
        request = self._http.build_request(
            **self._chat_request(model, messages, stream, provider, params))
        response = self._send(request, stream)
        if not stream:
            return self._completion(response)
        decision, deployment = route_from_headers(response.headers)
        return Stream(_HTTPSource(response), decision=decision, deployment=deployment)

    def stats(self) -> RouterStats:
        """The gateway's live routing estimates (`GET /v1/router/stats`)."""
        return RouterStats.from_dict(self._get("/v1/router/stats").json())

    def models(self) -> list[str]:
        """The public model names the gateway serves (`GET /v1/models`)."""
        return self._models(self._get("/v1/models"))

    def _get(self, path: str) -> httpx.Response:
        return self._send(self._http.build_request(**self._get_request(path)), False)

    def _send(self, request: httpx.Request, stream: bool) -> httpx.Response:
        try:
            response = self._http.send(request, stream=stream)
            if stream and response.status_code >= 400:
                try:
                    response.read()
                finally:
                    response.close()
        except httpx.HTTPError as exc:
            raise GatewayUnreachable(
                f"cannot reach the gateway at {self.base_url}: {exc}") from exc
        self._check(response)
        return response

    def close(self) -> None:
        """Close the HTTP connections (unless the httpx client was passed in)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(_BaseClient):
    """A tokenlane gateway, from async code: `Client`'s twin, the same methods awaited."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, api_key, headers)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)

    @overload
    async def chat(
        self, *, model: str, messages: Messages, stream: Literal[False] = False,
        provider: ProviderArg = None, **params: Any,
    ) -> ChatCompletion: ...

    @overload
    async def chat(
        self, *, model: str, messages: Messages, stream: Literal[True],
        provider: ProviderArg = None, **params: Any,
    ) -> AsyncStream: ...

    @overload
    async def chat(
        self, *, model: str, messages: Messages, stream: bool,
        provider: ProviderArg = None, **params: Any,
    ) -> ChatCompletion | AsyncStream: ...

    async def chat(
        self, *, model: str, messages: Messages, stream: bool = False,
        provider: ProviderArg = None, **params: Any,
    ) -> ChatCompletion | AsyncStream:
        """`Client.chat`, awaited; a stream is an `AsyncStream`."""
        request = self._http.build_request(
            **self._chat_request(model, messages, stream, provider, params))
        response = await self._send(request, stream)
        if not stream:
            return self._completion(response)
        decision, deployment = route_from_headers(response.headers)
        return AsyncStream(_AsyncHTTPSource(response), decision=decision, deployment=deployment)

    async def stats(self) -> RouterStats:
        """The gateway's live routing estimates (`GET /v1/router/stats`)."""
        return RouterStats.from_dict((await self._get("/v1/router/stats")).json())

    async def models(self) -> list[str]:
        """The public model names the gateway serves (`GET /v1/models`)."""
        return self._models(await self._get("/v1/models"))

    async def _get(self, path: str) -> httpx.Response:
        return await self._send(self._http.build_request(**self._get_request(path)), False)

    async def _send(self, request: httpx.Request, stream: bool) -> httpx.Response:
        try:
            response = await self._http.send(request, stream=stream)
            if stream and response.status_code >= 400:
                try:
                    await response.aread()
                finally:
                    await response.aclose()
        except httpx.HTTPError as exc:
            raise GatewayUnreachable(
                f"cannot reach the gateway at {self.base_url}: {exc}") from exc
        self._check(response)
        return response

    async def aclose(self) -> None:
        """Close the HTTP connections (unless the httpx client was passed in)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
