"""A closed-loop HTTP/1.1 load generator cheap enough not to be what it measures.

Each of `concurrency` workers owns one keep-alive connection (a bare asyncio protocol with the
httptools response parser, no client library) and sends the same pre-encoded request again as
soon as the previous response ends, until the deadline. Per request it records the latency
(request written → last body byte), for streams the time to the first content token, and
whether the response was complete and correct (status 200, every token, `[DONE]`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools

__all__ = ["LoadResult", "Target", "run_load"]

_CONTENT = b'"content":"'
_EMPTY_CONTENT = b'"content":""'
_DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True)
class Target:
    """Where to send what: a URL and the exact request body and headers."""

    url: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    stream: bool = False
    expect_tokens: int = 0  # content chunks a complete stream carries (0 = don't check)

    def request_bytes(self) -> bytes:
        parts = urlsplit(self.url)
        lines = [f"POST {parts.path} HTTP/1.1", f"host: {parts.netloc}",
                 "content-type: application/json", f"content-length: {len(self.body)}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    ttfts_s: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0


class _Connection(asyncio.Protocol):
    __slots__ = (
        "_body",
        "_done",
        "_parser",
        "_started",
        "_stream",
        "_transport",
        "closed",
        "first_at",
        "keep_alive",
        "status",
    )

    def __init__(self, stream: bool) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._done: asyncio.Future[float] | None = None
        self._stream = stream
        self.first_at: float | None = None
        self.status = 0
        self._body: list[bytes] = []
        self.closed = False
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._done is not None and not self._done.done():
            self._done.set_exception(ConnectionError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self._done is not None and not self._done.done():
                self._done.set_exception(exc)

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.keep_alive = self._parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if self._stream and self.first_at is None:
            at = body.find(_CONTENT)
            while at >= 0:
                if body[at + len(_CONTENT) : at + len(_CONTENT) + 1] != b'"':
                    self.first_at = time.perf_counter()
                    break
                at = body.find(_CONTENT, at + 1)
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(time.perf_counter())

    async def exchange(self, request: bytes) -> tuple[float, float, bytes]:
        """Send one request; (sent at, ended at, body)."""
        assert self._transport is not None
        self._done = asyncio.get_running_loop().create_future()
        self.first_at = None
        self._body = []
        sent = time.perf_counter()
        self._transport.write(request)
        ended = await self._done
        return sent, ended, b"".join(self._body)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _check(target: Target, status: int, body: bytes) -> str | None:
    if status != 200:
        return f"HTTP {status}: {body[:160]!r}"
    if target.stream:
        if not body.endswith(_DONE):
            return f"stream without [DONE]: ...{body[-160:]!r}"
        if target.expect_tokens:
            tokens = body.count(_CONTENT) - body.count(_EMPTY_CONTENT)
            if tokens != target.expect_tokens:
                return f"stream with {tokens} tokens, expected {target.expect_tokens}"
    elif b'"finish_reason":"stop"' not in body:
        return f"incomplete completion: {body[:160]!r}"
    return None


async def _connect(target: Target) -> _Connection:
    parts = urlsplit(target.url)
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(lambda: _Connection(target.stream),
                                           parts.hostname or "127.0.0.1", parts.port or 80)
    return conn


async def run_load(
    target: Target,
    concurrency: int,
    duration_s: float | None = None,
    requests_per_worker: int | None = None,
    connect_first: bool = True,
    on_start: Callable[[], None] | None = None,
    stagger_s: float = 0.0,
) -> LoadResult:
    """Closed loop: run until `duration_s` passes or each worker sent `requests_per_worker`.

    With `connect_first`, connections are opened before the clock starts (steady-state
    numbers); without, connecting is part of the first request's latency. `on_start` runs
    just before the first request (after connecting), to sample counters there. With
    `stagger_s`, worker i starts i/concurrency of it late, so equally long requests do not
    arrive in synchronized waves.
    """
    assert duration_s is not None or requests_per_worker is not None
    request = target.request_bytes()
    result = LoadResult()
    conns: list[_Connection | None] = [None] * concurrency
    if connect_first:
        conns = list(await asyncio.gather(*(_connect(target) for _ in range(concurrency))))

    async def worker(i: int, deadline: float) -> None:
        if stagger_s:
            await asyncio.sleep(stagger_s * i / concurrency)
        sent_count = 0
        while True:
            if requests_per_worker is not None and sent_count >= requests_per_worker:
                break
            if duration_s is not None and time.perf_counter() >= deadline:
                break
            sent_count += 1
            t_connect = time.perf_counter()
            try:
                conn = conns[i]
                if conn is None or conn.closed:
                    conn = conns[i] = await _connect(target)
                sent, ended, body = await conn.exchange(request)
            except (OSError, ConnectionError, httptools.HttpParserError) as exc:
                result.requests += 1
                result.errors += 1
                if len(result.error_samples) < 5:
                    result.error_samples.append(repr(exc))
                conns[i] = None
                continue
            if not connect_first and sent_count == 1:
                sent = t_connect
            result.requests += 1
            problem = _check(target, conn.status, body)
            if problem is not None:
                result.errors += 1
                if len(result.error_samples) < 5:
                    result.error_samples.append(problem)
                continue
            result.latencies_s.append(ended - sent)
            if conn.first_at is not None:
                result.ttfts_s.append(conn.first_at - sent)
            if not conn.keep_alive:
                conn.close()
                conns[i] = None

    if on_start is not None:
        on_start()
    start = time.perf_counter()
    deadline = start + (duration_s or 0.0)
    await asyncio.gather(*(worker(i, deadline) for i in range(concurrency)))
    result.elapsed_s = time.perf_counter() - start
    for conn in conns:
        if conn is not None:
            conn.close()
    return result
