"""Which of a Messages client's request headers reach an Anthropic upstream (pure).

Only Anthropic's own protocol headers: `anthropic-version` (the API version the client's body
is written for) and `anthropic-beta` (features it opted into). Every other client header stays
at the gateway: an upstream sees the gateway's credentials and nothing else of the client's.
The engine hands the result to every dialect; only the Anthropic dialect sends it.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import InvalidRequest
from ..providers.anthropic_wire import FORWARDED

__all__ = ["UpstreamHeaders", "forwarded_headers"]

UpstreamHeaders = tuple[tuple[str, str], ...]
"""(lower-case name, value) pairs a client asked to reach an upstream of its own API."""

_NAMES = tuple((name, name.encode()) for name in FORWARDED)  # ASGI's are bytes
# A real version is a date and a beta list a few names: anything longer is not a header an
# upstream should be handed on the client's say-so.
_MAX_VALUE = 1024


def forwarded_headers(headers: Mapping[bytes, bytes]) -> UpstreamHeaders:
    """The forwardable headers among raw ASGI `headers` (lower-case names, as ASGI gives
    them); InvalidRequest for a value that is not printable ASCII or is over-long."""
    out = []
    for name, key in _NAMES:
        raw = headers.get(key)
        if raw is None:
            continue
        # isascii/isprintable run in C: a per-byte check in Python cost 17 us a request.
        text = raw.decode("ascii") if raw.isascii() and len(raw) <= _MAX_VALUE else ""
        if not text.isprintable() or len(text) != len(raw):
            raise InvalidRequest(f"{name}: header value must be printable ASCII of at most "
                                 f"{_MAX_VALUE} characters", param=name)
        value = text.strip()
        if value:
            out.append((name, value))
    return tuple(out)
