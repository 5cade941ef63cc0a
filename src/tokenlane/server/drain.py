"""Graceful shutdown: requests in flight get `server.drain_timeout_s` to finish, then an answer.

uvicorn's own graceful timeout ends with `task.cancel()` on every request still running: a
stream then stops mid-answer without an error event, and uvicorn logs one `Exception in ASGI
application` traceback per request. Instead, each request the gateway works on registers a
*stop* future here; when the drain time is up, `Drain.expire` resolves them all with
`GatewayShuttingDown`, and the endpoints (chat.py, surface.py) turn that into the client's
answer: the final SSE error event for a stream already under way, a 503 otherwise. The log
gets one line for all of them.

`DrainingServer` starts the drain clock when uvicorn starts shutting down. uvicorn's own
timeout stays, set `BACKSTOP_S` longer, for a request that somehow ignores its stop.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
from typing import Any

import uvicorn

from ..errors import GatewayShuttingDown

__all__ = ["BACKSTOP_S", "Drain", "DrainingServer", "draining_server"]

log = logging.getLogger("tokenlane.server")

# Time for the requests cut at the drain deadline to send their last bytes and close.
BACKSTOP_S = 5.0


class Drain:
    """The stop futures of the requests in flight, resolved together when the drain expires."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.expired = False
        self._stops: set[asyncio.Future[BaseException]] = set()

    def watch(self, stop: asyncio.Future[BaseException]) -> None:
        """Resolve `stop` with `GatewayShuttingDown` when the drain expires (at once if it has)."""
        if self.expired:
            _resolve(stop, _shutting_down())
        else:
            self._stops.add(stop)

    def forget(self, stop: asyncio.Future[BaseException]) -> None:
        """The request is over: nothing to stop."""
        self._stops.discard(stop)

    def begin(self) -> None:
        """Shutdown started: expire after `timeout_s` (event-loop time)."""
        asyncio.get_running_loop().call_later(self.timeout_s, self.expire)

    def expire(self) -> None:
        """End every request still in flight with `GatewayShuttingDown`."""
        self.expired = True
        open_ = [stop for stop in self._stops if not stop.done()]
        self._stops.clear()
        if open_:
            log.warning("drain timeout (%gs) reached: ending %d open request(s) with "
                        "gateway_shutting_down", self.timeout_s, len(open_))
        for stop in open_:
            _resolve(stop, _shutting_down())


def _shutting_down() -> GatewayShuttingDown:
    return GatewayShuttingDown(
        "The gateway is shutting down and could not finish this request in time; retry it.")


def _resolve(stop: asyncio.Future[BaseException], exc: BaseException) -> None:
    if not stop.done():
        stop.set_result(exc)


class DrainingServer(uvicorn.Server):
    """uvicorn's server, with the gateway's drain started when shutdown begins."""

    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self.drain = drain

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.drain.begin()
        await super().shutdown(sockets)


def draining_server(app: Any, *, server_class: type[DrainingServer] = DrainingServer,
                    **config: Any) -> DrainingServer:
    """A server for the gateway `app` (from `create_app`), uvicorn `config` as given, with
    uvicorn's graceful timeout as the backstop behind the app's drain."""
    drain: Drain = app.state.drain
    return server_class(
        uvicorn.Config(app, timeout_graceful_shutdown=math.ceil(drain.timeout_s + BACKSTOP_S),
                       **config),
        drain)
