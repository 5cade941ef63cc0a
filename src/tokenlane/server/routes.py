"""The small endpoints (models, stats, metrics, health). Chat completions: `chat.py`."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..errors import ModelNotFound
from ..routing.engine import Engine
from .auth import Authenticator

__all__ = ["router"]

router = APIRouter()


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def _engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def _authorize(request: Request) -> None:
    auth: Authenticator = request.app.state.auth
    auth.check(request.headers.get("authorization"))


def _authorize_operator(request: Request) -> None:
    """Fleet-wide numbers (every deployment's estimates, every key's spend in /metrics) are
    the operator's: a master key. A virtual key is one tenant's and gets a 403."""
    auth: Authenticator = request.app.state.auth
    auth.check_master(request.headers.get("authorization"))


@router.get("/v1/router/stats")
async def router_stats(request: Request) -> Response:
    _authorize_operator(request)
    report = _engine(request).stats_report()
    # Per provider, beside the models' estimates: waits for a pooled upstream connection.
    report["providers"] = {name: waits.summary()
                           for name, waits in request.app.state.pool_waits.items()}
    shared = request.app.state.shared  # replicas sharing state (None: local)
    report["state"] = shared.report() if shared is not None else {"backend": "local"}
    return _json(report)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    if not request.app.state.settings.server.metrics.public:
        _authorize_operator(request)
    body = request.app.state.metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/v1/models")
async def list_models(request: Request) -> Response:
    _authorize(request)
    return _json({"object": "list", "data": request.app.state.model_cards})


@router.get("/v1/models/{model_id:path}")
async def get_model(request: Request, model_id: str) -> Response:
    _authorize(request)
    for card in request.app.state.model_cards:
        if card["id"] == model_id:
            return _json(card)
    raise ModelNotFound(f"The model `{model_id}` does not exist.", param="model")


@router.get("/healthz")
async def healthz() -> Response:
    return _json({"status": "ok"})
