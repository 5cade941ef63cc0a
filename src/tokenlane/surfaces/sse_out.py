"""Named Server-Sent Events out (pure): `event: <name>` then one `data:` line of JSON.

Anthropic's and OpenAI's Responses streams both name every event; clients dispatch on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

__all__ = ["encode_events"]


def encode_events(events: Iterable[tuple[str, dict[str, Any]]]) -> bytes:
    dumps = orjson.dumps
    return b"".join([b"event: " + name.encode() + b"\ndata: " + dumps(data) + b"\n\n"
                     for name, data in events])
