"""`create_app(settings)`: the gateway's FastAPI app, with all state built here, none global."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from ..clock import Clock, MonotonicClock
from ..config import Settings
from ..errors import TokenlaneError, error_body
from ..metrics import Metrics
from ..routing.circuit import CircuitBoard, CircuitSettings
from ..routing.engine import Engine
from ..routing.hedge import HedgeBudget
from ..routing.probes import ProbeSettings, Prober
from ..routing.planner import PlannerSettings
from ..stats.store import StatsSettings, StatsStore
from ..types import Catalog
from .auth import Authenticator
from .middleware import RequestContextMiddleware
from .routes import router

__all__ = ["create_app"]


def create_app(
    settings: Settings,
    *,
    env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    catalog: Catalog | None = None,
    rng: random.Random | None = None,
    source: str = "<config>",
) -> FastAPI:
    """Build the gateway. Raises ConfigError when settings and environment do not fit."""
    env = os.environ if env is None else env
    catalog = catalog or settings.resolve(env, source=source)
    clock = clock or MonotonicClock()
    r = settings.routing
    stats = StatsStore(clock, StatsSettings(half_life_s=r.half_life_s,
                                            stale_after_s=r.stale_after_s))
    deployment_ids = [d.id for m in catalog.models.values() for d in m.deployments]
    metrics = Metrics(lambda: stats.snapshot(deployment_ids))
    circuits = CircuitBoard(clock, CircuitSettings(**r.circuit.model_dump()))
    metrics.watch_circuits(circuits, deployment_ids)
    engine = Engine(
        catalog,
        clock=clock,
        stats=stats,
        planner=PlannerSettings(exploration_share=r.exploration_share),
        circuits=circuits,
        hedge_budget=HedgeBudget(r.hedge_budget),
        rng=rng or random.Random(),
        on_observation=metrics.observe,
        on_overhead=metrics.overhead.observe,
        on_hedge=metrics.on_hedge,
    )

    prober = Prober(engine, ProbeSettings(**r.probes.model_dump()))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        probing = asyncio.create_task(prober.run()) if prober.settings.enabled else None
        try:
            yield
        finally:
            if probing is not None:
                probing.cancel()
            await engine.aclose()

    app = FastAPI(title="tokenlane", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.settings = settings
    app.state.engine = engine
    app.state.metrics = metrics
    app.state.prober = prober
    app.state.auth = Authenticator(settings.server.auth, env)
    app.state.max_body_bytes = settings.server.max_body_bytes
    app.state.model_cards = [_model_card(name) for name in catalog.models]
    app.include_router(router)
    app.add_exception_handler(TokenlaneError, _tokenlane_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_middleware(RequestContextMiddleware)
    return app


def _model_card(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "tokenlane"}


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
