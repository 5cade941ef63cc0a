"""Everything but the hot path, as ordinary Starlette routes.

    GET  /{provider}/v1/models     the provider's model list
    GET  /_sim/providers           current specs (API keys left out)
    POST /_sim/providers/{name}    change some fields of one spec
    GET  /_sim/counters            every provider's counters

The `/_sim` routes let a benchmark or demo steer a simulator running in another process.
They carry no auth: the simulator is a test fixture and listens on loopback by default.
Unknown routes get OpenAI's `Invalid URL` error shape, like the real API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import wire
from .chat import authorization, authorized
from .counters import CounterBoard
from .loader import SimConfigError
from .plan import BAD_JSON, Failure, invalid, unauthorized, unknown_provider
from .provider import ProviderState

__all__ = ["build_routes"]


def build_routes(providers: Mapping[str, ProviderState], board: CounterBoard) -> Starlette:
    handlers = _Handlers(providers, board)
    routes = [
        Route("/_sim/providers", handlers.list_providers, methods=["GET"]),
        Route("/_sim/providers/{name}", handlers.update_provider, methods=["POST"]),
        Route("/_sim/counters", handlers.list_counters, methods=["GET"]),
        Route("/{provider}/v1/models", handlers.models, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})


class _Handlers:
    def __init__(self, providers: Mapping[str, ProviderState], board: CounterBoard) -> None:
        self._providers = providers
        self._board = board

    async def models(self, request: Request) -> Response:
        name = request.path_params["provider"]
        state = self._providers.get(name)
        if state is None:
            return _failure(unknown_provider(name, self._providers))
        spec = state.spec
        if spec.api_key is not None and not authorized(request.scope["headers"], spec.api_key):
            return _failure(unauthorized(authorization(request.scope["headers"])))
        return _json(wire.models_body(spec))

    async def list_providers(self, request: Request) -> Response:
        specs = [_public(state) for state in self._providers.values()]
        return _json(orjson.dumps({"providers": specs}))

    async def update_provider(self, request: Request) -> Response:
        name = request.path_params["name"]
        state = self._providers.get(name)
        if state is None:
            return _failure(unknown_provider(name, self._providers))
        try:
            fields = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _failure(BAD_JSON)
        if not isinstance(fields, dict):
            return _failure(invalid("Send a JSON object of the fields to change."))
        try:
            state.update(fields)
        except SimConfigError as exc:
            return _failure(invalid(str(exc)))
        return _json(orjson.dumps(_public(state)))

    async def list_counters(self, request: Request) -> Response:
        data = {
            name: {**asdict(counters), "in_flight": counters.in_flight}
            for name, counters in self._board.all().items()
        }
        return _json(orjson.dumps(data))


def _public(state: ProviderState) -> dict[str, Any]:
    return state.spec.model_dump(mode="json", exclude={"api_key"})


def _json(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


def _failure(failure: Failure) -> Response:
    return Response(
        wire.error_body(failure),
        status_code=failure.status,
        headers=dict(failure.headers),
        media_type="application/json",
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (no such route), in OpenAI's error shape."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = f"Invalid URL ({request.method} {request.url.path})"
    return _failure(Failure(status, message, "invalid_request_error"))
