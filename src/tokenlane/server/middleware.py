"""Pure-ASGI middleware: request ids, and a last-resort error boundary.

Pure ASGI (not BaseHTTPMiddleware) so streamed responses pass through without buffering.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from ..errors import error_body
from ..tracebacks import one_line

__all__ = ["RequestContextMiddleware"]

log = logging.getLogger("tokenlane.server")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_INTERNAL_ERROR = orjson.dumps(
    error_body("The server had an error while processing your request.", "server_error")
)


class RequestContextMiddleware:
    """Gives every HTTP request an id (the client's `x-request-id` if sane) and echoes it;
    notes both the id and the response's status in `scope["state"]`.

    Any exception that escapes the app becomes an OpenAI-shaped 500 when no response has
    started: clients never see a traceback. The log gets one line naming the exception and
    where it was raised (see tracebacks.py).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                request_id = candidate if _SAFE_ID.match(candidate) else None
                break
        # 128 random bits in hex, as uuid4().hex but without building a UUID (a third of the
        # cost, per request).
        request_id = request_id or os.urandom(16).hex()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())
        started = False

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                # For the access log around us: it reads the status here instead of wrapping
                # `send` a second time (a call less per streamed write).
                state["status"] = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            log.error("unhandled error in request %s: %s", request_id, one_line(exc))
            if started:
                raise
            await send_with_id({
                "type": "http.response.start", "status": 500,
                "headers": [(b"content-type", b"application/json")],
            })
            await send_with_id({"type": "http.response.body", "body": _INTERNAL_ERROR})
