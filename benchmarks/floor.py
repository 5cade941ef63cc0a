"""The bare pass-through floor: what any Python proxy on this stack pays per request.

    .venv/bin/python benchmarks/floor.py --upstream http://127.0.0.1:9100 --port 9300

A minimal Starlette app that forwards `POST /{provider}/v1/chat/completions` to the same path
on the upstream (the benchmark's upstream serves every provider under its name) through an
`httpx_aiohttp.AiohttpTransport`, called directly as the gateway calls it (providers/
transport.py), and streams the response bytes back untouched: no auth, no parsing, no routing,
no measuring. `POST /streamed/{provider}/v1/chat/completions` is the floor of a non-streaming
request served from an upstream stream, as the gateway serves every one: the upstream's stream
read to its end, unparsed. `POST /measured/{provider}/v1/chat/completions` is the least a
relay that measures every request must do (issue 17's decision): every event's JSON parsed, its
output counted and stamped, the model renamed; a stream's chunks written back re-encoded, a
non-streaming answer assembled from them. No checking of the chunks' shape, no routing, no
auth, no metrics. Served like the gateway (uvicorn, uvloop, httptools, no access log), so
gateway CPU / floor CPU is the price of tokenlane's work, and gateway CPU / measured floor CPU
the price of what tokenlane does beyond measuring.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

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

    async def as_stream(request: Request, prefix: str) -> tuple[dict[str, Any], Any]:
        """The client's body, and the upstream's response to it asked as a stream (with the
        usage), at the path under `prefix`."""
        body = orjson.loads(await request.body())
        upstream_body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        upstream_request = httpx.Request(
            "POST", root + request.url.path.removeprefix(prefix),
            content=orjson.dumps(upstream_body), headers={"content-type": "application/json"},
            extensions={"timeout": timeouts})
        return body, await transport.handle_async_request(upstream_request)

    async def streamed_completions(request: Request) -> Response:
        """A non-streaming request the way the gateway serves one (issue 17's decision: every
        request is measured, so it reads the answer as a stream): asked of the upstream with
        `stream: true`, read to its end, handed back as it came. No parsing of the events,
        no assembling: what reading the upstream's stream costs, and nothing else."""
        _, response = await as_stream(request, "/streamed")
        try:
            data = await response.aread()
        finally:
            await response.aclose()
        return Response(data, status_code=response.status_code,
                        media_type=response.headers.get("content-type"))

    async def measured_completions(request: Request) -> Response:
        """Every event parsed and measured, as any relay that measures must (see the module
        docstring): the floor under tokenlane's own measuring."""
        body, response = await as_stream(request, "/measured")
        meter = _Meter(body.get("model", ""))
        if body.get("stream"):
            async def relay() -> AsyncIterator[bytes]:
                try:
                    async for piece in response.aiter_raw():
                        yield b"".join([b"data: " + orjson.dumps(c) + b"\n\n"
                                        for c in meter.read(piece)])
                    yield b"data: [DONE]\n\n"
                finally:
                    await response.aclose()
            return StreamingResponse(relay(), media_type="text/event-stream")
        try:
            async for piece in response.aiter_raw():
                meter.read(piece)
        finally:
            await response.aclose()
        return Response(orjson.dumps(meter.completion()), media_type="application/json")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await transport.aclose()

    routes = [Route("/{provider}/v1/chat/completions", chat_completions, methods=["POST"]),
              Route("/streamed/{provider}/v1/chat/completions", streamed_completions,
                    methods=["POST"]),
              Route("/measured/{provider}/v1/chat/completions", measured_completions,
                    methods=["POST"])]
    return Starlette(routes=routes, lifespan=lifespan)


class _Meter:
    """One answer's events, parsed: tokens counted and stamped, text kept, model renamed."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.pending = b""
        self.tokens = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.text: list[str] = []
        self.finish: str | None = None
        self.usage: dict[str, Any] | None = None
        self.head: dict[str, Any] = {}

    def read(self, piece: bytes) -> list[dict[str, Any]]:
        events = (self.pending + piece).split(b"\n\n")
        self.pending = events.pop()
        now = time.monotonic()
        chunks = []
        for event in events:
            data = event.removeprefix(b"data: ")
            if data == b"[DONE]":
                continue
            chunk = orjson.loads(data)
            chunk["model"] = self.model
            self.usage = chunk.get("usage") or self.usage
            for choice in chunk.get("choices", ()):
                content = (choice.get("delta") or {}).get("content")
                if content:
                    self.tokens += 1
                    self.first_at = self.first_at or now
                    self.last_at = now
                    self.text.append(content)
                self.finish = choice.get("finish_reason") or self.finish
            if not self.head:
                self.head = {"id": chunk.get("id"), "created": chunk.get("created")}
            chunks.append(chunk)
        return chunks

    def completion(self) -> dict[str, Any]:
        return {**self.head, "object": "chat.completion", "model": self.model,
                "choices": [{"index": 0, "finish_reason": self.finish, "logprobs": None,
                             "message": {"role": "assistant", "content": "".join(self.text)}}],
                "usage": self.usage}


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
