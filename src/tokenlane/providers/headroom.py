"""What providers say about their capacity: rate-limit headers, 429 kinds, timing (pure).

Two header styles exist:

- Cerebras: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}-{minute,hour,day}`, one
  family per window, `reset` in seconds (a float);
- OpenAI and Groq: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` without a window
  suffix, `reset` as a duration (`6m0s`, `1.5s`, `250ms`). (Groq's requests family counts per
  day, its tokens per minute; the window is not on the wire, so it is reported as "".)

Cerebras answers 429 in two kinds, told apart by the error's `code`/`type`: a *quota* (requests
or tokens per window used up: nothing changes until the window resets) and *capacity* (its
queue is full right now: another provider now, this one again soon). Cerebras also reports
where the time went in `time_info` (`queue_time`, `prompt_time`, `completion_time`,
`total_time`, seconds), in a non-streaming body and in the last chunk of a stream.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "Limit",
    "RateLimitKind",
    "TimeInfo",
    "classify_429",
    "error_object",
    "parse_duration",
    "parse_rate_limits",
    "parse_time_info",
    "retry_after_429",
]

_PREFIX = "x-ratelimit-"
_RAW_PREFIX = _PREFIX.encode()
_FIELDS = ("limit", "remaining", "reset")
_RESOURCES = ("requests", "tokens")
_WINDOWS = ("minute", "hour", "day")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


@dataclass(frozen=True, slots=True)
class Limit:
    """One rate-limit window as the provider reported it."""

    resource: str  # "requests" or "tokens"
    window: str  # "minute", "hour", "day", or "" when the header names none
    limit: float | None
    remaining: float | None
    reset_s: float | None  # seconds from the response until the window resets


def parse_duration(value: str | None) -> float | None:
    """Seconds in `1.5`, `6m0s`, `2m59.56s`, `250ms`, `1h2m`; None when unreadable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    total, end = 0.0, 0
    for match in _DURATION.finditer(text):
        if match.start() != end:
            return None
        number, unit = float(match.group(1)), match.group(2)
        total += number * {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}[unit]
        end = match.end()
    return total if end and end == len(text) else None


def parse_rate_limits(headers: Any) -> tuple[Limit, ...]:
    """Every rate-limit window in a response's headers (both styles), in a stable order.

    `headers`: a mapping, (name, value) pairs, or httpx.Headers, whose raw byte pairs are read
    directly: this runs on every answer, and most carry no rate-limit header at all."""
    raw = getattr(headers, "raw", None)
    items = raw if raw is not None else (
        headers.items() if isinstance(headers, Mapping) else headers)
    found: dict[tuple[str, str], dict[str, float | None]] = {}
    for name, value in items:
        if type(name) is bytes:
            if name[:12].lower() != _RAW_PREFIX:
                continue
            name, value = name.decode("latin-1"), value.decode("latin-1")
        key = name.lower()
        if not key.startswith(_PREFIX):
            continue
        parts = key[len(_PREFIX):].split("-")
        if len(parts) not in (2, 3) or parts[0] not in _FIELDS or parts[1] not in _RESOURCES:
            continue
        window = parts[2] if len(parts) == 3 else ""
        if window and window not in _WINDOWS:
            continue
        number = parse_duration(value) if parts[0] == "reset" else _number(value)
        found.setdefault((parts[1], window), {})[parts[0]] = number
    return tuple(
        Limit(resource, window, f.get("limit"), f.get("remaining"), f.get("reset"))
        for (resource, window), f in sorted(found.items()))


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


RateLimitKind = Literal["quota", "capacity"]
_CAPACITY_WORDS = ("queue", "capacity", "high traffic", "overloaded")


def classify_429(body: Mapping[str, Any] | None) -> RateLimitKind:
    """A 429's kind from its body: `capacity` (queue full now: fail over, retry soon) or
    `quota` (a window used up: wait for its reset). Unknown shapes count as quota, the
    cautious reading."""
    err = error_object(body)
    words = " ".join(str(err.get(k) or "") for k in ("code", "type", "param", "message")).lower()
    if any(w in words for w in _CAPACITY_WORDS):
        return "capacity"
    return "quota"


def retry_after_429(
    kind: RateLimitKind, retry_after: float | None, limits: Iterable[Limit],
    *, capacity_retry_s: float = 1.0,
) -> float | None:
    """How long to stay away after a 429 of `kind`: a quota until the latest reset of an
    exhausted window (or the Retry-After, whichever is later); capacity briefly."""
    if kind == "capacity":
        return min(retry_after, capacity_retry_s) if retry_after else capacity_retry_s
    resets = [lim.reset_s for lim in limits
              if lim.reset_s is not None and lim.remaining is not None and lim.remaining <= 0]
    waits = [w for w in (retry_after, max(resets, default=None)) if w is not None]
    return max(waits) if waits else None


@dataclass(frozen=True, slots=True)
class TimeInfo:
    """Where the provider says the time went (seconds)."""

    queue_s: float | None
    prompt_s: float | None
    completion_s: float | None
    total_s: float | None


def parse_time_info(payload: Mapping[str, Any]) -> TimeInfo | None:
    """Cerebras's `time_info` from a completion body or a chunk; None when absent."""
    info = payload.get("time_info")
    if not isinstance(info, dict):
        return None
    values = [_seconds(info.get(k)) for k in
              ("queue_time", "prompt_time", "completion_time", "total_time")]
    if all(v is None for v in values):
        return None
    return TimeInfo(*values)


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def error_object(body: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The error object: nested under `error` (OpenAI, Groq) or at the top (Cerebras)."""
    if not isinstance(body, Mapping):
        return {}
    err = body.get("error")
    return err if isinstance(err, Mapping) else body
