"""Server-Sent Events out: chunks as they come, one error event if the upstream breaks."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import orjson

from ..errors import TokenlaneError
from ..routing.stream import ChatStream, StreamBroken

__all__ = ["SSE_HEADERS", "sse_body", "sse_error"]

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


async def sse_body(stream: ChatStream) -> AsyncGenerator[bytes, None]:
    dumps = orjson.dumps
    try:
        # Chunks that arrived in one upstream read leave in one write: nothing waits for
        # anything that has not arrived, but a burst costs one send instead of one per event.
        async for batch in stream.batches():
            yield b"".join([b"data: " + dumps(chunk) + b"\n\n" for chunk in batch])
        yield b"data: [DONE]\n\n"
    except StreamBroken as exc:
        # Output already reached the client: no fallback, no silent end. One error event.
        yield sse_error(exc)
    finally:
        await stream.aclose()


def sse_error(exc: TokenlaneError) -> bytes:
    """The final event of a stream that cannot go on: OpenAI's error object (the openai SDK
    raises it as `APIError`)."""
    return b"data: " + orjson.dumps(exc.to_body()) + b"\n\n"
