"""Reading an upstream body: straight from aiohttp on the aiohttp transport, the same bytes
as httpx's own reading on either transport."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.loopback import http_app, serve
from tokenlane.providers.transport import BODY_ERRORS, body_reader, build_transport
from tokenlane.types import Provider

PIECES = [b"data: one\n\n", b"data: two\n\n", b"data: [DONE]\n\n"]


async def _stream(scope: dict[str, Any], body: bytes, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream")]})
    for piece in PIECES:
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _read(url: str, kind: str) -> tuple[str, bytes]:
    transport = build_transport(Provider(name="p", base_url=url, api_key=None), kind)
    try:
        response = await transport.handle_async_request(httpx.Request("POST", f"{url}/x",
                                                                      content=b"{}"))
        read = body_reader(response)
        body = b""
        for _ in range(100):  # bounded: three pieces, then the end
            if not (piece := await read()):
                break
            body += piece
        await response.aclose()
        return getattr(read, "__name__", ""), body
    finally:
        await transport.aclose()


@pytest.mark.parametrize("kind", ["aiohttp", "httpx"])
def test_the_body_arrives_whole_on_either_transport(kind: str) -> None:
    with serve(http_app(_stream)) as url:
        reader, body = asyncio.run(_read(url, kind))
    assert body == b"".join(PIECES)
    # On aiohttp, no iterator layers in between: aiohttp's own read (see body_reader).
    assert (reader == "readany") == (kind == "aiohttp")


def test_a_connection_lost_mid_body_raises_a_body_error() -> None:
    async def cut(scope: dict[str, Any], body: bytes, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"),
                                (b"content-length", b"1000")]})
        await send({"type": "http.response.body", "body": PIECES[0], "more_body": False})

    async def main(url: str) -> BaseException | None:
        transport = build_transport(Provider(name="p", base_url=url, api_key=None), "aiohttp")
        try:
            response = await transport.handle_async_request(
                httpx.Request("POST", f"{url}/x", content=b"{}"))
            read = body_reader(response)
            try:
                for _ in range(100):
                    if not await read():
                        return None
            except BODY_ERRORS as exc:
                return exc
            finally:
                await response.aclose()
            return None
        finally:
            await transport.aclose()

    with serve(http_app(cut)) as url:
        assert isinstance(asyncio.run(main(url)), BODY_ERRORS)
