"""The simulator's HTTP surface: thin Starlette handlers over plan, wire and responses.

Routes:
    POST /{provider}/v1/chat/completions   OpenAI chat completions, streamed or not
    GET  /{provider}/v1/models             the provider's model list
    GET  /_sim/providers                   current specs (API keys left out)
    POST /_sim/providers/{name}            change some fields of one spec
    GET  /_sim/counters                    every provider's counters

The `/_sim` routes let a benchmark or demo steer a simulator running in another process.
They carry no auth: the simulator is a test fixture and listens on loopback by default.
"""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from ..clock import Clock
from . import wire
from .counters import CounterBoard
from .loader import SimConfigError
from .plan import Failure, plan_reply
from .provider import ProviderState
from .responses import DelayedJSONResponse, EventStreamResponse

__all__ = ["build_app"]


def build_app(
    providers: Mapping[str, ProviderState], board: CounterBoard, clock: Clock
) -> Starlette:
    """The ASGI app serving `providers`, counting into `board`, waiting on `clock`."""
    handlers = _Handlers(providers, board, clock)
    routes = [
        Route("/_sim/providers", handlers.list_providers, methods=["GET"]),
        Route("/_sim/providers/{name}", handlers.update_provider, methods=["POST"]),
        Route("/_sim/counters", handlers.list_counters, methods=["GET"]),
        Route("/{provider}/v1/chat/completions", handlers.chat_completions, methods=["POST"]),
        Route("/{provider}/v1/models", handlers.models, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})


class _Handlers:
    def __init__(
        self, providers: Mapping[str, ProviderState], board: CounterBoard, clock: Clock
    ) -> None:
        self._providers = providers
        self._board = board
        self._clock = clock

    async def chat_completions(self, request: Request) -> Any:
        state = self._providers.get(request.path_params["provider"])
        if state is None:
            return self._unknown_provider(request)
        spec = state.spec  # read once: a concurrent update applies to the next request
        name = spec.name
        self._board.request(name)
        reply: Any
        if spec.api_key is not None and not _authorized(request, spec.api_key):
            reply = _UNAUTHORIZED
        else:
            try:
                raw = await request.body()
            except ClientDisconnect:
                self._board.finished(name, completed=False)
                return Response(status_code=400)  # nobody is listening any more
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                reply = _BAD_JSON
            else:
                reply = plan_reply(spec, body, state.rng)
        if isinstance(reply, Failure):
            self._board.error(name, reply.status)
            return _error_response(reply)

        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())  # wall clock: `created` is a Unix timestamp on the wire

        def finish(completed: bool) -> None:
            self._board.finished(name, completed)

        if reply.stream:
            events = wire.stream_events(reply, completion_id, created)
            return EventStreamResponse(events, self._clock, finish)
        body_bytes = wire.completion_body(reply, completion_id, created)
        return DelayedJSONResponse(body_bytes, reply.total_delay, self._clock, finish)

    async def models(self, request: Request) -> Response:
        state = self._providers.get(request.path_params["provider"])
        if state is None:
            return self._unknown_provider(request)
        spec = state.spec
        if spec.api_key is not None and not _authorized(request, spec.api_key):
            return _error_response(_UNAUTHORIZED)
        return _json(wire.models_body(spec))

    async def list_providers(self, request: Request) -> Response:
        specs = [_public(state) for state in self._providers.values()]
        return _json(orjson.dumps({"providers": specs}))

    async def update_provider(self, request: Request) -> Response:
        state = self._providers.get(request.path_params["name"])
        if state is None:
            return self._unknown_provider(request)
        try:
            fields = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _error_response(_BAD_JSON)
        if not isinstance(fields, dict):
            return _error_response(_invalid("Send a JSON object of the fields to change."))
        try:
            state.update(fields)
        except SimConfigError as exc:
            return _error_response(_invalid(str(exc)))
        return _json(orjson.dumps(_public(state)))

    async def list_counters(self, request: Request) -> Response:
        tallies = self._board.all()
        data = {
            name: {
                "requests": c.requests,
                "completed": c.completed,
                "disconnected": c.disconnected,
                "errors": c.errors,
                "rate_limited": c.rate_limited,
                "in_flight": c.in_flight,
            }
            for name, c in tallies.items()
        }
        return _json(orjson.dumps(data))

    def _unknown_provider(self, request: Request) -> Response:
        known = ", ".join(self._providers) or "none"
        name = request.path_params.get("provider") or request.path_params.get("name")
        return _error_response(
            Failure(
                404,
                f"Unknown simulated provider {name!r} (this simulator serves: {known}).",
                "invalid_request_error",
                code="unknown_provider",
            )
        )


def _authorized(request: Request, api_key: str) -> bool:
    given = request.headers.get("authorization", "")
    # Constant-time, as a real provider's check would be.
    return hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode())


def _public(state: ProviderState) -> dict[str, Any]:
    return state.spec.model_dump(mode="json", exclude={"api_key"})


def _json(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


def _error_response(failure: Failure) -> Response:
    response = _json(wire.error_body(failure), failure.status)
    for key, value in failure.headers:
        response.headers[key] = value
    return response


def _invalid(message: str) -> Failure:
    return Failure(400, message, "invalid_request_error")


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (no such route), in OpenAI's error shape."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = f"Invalid URL ({request.method} {request.url.path})"
    return _error_response(Failure(status, message, "invalid_request_error"))


_UNAUTHORIZED = Failure(
    401,
    "Incorrect API key provided. Send it as 'Authorization: Bearer <key>'.",
    "invalid_request_error",
    code="invalid_api_key",
)
_BAD_JSON = _invalid(
    "We could not parse the JSON body of your request. The body must be valid JSON."
)
