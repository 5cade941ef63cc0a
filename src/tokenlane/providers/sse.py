"""Incremental Server-Sent Events decoding (pure; no I/O).

Upstream bytes arrive in arbitrary pieces; `SSEDecoder.feed` returns the complete events they
finish and keeps the rest. Only `event:` and `data:` fields matter to us; comments (keep-alive
lines starting with ':') and `id:`/`retry:` are dropped.

The decoder is linear in the bytes received: each piece is scanned once for event ends and an
unfinished event is kept as a list of pieces, joined once when it ends (re-joining the whole
buffer on every read made a 5 MB event cost seconds of CPU, with the event loop blocked). An
event longer than `max_event_bytes` is a bad answer: nothing legitimate sends one, and an
event that never ends must not grow without bound: the decoder stops and says so in `error`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "SSEDecoder", "SSEEvent", "data_array", "encode_event"]

DEFAULT_MAX_EVENT_BYTES = 1024 * 1024


@dataclass(slots=True)  # not frozen: a frozen dataclass costs 3x to build, per event
class SSEEvent:
    data: bytes
    event: str | None = None


class SSEDecoder:
    """Feed it pieces; it returns events. An event over the cap stops decoding: `error` says
    why (the events completed before it are still returned, so they can go out first)."""

    __slots__ = ("_cr", "_max", "_parts", "_size", "error")

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._max = max_event_bytes
        self._parts: list[bytes] = []  # the unfinished event, line ends already made "\n"
        self._size = 0
        self._cr = False  # the last piece ended with CR: a LF starting the next one pairs with it
        self.error: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events `chunk` completes (none once `error` is set)."""
        if self.error is not None:
            return []
        if (not self._parts and chunk.find(b"\n") == len(chunk) - 2 and chunk.endswith(b"\n\n")
                and chunk.startswith(b"data: ") and b"\r" not in chunk
                and len(chunk) <= self._max):
            # One whole data event, nothing pending: what a provider's every read is at its
            # own pace (one event per token), so answered before the general case.
            self._cr = False
            return [SSEEvent(chunk[6:-2])]
        if self._cr and chunk.startswith(b"\n"):
            chunk, self._cr = chunk[1:], False
        if b"\r" in chunk:
            self._cr = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        elif chunk:
            self._cr = False
        events: list[SSEEvent] = []
        if not chunk:  # kept, an empty piece would hide the pending event's last byte
            return events
        if self._parts:
            # Only the junction and the new bytes can hold the pending event's end.
            if chunk.startswith(b"\n") and self._parts[-1].endswith(b"\n"):
                end, skip = 0, 1
            else:
                end, skip = chunk.find(b"\n\n"), 2
            if end < 0:
                self._keep(chunk)
                return events
            if self._size + end > self._max:
                return self._too_large(events)
            self._parts.append(chunk[:end])
            block = b"".join(self._parts)
            self._parts, self._size = [], 0
            if (event := _parse_block(block)) is not None:
                events.append(event)
            chunk = chunk[end + skip:]
        *blocks, rest = chunk.split(b"\n\n")
        large = len(chunk) > self._max
        for block in blocks:
            if large and len(block) > self._max:
                return self._too_large(events)
            if block.startswith(b"data: ") and b"\n" not in block:
                events.append(SSEEvent(block[6:]))  # the common case, inline: once per token
            elif (event := _parse_block(block)) is not None:
                events.append(event)
        if rest:
            self._keep(rest)
        return events

    @property
    def idle(self) -> bool:
        """Between events: nothing pending, no error (a piece may be decoded without it)."""
        return not self._parts and not self._cr and self.error is None

    def pending(self) -> bytes:
        """Bytes received but not yet ending in a blank line (non-empty at EOF = truncated)."""
        return b"".join(self._parts).strip()

    def _keep(self, piece: bytes) -> None:
        self._parts.append(piece)
        self._size += len(piece)
        if self._size > self._max:
            self._too_large([])

    def _too_large(self, events: list[SSEEvent]) -> list[SSEEvent]:
        self._parts, self._size = [], 0
        self.error = f"SSE event over {self._max} bytes"
        return events


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


_SEPARATOR = b"\n\ndata: "
_DONE_EVENT = b"data: [DONE]\n\n"
_DONE_AFTER_EVENT = _SEPARATOR + b"[DONE]\n\n"
_DONE_TAIL = len(b",[DONE]\n\n")  # what such a piece ends with once its separators are joined


def data_array(piece: bytes, max_bytes: int = DEFAULT_MAX_EVENT_BYTES
               ) -> tuple[bytes, int, bool] | None:
    """A piece of whole, plain events as one JSON array of their data (`[d1,d2,...]`): that
    text, how many events went in, and whether `[DONE]` ended the piece. None unless the
    piece is exactly that: `data: <one line>` events, LF-ended, nothing pending before it
    (the caller's decoder is idle), `[DONE]` at most last, no larger than `max_bytes`.

    What a provider writes, one read after another: three C-level passes over the bytes
    (find a CR, replace the separators, find the first LF) and one copy, instead of an
    event object, a slice and a join per event. Every LF of a plain piece is in a separator
    or its final blank line, so none may be left after replacing the separators; each
    replaced separator is 7 bytes shorter, which counts the events. Whether each event's
    data is exactly one JSON value (not two, not a `[DONE]` among them) is the parser's to
    tell (the count is for that)."""
    if not piece.startswith(b"data: ") or not piece.endswith(b"\n\n") or len(piece) > max_bytes:
        return None
    if piece == _DONE_EVENT:
        return b"[]", 0, True
    if b"\r" in piece:  # CR line ends: the decoder's to normalize
        return None
    joined = piece.replace(_SEPARATOR, b",")
    if joined.find(b"\n", 6) != len(joined) - 2:  # a multi-line event, a comment, a blank line
        return None
    events = (len(piece) - len(joined)) // (len(_SEPARATOR) - 1) + 1
    # [DONE] as an event of its own (`data: x,[DONE]` is one event, and no [DONE]).
    done = piece.endswith(_DONE_AFTER_EVENT)
    if done:
        events -= 1
    data = memoryview(joined)[6:len(joined) - (_DONE_TAIL if done else 2)]
    return b"".join((b"[", data, b"]")), events, done


def encode_event(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"
