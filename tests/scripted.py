"""A hostile upstream for tests: answers every chat request 200 `text/event-stream` with
whatever bytes its script yields, however malformed.

    upstream = Scripted(lambda: pieces(b"data: {\"hello\": \"world\"}\n\n"))
    with serve(upstream.app) as url: ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from tokenlane.sim import SimProviderSpec

from .harness import Stack, stack
from .loopback import http_app, serve

Script = Callable[[], AsyncIterator[bytes]]

__all__ = ["Scripted", "chunk", "endless", "pieces", "scripted_then_sim"]


def chunk(delta: dict[str, Any] | None = None, *, finish: str | None = None,
          **extra: Any) -> bytes:
    """One SSE event carrying a chat.completion.chunk (fields in `extra` replace the defaults)."""
    body: dict[str, Any] = {
        "id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "up",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
    }
    body.update(extra)
    return b"data: " + orjson.dumps(body) + b"\n\n"


def pieces(*parts: bytes) -> Script:
    """A script that sends `parts` one write each."""

    async def script() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    return script


def endless(head: Iterable[bytes], filler: bytes, limit: int) -> Script:
    """`head`, then `filler` over and over: up to `limit` bytes (a bound, so a test that fails
    cannot run forever), or until the reader goes away."""

    async def script() -> AsyncIterator[bytes]:
        sent = 0
        for part in head:
            yield part
        while sent < limit:
            sent += len(filler)
            yield filler

    return script


class Scripted:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests = 0
        self.app = http_app(self._handle)

    async def _handle(self, scope: dict[str, Any], body: bytes, send: Any) -> None:
        self.requests += 1
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        async for part in self.script():
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


GOOD = SimProviderSpec(name="good", ttft_s=0, tokens_per_s=1000, output_tokens=8, time_scale=0)


@contextmanager
def scripted_then_sim(upstream: Scripted, **config: Any) -> Iterator[Stack]:
    """The gateway with model `m`: the scripted upstream (`bad`) first, a healthy simulated
    provider (`good`) as its fallback."""
    with serve(upstream.app) as url:
        extra = {"providers": {"bad": {"base_url": f"{url}/v1"}}, **config.pop("extra", {})}
        with stack([GOOD], {"m": ["bad", "good"]}, extra=extra,
                   model_extra={"policy": "order"}, **config) as s:
            yield s
