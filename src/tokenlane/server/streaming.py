"""Server-Sent Events out: chunks as they come, one error event if the upstream breaks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from ..routing.stream import ChatStream, StreamBroken

__all__ = ["SSE_HEADERS", "sse_body"]

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


async def sse_body(stream: ChatStream) -> AsyncIterator[bytes]:
    dumps = orjson.dumps
    try:
        async for chunk in stream:
            yield b"data: " + dumps(chunk) + b"\n\n"
        yield b"data: [DONE]\n\n"
    except StreamBroken as exc:
        # Output already reached the client: no fallback, no silent end. One error event.
        yield b"data: " + dumps(exc.to_body()) + b"\n\n"
    finally:
        await stream.aclose()
