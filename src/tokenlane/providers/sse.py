"""Incremental Server-Sent Events decoding (pure; no I/O).

Upstream bytes arrive in arbitrary pieces; `SSEDecoder.feed` returns the complete events they
finish and keeps the rest. Only `event:` and `data:` fields matter to us; comments (keep-alive
lines starting with ':') and `id:`/`retry:` are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEDecoder", "SSEEvent", "encode_event"]


@dataclass(slots=True)  # not frozen: a frozen dataclass costs 3x to build, per event
class SSEEvent:
    data: bytes
    event: str | None = None


class SSEDecoder:
    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            # A lone trailing CR may be the first half of a CRLF split across pieces.
            keep_cr = buf.endswith(b"\r")
            buf = buf.replace(b"\r\n", b"\n")
            body, tail = (buf[:-1], b"\r") if keep_cr else (buf, b"")
            buf = body.replace(b"\r", b"\n") + tail
        *blocks, self._buf = buf.split(b"\n\n")
        events = []
        for block in blocks:
            if block.startswith(b"data: ") and b"\n" not in block:
                events.append(SSEEvent(block[6:]))  # the common case, inline: once per token
            elif (event := _parse_block(block)) is not None:
                events.append(event)
        return events

    def pending(self) -> bytes:
        """Bytes received but not yet ending in a blank line (non-empty at EOF = truncated)."""
        return self._buf.strip()


def _parse_block(block: bytes) -> SSEEvent | None:
    data: list[bytes] = []
    name = None
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value.decode("utf-8", "replace")
    if not data and name is None:
        return None
    return SSEEvent(b"\n".join(data), name)


def encode_event(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"
