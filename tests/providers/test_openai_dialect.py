"""What the OpenAI dialect puts on the wire, seen by a real upstream on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.loopback import http_app, serve
from tokenlane.providers.base import UpstreamBadResponse
from tokenlane.providers.openai import OpenAIDialect
from tokenlane.types import Provider

STREAM = (b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
          b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n'
          b"data: [DONE]\n\n")


class Recorder:
    """An upstream that records each request's path, headers and body, then streams STREAM,
    setting a cookie a shared cookie jar would send back."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.stream = STREAM

    async def handle(self, scope: dict[str, Any], body: bytes, send: Any) -> None:
        self.requests.append({
            "path": scope["path"],
            "headers": {k.decode().lower(): v.decode() for k, v in scope["headers"]},
            "body": orjson.loads(body),
        })
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream"), (b"set-cookie", b"session=tenant-a; Path=/"),
        ]})
        await send({"type": "http.response.body", "body": self.stream})


@pytest.fixture
def upstream() -> Iterator[tuple[Recorder, str]]:
    recorder = Recorder()
    with serve(http_app(recorder.handle)) as url:
        yield recorder, url


def test_request_on_the_wire(upstream: tuple[Recorder, str]) -> None:
    recorder, url = upstream
    # A host name, not an IP: cookie jars ignore cookies from IP addresses.
    host_url = url.replace("127.0.0.1", "localhost")
    provider = Provider(name="p", base_url=f"{host_url}/v1/", api_key="sk-secret",
                        headers=(("x-org", "acme"),))

    async def twice() -> list[list[dict[str, Any]]]:
        dialect = OpenAIDialect(provider)
        try:
            chunks = []
            for _ in range(2):
                stream = await dialect.open_stream({"model": "up", "messages": [], "stream": True})
                chunks.append([chunk async for chunk in stream])
                assert stream.completed
            return chunks
        finally:
            await dialect.aclose()

    chunks = asyncio.run(twice())
    assert [c[0]["choices"][0]["delta"]["content"] for c in chunks] == ["hi", "hi"]
    first, second = recorder.requests
    assert first["path"] == "/v1/chat/completions"  # base URL joined like httpx's base_url
    assert first["body"] == {"model": "up", "messages": [], "stream": True}
    headers = first["headers"]
    assert headers["authorization"] == "Bearer sk-secret"
    assert headers["x-org"] == "acme"
    assert headers["accept"] == "text/event-stream"
    # SSE is read frame by frame from the raw bytes: never ask for a compressed stream.
    assert headers["accept-encoding"] == "identity"
    assert headers["user-agent"].startswith("tokenlane")
    assert headers["content-type"] == "application/json"
    # No cookie jar: what one tenant's upstream answer set never rides on the next request.
    assert "cookie" not in second["headers"]


GOOD = b'{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}'
WRONG_SHAPES = [
    b'{"choices":[null]}',
    b'{"choices":{"0":{}}}',
    b'{"choices":[{"index":0,"delta":"hello"}]}',
    b'{"choices":[{"index":[0],"delta":{}}]}',
    b'{"choices":[{"delta":{"tool_calls":[{"index":0,"function":"f"}]}}]}',
    b'{"choices":[{"delta":{"tool_calls":{"index":0}}}]}',
    b'{"choices":[{"delta":{},"logprobs":{"content":5}}]}',
    b'{"choices":[],"usage":[1,2]}',
]


@pytest.mark.parametrize("bad", WRONG_SHAPES, ids=lambda b: b.decode()[:40])
def test_valid_json_in_the_wrong_shape_fails_the_stream(
    upstream: tuple[Recorder, str], bad: bytes
) -> None:
    recorder, url = upstream
    recorder.stream = b"data: " + GOOD + b"\n\ndata: " + bad + b"\n\ndata: [DONE]\n\n"

    async def read() -> list[dict[str, Any]]:
        dialect = OpenAIDialect(Provider(name="p", base_url=url, api_key=None))
        got: list[dict[str, Any]] = []
        try:
            stream = await dialect.open_stream({"model": "up", "messages": []})
            with pytest.raises(UpstreamBadResponse, match="not shaped like"):
                async for chunk in stream:
                    got.append(chunk)
            await stream.aclose()
        finally:
            await dialect.aclose()
        return got

    # What came before the bad chunk still arrives first, exactly once.
    assert asyncio.run(read()) == [orjson.loads(GOOD)]


def _read_all(url: str) -> tuple[list[dict[str, Any]], bool, BaseException | None]:
    """Every chunk of one stream, whether it completed, and what ended it early."""
    async def read() -> tuple[list[dict[str, Any]], bool, BaseException | None]:
        dialect = OpenAIDialect(Provider(name="p", base_url=url, api_key=None))
        got: list[dict[str, Any]] = []
        failure = None
        try:
            stream = await dialect.open_stream({"model": "up", "messages": []})
            try:
                async for chunk in stream:
                    got.append(chunk)
            except UpstreamBadResponse as exc:
                failure = exc
            await stream.aclose()
        finally:
            await dialect.aclose()
        return got, stream.completed, failure

    return asyncio.run(read())


def _events(*datas: bytes) -> bytes:
    return b"".join(b"data: " + d + b"\n\n" for d in datas)


# One upstream write, so one read: the events of a read are parsed together (one JSON array)
# when they are all plain; these are the cases that must not slip through that.
def test_one_event_holding_two_json_values_is_refused_in_a_batch(
    upstream: tuple[Recorder, str]
) -> None:
    recorder, url = upstream
    two = b'{"id":"c","choices":[]},{"id":"d","choices":[]}'
    recorder.stream = _events(GOOD, two, GOOD, b"[DONE]")
    got, completed, failure = _read_all(url)
    assert isinstance(failure, UpstreamBadResponse) and "unparsable" in str(failure)
    assert got == [orjson.loads(GOOD)] and not completed


def test_done_inside_a_batch_ends_the_stream_there(upstream: tuple[Recorder, str]) -> None:
    recorder, url = upstream
    recorder.stream = _events(GOOD, GOOD, b"[DONE]", b'{"id":"after","choices":[]}')
    got, completed, failure = _read_all(url)
    assert failure is None and completed
    assert got == [orjson.loads(GOOD)] * 2


def test_done_inside_an_events_data_is_no_done(upstream: tuple[Recorder, str]) -> None:
    recorder, url = upstream
    recorder.stream = _events(GOOD, b",[DONE]")
    got, completed, failure = _read_all(url)
    assert isinstance(failure, UpstreamBadResponse) and "unparsable" in str(failure)
    assert got == [orjson.loads(GOOD)] and not completed


def test_an_error_event_inside_a_batch_fails_after_what_preceded_it(
    upstream: tuple[Recorder, str]
) -> None:
    recorder, url = upstream
    recorder.stream = (_events(GOOD, GOOD) + b'event: error\ndata: {"message":"overloaded"}\n\n'
                       + _events(GOOD, b"[DONE]"))
    got, completed, failure = _read_all(url)
    assert isinstance(failure, UpstreamBadResponse) and "overloaded" in str(failure)
    assert got == [orjson.loads(GOOD)] * 2 and not completed


def test_a_batch_of_plain_events_reads_as_event_by_event(upstream: tuple[Recorder, str]) -> None:
    recorder, url = upstream
    chunks = [orjson.dumps({"id": "c", "choices": [{"index": 0, "delta": {"content": f"t{i}"}}]})
              for i in range(20)]
    recorder.stream = _events(*chunks, b"[DONE]")
    got, completed, failure = _read_all(url)
    assert failure is None and completed
    assert got == [orjson.loads(c) for c in chunks]
