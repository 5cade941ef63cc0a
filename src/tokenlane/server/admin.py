"""`/admin/`: virtual keys and spend, for master keys only (tokenlane.keys).

    POST   /admin/keys                 create; the answer carries the secret, the only time
    GET    /admin/keys                 list (prefixes, never secrets or hashes)
    GET    /admin/keys/{id}            one key, with its spend per period and what is left
    PATCH  /admin/keys/{id}            change limits, models, metadata...
    POST   /admin/keys/{id}/revoke     refused from the next request on
    POST   /admin/keys/{id}/rotate     a new secret; the old one stops working at once
    GET    /admin/requests             the latest ledger rows, newest first: ?key_id= &limit=
    GET    /admin/spend                ledger totals: ?key_id= &model= &deployment= &period=
                                       day|month|total (or &since= &until=, Unix seconds)
                                       &group_by=key|model|deployment|day

Errors are OpenAI-shaped, as everywhere.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from ..errors import InvalidRequest
from ..keys import KeyService, KeySpec, SpendQuery, VirtualKey
from ..keys.budgets import period_start
from ..keys.records import PERIODS
from ..keys.store import GROUPS
from ..yamlfile import describe_validation_error
from .auth import Authenticator

__all__ = ["admin_router"]

admin_router = APIRouter(prefix="/admin")


def _keys(request: Request) -> KeyService:
    auth: Authenticator = request.app.state.auth
    auth.check_master(request.headers.get("authorization"), request.headers.get("x-api-key"))
    return request.app.state.keys  # type: ignore[no-any-return]


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


async def _object(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        raise InvalidRequest("We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


def _spec(data: dict[str, Any]) -> KeySpec:
    try:
        return KeySpec.model_validate(data)
    except ValidationError as exc:
        loc, message = describe_validation_error(exc)
        raise InvalidRequest(message, param=".".join(map(str, loc)) or None,
                             code="invalid_value") from None


async def _shown(keys: KeyService, key: VirtualKey, secret: str | None = None
                 ) -> dict[str, Any]:
    out = key.public()
    out["usage"] = await keys.usage(key.id)
    if secret is not None:
        out["secret"] = secret  # shown once: only its hash is kept
    return out


@admin_router.post("/keys")
async def create_key(request: Request) -> Response:
    keys = _keys(request)
    key, secret = await keys.create(_spec(await _object(request)))
    return _json(await _shown(keys, key, secret), 201)


@admin_router.get("/keys")
async def list_keys(request: Request) -> Response:
    keys = _keys(request)
    return _json({"object": "list", "data": [await _shown(keys, k) for k in keys.list()]})


@admin_router.get("/keys/{key_id}")
async def show_key(request: Request, key_id: str) -> Response:
    keys = _keys(request)
    return _json(await _shown(keys, keys.get(key_id)))


@admin_router.patch("/keys/{key_id}")
async def update_key(request: Request, key_id: str) -> Response:
    keys = _keys(request)
    changes = await _object(request)
    _spec(changes)  # the same 400s as create, naming the field
    return _json(await _shown(keys, await keys.update(key_id, changes)))


@admin_router.post("/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str) -> Response:
    keys = _keys(request)
    return _json(await _shown(keys, await keys.revoke(key_id)))


@admin_router.post("/keys/{key_id}/rotate")
async def rotate_key(request: Request, key_id: str) -> Response:
    keys = _keys(request)
    key, secret = await keys.rotate(key_id)
    return _json(await _shown(keys, key, secret))


@admin_router.get("/spend")
async def spend(request: Request) -> Response:
    keys = _keys(request)
    query = _spend_query(dict(request.query_params), keys.now())
    rows = await keys.spend(query)
    total = await keys.spend(SpendQuery(query.key_id, query.model, query.deployment,
                                        query.since, query.until))
    return _json({"object": "spend", "since": query.since, "until": query.until,
                  "group_by": query.group_by, "total": total[0], "data": rows})


@admin_router.get("/requests")
async def requests(request: Request) -> Response:
    keys = _keys(request)
    limit = _number(dict(request.query_params), "limit") or 100
    if not 1 <= limit <= 10_000:
        raise InvalidRequest("limit: from 1 to 10000", param="limit")
    rows = await keys.requests(int(limit), request.query_params.get("key_id"))
    return _json({"object": "list", "data": [r.to_dict() for r in rows]})


_SPEND_PARAMS = ("key_id", "model", "deployment", "period", "since", "until", "group_by")


def _spend_query(params: dict[str, str], now: float) -> SpendQuery:
    unknown = sorted(set(params) - set(_SPEND_PARAMS))
    if unknown:
        raise InvalidRequest(f"Unknown parameter(s) {', '.join(unknown)} (known: "
                             f"{', '.join(_SPEND_PARAMS)})", param=unknown[0])
    since, until = _number(params, "since"), _number(params, "until")
    period = params.get("period")
    if period is not None:
        if period not in PERIODS:
            raise InvalidRequest(f"period: one of {', '.join(PERIODS)}", param="period")
        since = period_start(period, now)  # type: ignore[arg-type]
    group = params.get("group_by")
    if group is not None and group not in GROUPS:
        raise InvalidRequest(f"group_by: one of {', '.join(GROUPS)}", param="group_by")
    return SpendQuery(params.get("key_id"), params.get("model"), params.get("deployment"),
                      since, until, group)  # type: ignore[arg-type]


def _number(params: dict[str, str], name: str) -> float | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise InvalidRequest(f"{name}: a number", param=name) from None
