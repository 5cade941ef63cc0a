"""A simulated provider's per-minute limits, enforced and reported as real providers do.

Fixed one-minute windows on the simulator's clock. A request is admitted on its prompt tokens
plus its output limit (Cerebras's rule: an inflated `max_completion_tokens` burns quota); one
that would not fit is refused with a quota 429 and counts nothing. Every answer, refused or
not, carries the window's `x-ratelimit-*` headers in the spec's style:

    cerebras  x-ratelimit-{limit,remaining,reset}-{requests,tokens}-minute, reset in seconds
    openai    x-ratelimit-{limit,remaining,reset}-{requests,tokens}, reset like "12.5s"
"""

from __future__ import annotations

import math
from typing import Any

from .spec import SimProviderSpec
from .tokens import estimate_prompt_tokens

__all__ = ["RateWindow"]

_WINDOW_S = 60.0


class RateWindow:
    """What one provider has used of its current minute. One event loop: no locking."""

    __slots__ = ("requests", "start", "tokens")

    def __init__(self) -> None:
        self.start = -math.inf
        self.requests = 0
        self.tokens = 0

    def admit(self, spec: SimProviderSpec, body: Any, now: float
              ) -> tuple[bool, tuple[tuple[str, str], ...]]:
        """Whether the request fits this minute (counting it if so), and the headers."""
        if spec.requests_per_minute is None and spec.tokens_per_minute is None:
            return True, ()
        start = math.floor(now / _WINDOW_S) * _WINDOW_S
        if start != self.start:
            self.start, self.requests, self.tokens = start, 0, 0
        need = _admitted_tokens(spec, body)
        rpm, tpm = spec.requests_per_minute, spec.tokens_per_minute
        fits = ((rpm is None or self.requests + 1 <= rpm)
                and (tpm is None or self.tokens + need <= tpm))
        if fits:
            self.requests += 1
            self.tokens += need
        return fits, self._headers(spec, start + _WINDOW_S - now)

    def _headers(self, spec: SimProviderSpec, reset_s: float) -> tuple[tuple[str, str], ...]:
        style = spec.rate_limit_headers
        if style is None:
            return ()
        suffix = "-minute" if style == "cerebras" else ""
        reset = f"{reset_s:.2f}" if style == "cerebras" else f"{reset_s:.2f}s"
        out: list[tuple[str, str]] = []
        for resource, limit, used in (("requests", spec.requests_per_minute, self.requests),
                                      ("tokens", spec.tokens_per_minute, self.tokens)):
            if limit is None:
                continue
            out += [(f"x-ratelimit-limit-{resource}{suffix}", str(limit)),
                    (f"x-ratelimit-remaining-{resource}{suffix}", str(max(limit - used, 0))),
                    (f"x-ratelimit-reset-{resource}{suffix}", reset)]
        return tuple(out)


def _admitted_tokens(spec: SimProviderSpec, body: Any) -> int:
    if not isinstance(body, dict):
        return 0
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if not isinstance(limit, int) or isinstance(limit, bool):
        limit = spec.output_tokens
    return estimate_prompt_tokens(body, spec.prompt_chars_per_token) + limit
