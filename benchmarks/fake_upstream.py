"""A purpose-built fast OpenAI-compatible upstream for the overhead benchmark.

    .venv/bin/python benchmarks/fake_upstream.py --port 9100 [--tokens 50] [--slow-tps 20]

The simulator (`tokenlane.sim`) is the faithful upstream; this is the cheap one. It speaks the
same chat-completions wire format (role chunk, one chunk per token, a finish chunk, the usage
chunk when `stream_options.include_usage` asks for it, `[DONE]`) but is a bare asyncio protocol
over httptools with every response pre-encoded, so the upstream's own CPU per request stays a
small fraction of the gateway's (overhead.py measures and prints both).

Paths: `/{name}/v1/chat/completions`. Names starting with `slow` pace their streams at
`--slow-tps` tokens per second after `--slow-ttft` seconds (the 1,000-slow-streams scenario),
names starting with `pace` at `--paced-tps` after `--paced-ttft` (tokens arriving one by one,
as from a real provider); every other name answers at once. Each SSE event is its own write (its own chunk of the
chunked body), as a provider sending tokens one by one would, and as the simulator does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from typing import Any

import httptools
import orjson

_ROLE_DELTA = {"role": "assistant", "content": "", "refusal": None}
_WORDS = ("this", "answer", "comes", "from", "a", "fast", "fake", "upstream", "one", "token",
          "at", "a", "time,", "and", "every", "word", "is", "one", "token.")


def _chunk_frame(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Replies:
    """Pre-encoded responses, keyed by (model, stream, include_usage, tokens)."""

    def __init__(self, tokens: int) -> None:
        self.tokens = tokens
        self._cache: dict[tuple[str, bool, bool, int], Any] = {}

    def get(self, model: str, stream: bool, include_usage: bool, tokens: int) -> Any:
        key = (model, stream, include_usage, tokens)
        reply = self._cache.get(key)
        if reply is None:
            reply = self._cache[key] = (self._stream(*key) if stream else self._json(*key))
        return reply

    @staticmethod
    def _pieces(n: int) -> list[str]:
        pieces = [_WORDS[i % len(_WORDS)] + " " for i in range(n)]
        pieces[-1] = pieces[-1].rstrip()
        return pieces

    def _json(self, model: str, stream: bool, include_usage: bool, n: int) -> bytes:
        body = orjson.dumps({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 1700000000,
            "model": model, "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": {"role": "assistant",
                                                 "content": "".join(self._pieces(n)),
                                                 "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": n, "total_tokens": 20 + n},
        })
        head = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n" % len(body))
        return head + body

    def _stream(self, model: str, stream: bool, include_usage: bool, n: int) -> list[bytes]:
        """The head, one framed chunk per SSE event, then the terminating zero chunk."""
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                "created": 1700000000, "model": model, "system_fingerprint": "fp_fake"}
        tail = {"usage": None} if include_usage else {}

        def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return b"data: " + orjson.dumps({**base, "choices": [choice], **tail}) + b"\n\n"

        events = [event(_ROLE_DELTA)]
        events += [event({"content": p}) for p in self._pieces(n)]
        events.append(event({}, "stop"))
        if include_usage:
            usage = {"prompt_tokens": 20, "completion_tokens": n, "total_tokens": 20 + n}
            events.append(b"data: " + orjson.dumps({**base, "choices": [], "usage": usage})
                          + b"\n\n")
        events.append(b"data: [DONE]\n\n")
        head = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
                b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")
        return [head] + [_chunk_frame(e) for e in events] + [b"0\r\n\r\n"]


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection. Requests are answered in arrival order."""

    def __init__(self, replies: Replies, pacing: dict[bytes, tuple[float, float]]) -> None:
        self._replies = replies
        self._pacing = pacing  # path prefix -> (ttft, seconds per token)
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []
        self._pacer: asyncio.Task[None] | None = None

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._respond_error(b"400 Bad Request")

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._pacer is not None:
            self._pacer.cancel()

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        url, raw = self._url, b"".join(self._body)
        self._url, self._body = b"", []
        if not url.endswith(b"/chat/completions"):
            self._respond_error(b"404 Not Found")
            return
        try:
            body = orjson.loads(raw)
            stream = body.get("stream") is True
            options = body.get("stream_options")
            usage = stream and isinstance(options, dict) and options.get("include_usage") is True
            limit = body.get("max_tokens") or body.get("max_completion_tokens")
            n = min(limit, self._replies.tokens) if isinstance(limit, int) else self._replies.tokens
            reply = self._replies.get(str(body["model"]), stream, usage, max(n, 1))
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            self._respond_error(b"400 Bad Request")
            return
        transport = self._transport
        if transport is None:
            return
        if not stream:
            transport.write(reply)
        elif (pace := self._pacing.get(url[:5])) is not None:
            self._pacer = asyncio.get_running_loop().create_task(self._paced(reply, n, *pace))
        else:
            write = transport.write
            for part in reply:
                write(part)

    async def _paced(self, parts: list[bytes], n: int, ttft: float, step: float) -> None:
        """ttft, then a token every step, then the close one step later: ttft + n / tps."""
        transport = self._transport
        assert transport is not None
        transport.write(parts[0])  # headers at once, as providers do
        await asyncio.sleep(ttft)
        # parts: head, role, n tokens, finish, [usage], [DONE], terminator. The role chunk
        # and the first token arrive together; each later token waits one step.
        transport.write(parts[1] + parts[2])
        for part in parts[3 : 2 + n]:
            await asyncio.sleep(step)
            if self._transport is None:
                return
            transport.write(part)
        await asyncio.sleep(step)
        if self._transport is not None:
            transport.write(b"".join(parts[2 + n :]))
        self._pacer = None

    def _respond_error(self, status: bytes) -> None:
        if self._transport is not None:
            body = b'{"error": {"message": "fake upstream: bad request", "type": "invalid"}}'
            self._transport.write(b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json"
                                  b"\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
                                  % len(body) + body)
            self._transport.close()


async def serve(host: str, port: int, tokens: int, slow: tuple[float, float],
                paced: tuple[float, float], ready_fd: int | None = None) -> None:
    """`slow` and `paced` are (tokens per second, ttft seconds)."""
    loop = asyncio.get_running_loop()
    replies = Replies(tokens)
    pacing = {b"/slow": (slow[1], 1.0 / slow[0]), b"/pace": (paced[1], 1.0 / paced[0])}
    server = await loop.create_server(lambda: UpstreamProtocol(replies, pacing),
                                      host, port, backlog=4096, reuse_address=True)
    actual = server.sockets[0].getsockname()[1]
    if ready_fd is not None:
        os.write(ready_fd, b"%d\n" % actual)
        os.close(ready_fd)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tokens", type=int, default=50, help="output tokens per reply")
    parser.add_argument("--slow-tps", type=float, default=20.0)
    parser.add_argument("--slow-ttft", type=float, default=0.05)
    parser.add_argument("--paced-tps", type=float, default=100.0)
    parser.add_argument("--paced-ttft", type=float, default=0.02)
    parser.add_argument("--ready-fd", type=int, help="write the bound port here, then close it")
    args = parser.parse_args()
    import uvloop

    uvloop.run(serve(args.host, args.port, args.tokens, (args.slow_tps, args.slow_ttft),
                     (args.paced_tps, args.paced_ttft), args.ready_fd))


if __name__ == "__main__":
    main()
