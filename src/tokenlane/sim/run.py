"""Running a simulator as a server of its own (`tokenlane sim --config FILE`), or beside the
gateway in the same event loop."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from ..clock import Clock
from .simulator import Simulator
from .spec import SimSettings

__all__ = ["run_simulator", "serve_in_thread", "serve_simulator"]

logger = logging.getLogger("tokenlane.sim")


def _server(settings: SimSettings, clock: Clock | None, log_level: str) -> uvicorn.Server:
    sim = Simulator(settings.providers, clock)
    config = uvicorn.Config(
        sim.app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        # A log line per request would cost more than the simulated request itself.
        access_log=False,
        lifespan="off",
    )
    root = f"http://{settings.host}:{settings.port}"
    for name in sim.names:
        logger.info("sim provider %s at %s", name, Simulator.base_url(root, name))
    return uvicorn.Server(config)


async def serve_simulator(
    settings: SimSettings,
    clock: Clock | None = None,
    *,
    sockets: list[socket.socket] | None = None,
    log_level: str = "info",
) -> None:
    """Serve the simulator in the running event loop until cancelled.

    Cancelling shuts uvicorn down cleanly (connections closed, then the task ends), so the
    gateway can run a simulator as one more task of its lifespan. `sockets`, already bound
    and listening, replace `settings.host`/`port` (tests bind port 0 first).
    """
    server = _server(settings, clock, log_level)
    serving = asyncio.ensure_future(server.serve(sockets))
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        server.should_exit = True
        await serving
        raise


def run_simulator(settings: SimSettings, *, log_level: str = "info") -> None:
    """Serve the simulator until interrupted (blocking; uvicorn picks uvloop if installed)."""
    _server(settings, None, log_level).run()


@contextmanager
def serve_in_thread(app: Any, *, log_level: str = "warning") -> Iterator[str]:
    """Serve an ASGI app (a `Simulator().app`, a gateway) with uvicorn in a daemon thread on
    127.0.0.1, on a free port; yields its base URL. For tests, examples and benchmarks.

    The socket is listening before the thread starts, so callers can connect at once
    (connections wait in the backlog until uvicorn accepts): no polling for readiness.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    # log_config=None: leave the host process's logging alone (uvicorn's default dictConfig
    # would replace its handlers); uvicorn's records propagate to whatever the host set up.
    config = uvicorn.Config(app, log_level=log_level, log_config=None, access_log=False,
                            lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
