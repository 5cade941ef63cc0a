"""`create_app(settings)`: the gateway's FastAPI app, with all state built here, none global."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from ..clock import Clock, MonotonicClock
from ..config import Settings
from ..errors import TokenlaneError, error_body
from ..keys import OPEN_GATE, Gate, KeyService
from ..metrics import Metrics
from ..providers.pool_waits import pool_waits_of
from ..request_log import RequestLog
from ..routing.build import build_engine, build_prober
from ..routing.passthrough import Passthrough
from ..state.redis_conn import RedisConnection
from ..state.shared import SharedState
from ..stats.observation import Observation
from ..telemetry import build_telemetry
from ..types import Catalog, ModelRoute
from .access_log import AccessLogMiddleware
from .admin import admin_router
from .auth import Authenticator
from .chat import CHAT_PATH, ChatCompletions
from .dashboard import Dashboard, dashboard_router
from .drain import Drain
from .messages import CountTokens, Messages
from .middleware import RequestContextMiddleware
from .passthrough import PassthroughEndpoint
from .responses import Responses
from .routes import router
from .served import RequestTap
from .surface import SurfaceEndpoint
from .traffic import TrafficWindow

__all__ = ["create_app"]


def create_app(
    settings: Settings,
    *,
    env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    catalog: Catalog | None = None,
    rng: random.Random | None = None,
    source: str = "<config>",
    wall: Callable[[], float] | None = None,
    tracer_provider: Any = None,
) -> FastAPI:
    """Build the gateway. Raises ConfigError when settings and environment do not fit.
    `wall`: calendar time (Unix seconds) for budgets and shared rate limits; tests drive it.
    `tracer_provider` (an OpenTelemetry SDK TracerProvider) replaces the one `telemetry:`
    would build, when tracing is on."""
    env = os.environ if env is None else env
    catalog = catalog or settings.resolve(env, source=source)
    settings.check_not_serving_itself(catalog, source=source)
    deployment_ids = [d.id for m in catalog.models.values() for d in m.deployments]
    metrics = Metrics(lambda: engine.stats.snapshot(deployment_ids))
    clock = clock or MonotonicClock()
    redis = (RedisConnection(settings.state, clock, env, source=source)
             if settings.state.backend == "redis" else None)
    request_log = (RequestLog(content=settings.logging.content,
                              auth_enabled=settings.server.auth.enabled)
                   if settings.logging.requests else None)
    keys = (KeyService.open(settings.keys, catalog, clock, request_log=request_log,
                            redis=redis, wall=wall or time.time)
            if settings.keys.enabled else None)
    if keys is not None and keys.shared_limits is not None:
        metrics.watch_shared_limits(keys.shared_limits)
    # Keys off: requests are still accounted for the request log (no limits, no ledger).
    admission = (keys.gate if keys is not None else
                 Gate(catalog, request_log=request_log) if request_log is not None else OPEN_GATE)
    traffic = TrafficWindow(deployment_ids)  # the dashboard's last 15 minutes
    shared = SharedState(redis, deployment_ids, keys=keys) if redis is not None else None
    observers = [metrics.observe, traffic.observe,
                 *([admission.observe] if isinstance(admission, Gate) else []),
                 *([shared.observe] if shared else [])]
    telemetry = build_telemetry(settings.telemetry, tracer_provider=tracer_provider,
                                source=source)  # None: tracing off
    engine = build_engine(settings, catalog, clock=clock, rng=rng,
                          on_observation=_each(*observers),
                          on_overhead=metrics.overhead.observe,
                          on_hedge=metrics.on_hedge, on_refusal=metrics.on_refusal,
                          tracer=telemetry.attempts if telemetry else None)
    metrics.watch_circuits(engine.circuits, deployment_ids)
    pool_waits = {name: waits for name, dialect in engine.dialects.items()
                  if (waits := pool_waits_of(dialect)) is not None}
    metrics.watch_pool_waits(pool_waits)
    prober = build_prober(settings, engine)
    if shared is not None:
        shared.attach(engine, prober)
        metrics.watch_state_backend("redis", shared.conn.health, shared.live_peers)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Redis first: whatever shares state through it (limits, estimates) finds it
        # reachable, or not, from the first request.
        if shared is not None:
            await shared.conn.ping()
        sharing = asyncio.create_task(shared.run()) if shared is not None else None
        probing = asyncio.create_task(prober.run()) if prober.settings.enabled else None
        if keys is not None:
            keys.start()
        try:
            yield
        finally:
            if probing is not None:
                probing.cancel()
            await engine.aclose()
            if keys is not None:
                await keys.stop()  # the ledger's last rows
            if sharing is not None and shared is not None:
                sharing.cancel()
                await asyncio.gather(sharing, return_exceptions=True)
                await shared.conn.aclose()
            if telemetry is not None:
                telemetry.shutdown()  # the spans still batched

    auth = Authenticator(settings.server.auth, env, source=source, keys=keys)
    dashboard = Dashboard(engine, traffic, auth_enabled=settings.server.auth.enabled,
                          master_keys=settings.server.auth.master_keys(env, source=source),
                          keys=keys)
    # Every client request's end, as the client saw it: client-facing metrics, decisions.
    gate: Any = RequestTap(admission, clock, catalog.models,
                           [metrics.served, dashboard.decisions.add])
    if telemetry is not None:
        gate = telemetry.traced_gate(gate)
    limit = settings.server.max_body_bytes
    drain = Drain(settings.server.drain_timeout_s)
    surfaces = [Messages(), CountTokens(engine), Responses()]
    app = Gateway(
        ChatCompletions(engine, auth, limit, drain, gate=gate),
        {s.path: SurfaceEndpoint(s, engine, auth, limit, drain, gate=gate) for s in surfaces},
        title="tokenlane", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None,
    )
    passthrough = Passthrough(engine)
    for endpoint in ("embeddings", "completions"):  # bodies passed through, routed alike
        served = PassthroughEndpoint(endpoint, passthrough, auth, limit, drain, gate=gate)
        app.surfaces[served.path] = RequestContextMiddleware(served)
    app.state.settings = settings
    app.state.engine = engine
    app.state.metrics = metrics
    app.state.prober = prober
    app.state.redis = redis  # the shared state backend's connection (None: local)
    app.state.shared = shared  # what this replica shares through it
    app.state.auth = auth
    app.state.keys = keys
    app.state.dashboard = dashboard
    app.state.drain = drain  # for the server that runs the app (drain.DrainingServer)
    app.state.pool_waits = pool_waits
    app.state.model_cards = [_model_card(name, route) for name, route in catalog.models.items()]
    app.include_router(router)
    app.include_router(dashboard_router)
    own_port = keys is not None and settings.keys.admin_port is not None
    if keys is not None and not own_port:
        app.include_router(admin_router)
    access = settings.logging.access
    app.state.admin_app = _admin_app(app, clock, access) if own_port else None  # for serve
    app.add_exception_handler(TokenlaneError, _tokenlane_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_middleware(RequestContextMiddleware)
    if access:  # around everything, the bare-ASGI paths too
        app.entry = AccessLogMiddleware(app.dispatch, clock)
    if telemetry is not None:  # outermost: the span covers the access log's work too
        app.entry = telemetry.server_spans(app.entry, [CHAT_PATH, *app.surfaces])
    app.state.telemetry = telemetry
    return app


class Gateway(FastAPI):
    """FastAPI for the small endpoints; the chat endpoint, which every request of consequence
    hits, is served before FastAPI's per-request layers (see `server/endpoint.py`), and so are
    the translated surfaces (`server/surface.py`: Messages, Responses)."""

    def __init__(self, chat: ChatCompletions, surfaces: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chat = RequestContextMiddleware(chat)
        self.surfaces = {path: RequestContextMiddleware(s) for path, s in (surfaces or {}).items()}
        self.entry: Any = self.dispatch  # what a request meets first (the access log, if on)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.entry(scope, receive, send)

    async def dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == CHAT_PATH:
            await self.chat(scope, receive, send)
        elif scope["type"] == "http" and scope["path"] in self.surfaces:
            await self.surfaces[scope["path"]](scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def _each(*observers: Callable[[Observation], None]) -> Callable[[Observation], None]:
    def observe(observation: Observation) -> None:
        for observer in observers:
            observer(observation)

    return observe


# The surfaces each deployment endpoint carries: every translated surface rides on chat; the
# pass-through ones on their own endpoint (our extension of the model object; clients that do
# not know it ignore it).
_SURFACES = {"chat": ("chat.completions", "responses", "messages"),
             "embeddings": ("embeddings",), "completions": ("completions",)}


def _model_card(name: str, route: ModelRoute) -> dict[str, Any]:
    served = {e for d in route.deployments for e in d.endpoints}
    return {"id": name, "object": "model", "created": route.created, "owned_by": "tokenlane",
            "surfaces": [s for e, surfaces in _SURFACES.items() if e in served for s in surfaces]}


def _admin_app(gateway: FastAPI, clock: Clock, access: bool) -> FastAPI:
    """`/admin/` alone, for its own port (`keys.admin_port`): the gateway's state (keys, auth)
    and error shapes."""
    admin = FastAPI(title="tokenlane admin", docs_url=None, redoc_url=None, openapi_url=None)
    admin.state = gateway.state
    admin.include_router(admin_router)
    admin.add_exception_handler(TokenlaneError, _tokenlane_error)
    admin.add_exception_handler(HTTPException, _http_error)
    admin.add_middleware(RequestContextMiddleware)
    if access:
        admin.add_middleware(AccessLogMiddleware, clock=clock)  # outermost: added last
    return admin


async def _tokenlane_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TokenlaneError)
    return Response(orjson.dumps(exc.to_body()), exc.status, exc.headers(),
                    media_type="application/json")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = "not_found" if exc.status_code == 404 else None
    message = f"{request.method} {request.url.path}: {exc.detail}"
    body = error_body(message, "invalid_request_error", None, kind)
    return Response(orjson.dumps(body), exc.status_code, media_type="application/json")
