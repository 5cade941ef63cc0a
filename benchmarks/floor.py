"""The bare pass-through floor: what any Python proxy on this stack pays per request.

    .venv/bin/python benchmarks/floor.py --upstream http://127.0.0.1:9100 --port 9300

A minimal Starlette app that forwards `POST /{provider}/v1/chat/completions` to the same path
on the upstream (the benchmark's upstream serves every provider under its name) through an
`httpx_aiohttp.AiohttpTransport`, called directly as the gateway calls it (providers/
transport.py), and streams the response bytes back untouched: no auth, no parsing, no routing,
no measuring. `POST /streamed/{provider}/v1/chat/completions` is the floor of a non-streaming
request served from an upstream stream, as the gateway serves every one: the upstream's stream
read to its end, unparsed. Served like the gateway (uvicorn,
uvloop, httptools, no access log), so gateway CPU / floor CPU is the price of tokenlane's work.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import orjson
import uvicorn
from httpx_aiohttp import AiohttpTransport
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

_FORWARDED = ("content-type", "cache-control")


def build_app(upstream: str, max_connections: int = 512) -> Starlette:
    # The same pool limits the gateway gives each provider (transport.py), so neither side
    # queues on its pool at high concurrency.
    limits = httpx.Limits(max_connections=max_connections,
                          max_keepalive_connections=max_connections, keepalive_expiry=60)
    transport = AiohttpTransport(limits=limits)
    timeouts = httpx.Timeout(30.0, read=None).as_dict()
    root = upstream.rstrip("/")

    async def chat_completions(request: Request) -> StreamingResponse:
        body = await request.body()
        upstream_request = httpx.Request(
            "POST", root + request.url.path, content=body,
            headers={"content-type": "application/json"}, extensions={"timeout": timeouts})
        response = await transport.handle_async_request(upstream_request)
        headers = {k: v for k, v in response.headers.items() if k in _FORWARDED}
        return StreamingResponse(response.aiter_raw(), status_code=response.status_code,
                                 headers=headers, background=BackgroundTask(response.aclose))

    async def streamed_completions(request: Request) -> Response:
        """A non-streaming request the way the gateway serves one (issue 17's decision: every
        request is measured, so it reads the answer as a stream): asked of the upstream with
        `stream: true`, read to its end, handed back as it came. No parsing of the events,
        no assembling: what reading the upstream's stream costs, and nothing else."""
        body = orjson.loads(await request.body())
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        path = request.url.path.removeprefix("/streamed")
        upstream_request = httpx.Request(
            "POST", root + path, content=orjson.dumps(body),
            headers={"content-type": "application/json"}, extensions={"timeout": timeouts})
        response = await transport.handle_async_request(upstream_request)
        try:
            data = await response.aread()
        finally:
            await response.aclose()
        return Response(data, status_code=response.status_code,
                        media_type=response.headers.get("content-type"))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await transport.aclose()

    routes = [Route("/{provider}/v1/chat/completions", chat_completions, methods=["POST"]),
              Route("/streamed/{provider}/v1/chat/completions", streamed_completions,
                    methods=["POST"])]
    return Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="the upstream's root URL")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9300)
    parser.add_argument("--max-connections", type=int, default=512)
    args = parser.parse_args()
    uvicorn.run(build_app(args.upstream, args.max_connections), host=args.host, port=args.port,
                loop="uvloop", http="httptools", log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
