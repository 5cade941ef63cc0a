"""Run a real ASGI app on a real loopback socket for the duration of a test."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tokenlane.sim import serve_in_thread as serve
from tokenlane.sim.responses import read_body

__all__ = ["http_app", "serve"]

Handler = Callable[[dict[str, Any], bytes, Any], Awaitable[None]]


def http_app(handler: Handler) -> Callable[[dict[str, Any], Any, Any], Awaitable[None]]:
    """A bare ASGI app for a test upstream or proxy: lifespan answered, each request's body
    read whole, then `handler(scope, body, send)`."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = await read_body(receive)
        if body is not None:
            await handler(scope, body, send)

    return app
