"""The access log: one line per HTTP request on every route, on the `tokenlane.access` logger.

Pure ASGI around the whole app (the bare-ASGI chat and surface paths and FastAPI's routes
alike), so streamed answers pass through unbuffered and the line is written when the last
byte has gone out: method, path (never the query string, which could carry anything), status,
duration, request id, client address and the key id when the request authenticated. The
status and the request id are what RequestContextMiddleware (inside this, on every route)
noted in the scope's state; not wrapping `send` a second time saves a call per streamed
write. The key is known only to the handler, so authentication notes it (`note_key`) in a
per-request holder this middleware sets in a context variable; the secret itself never
reaches this module."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from starlette.types import Receive, Scope, Send

from ..clock import Clock

__all__ = ["AccessLogMiddleware", "access_fields", "note_key"]

log = logging.getLogger("tokenlane.access")

MASTER = "master"  # the key id noted for a master key (its secret is no one's id)

# The request's holder for its key id; tasks the handler starts inherit it.
_KEY: ContextVar[list[str | None] | None] = ContextVar("tokenlane_access_key", default=None)


def note_key(key_id: str) -> None:
    """The request authenticated as `key_id` (a virtual key's id, or MASTER)."""
    holder = _KEY.get()
    if holder is not None:
        holder[0] = key_id


def access_fields(scope: Scope, status: int, duration_s: float, request_id: str | None,
                  key_id: str | None) -> dict[str, Any]:
    client = scope.get("client")
    return {"method": scope.get("method"), "path": scope.get("path"), "status": status,
            "duration_ms": round(duration_s * 1000, 3), "request_id": request_id,
            "client": f"{client[0]}:{client[1]}" if client else None, "key_id": key_id}


def _text(f: dict[str, Any]) -> str:
    return (f"{f['client'] or '-'} {f['method']} {f['path']} {f['status']} "
            f"{f['duration_ms']}ms id={f['request_id'] or '-'} key={f['key_id'] or '-'}")


class AccessLogMiddleware:
    def __init__(self, app: Any, clock: Clock) -> None:
        self.app = app
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = self._clock.now()
        holder: list[str | None] = [None]
        token = _KEY.set(holder)
        state = scope.setdefault("state", {})
        try:
            await self.app(scope, receive, send)
        finally:
            _KEY.reset(token)
            if log.isEnabledFor(logging.INFO):
                # RequestContextMiddleware, inside every route, noted the id and the status;
                # none noted: the app raised before answering, and the server sends a 500.
                fields = access_fields(scope, state.get("status", 500),
                                       self._clock.now() - start, state.get("request_id"),
                                       holder[0])
                log.info("%s", _text(fields), extra={"fields": fields})
