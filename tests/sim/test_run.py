"""Serving a simulator from settings, the way `tokenlane sim` and `tokenlane serve` do."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import httpx

from tokenlane.sim import SimProviderSpec, SimSettings, serve_simulator


async def test_serve_simulator_serves_settings_and_stops_on_cancel() -> None:
    settings = SimSettings(providers=[SimProviderSpec(name="swift", time_scale=0)])
    # Bound and listening before the server starts, so the request below just waits in the
    # backlog: no polling for readiness.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    root = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = asyncio.create_task(serve_simulator(settings, sockets=[sock], log_level="warning"))
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            reply = await http.post(f"{root}/swift/v1/chat/completions", json=body)
        assert reply.status_code == 200
        assert reply.json()["usage"]["completion_tokens"] == 64
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(server, timeout=10)
        sock.close()
    assert server.cancelled()
