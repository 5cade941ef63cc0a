"""HTTP handlers: parse, authorize, hand to the engine, present. No routing logic here."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from ..errors import BodyTooLarge, ModelNotFound
from ..request import parse_chat_request
from ..routing.decision import Decision
from ..routing.engine import Engine
from .auth import Authenticator
from .streaming import SSE_HEADERS, sse_body

__all__ = ["router"]

router = APIRouter()
T = TypeVar("T")


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def _engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def _authorize(request: Request) -> None:
    auth: Authenticator = request.app.state.auth
    auth.check(request.headers.get("authorization"))


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    _authorize(request)
    engine = _engine(request)
    received_at = engine.clock.now()
    raw = await _read_body(request, request.app.state.max_body_bytes)
    chat = parse_chat_request(raw, request.headers.get("x-tokenlane-provider"))
    chat.received_at = received_at
    if not chat.stream:
        result = await _unless_disconnected(request, engine.complete(chat))
        return _json(result.body, headers=_route_headers(result.deployment.id, result.decision))
    stream = await _unless_disconnected(request, engine.open(chat))
    headers = {**SSE_HEADERS, **_route_headers(stream.deployment.id, stream.decision)}
    return StreamingResponse(sse_body(stream), media_type="text/event-stream", headers=headers)


def _route_headers(deployment: str, decision: Decision | None) -> dict[str, str]:
    headers = {"x-tokenlane-deployment": deployment}
    if decision is not None:
        headers["x-tokenlane-route"] = decision.header()
    return headers


@router.get("/v1/router/stats")
async def router_stats(request: Request) -> Response:
    _authorize(request)
    return _json(_engine(request).stats_report())


@router.get("/metrics")
async def metrics(request: Request) -> Response:
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


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"Request body is larger than the limit of {limit} bytes.")
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise BodyTooLarge(f"Request body is larger than the limit of {limit} bytes.")
        parts.append(part)
    return b"".join(parts)


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Run `work`, cancelling it if the client goes away first (which cancels the upstream)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        raise asyncio.CancelledError("client disconnected")
    return task.result()


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
