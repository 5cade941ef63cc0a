"""What a key over its limits is told, and the `x-ratelimit-*` headers of the ones admitted
(pure): one wording for the in-process limiter and the Redis one, as OpenAI words it."""

from __future__ import annotations

import math

from .buckets import TokenBucket, format_reset
from .budgets import Overrun, period_end
from .errors import BudgetExceeded, RateLimitExceeded
from .records import VirtualKey

__all__ = ["KINDS", "budget_refusal", "rate_headers", "rate_refusal"]

# (bucket kind as OpenAI's headers name it, short name, long name)
KINDS = (("requests", "RPM", "requests per min"), ("tokens", "TPM", "tokens per min"))


def rate_headers(requests: TokenBucket | None, tokens: TokenBucket | None, now: float
                 ) -> list[tuple[str, str]]:
    out = []
    for (kind, _, _), bucket in zip(KINDS, (requests, tokens), strict=True):
        if bucket is not None:
            out += [(f"x-ratelimit-limit-{kind}", str(int(bucket.capacity))),
                    (f"x-ratelimit-remaining-{kind}", str(bucket.remaining(now))),
                    (f"x-ratelimit-reset-{kind}", format_reset(bucket.full_in(now)))]
    return out


def rate_refusal(key: VirtualKey, kind: str, need: int, requests: TokenBucket | None,
                 tokens: TokenBucket | None, now: float) -> RateLimitExceeded:
    """`kind`'s bucket ("requests" or "tokens") cannot give `need` now."""
    index = 0 if kind == "requests" else 1
    _, short, long = KINDS[index]
    bucket = (requests, tokens)[index]
    assert bucket is not None
    wait = bucket.available_in(need, now)
    headers = dict(rate_headers(requests, tokens, now))
    headers["retry-after"] = str(max(1, math.ceil(wait)))
    return RateLimitExceeded(
        f"Rate limit reached for key {key.id} on {long} ({short}): Limit "
        f"{int(bucket.capacity)}, Remaining {bucket.remaining(now)}, Requested "
        f"{need}. Please try again in {format_reset(wait)}.", headers, kind=kind)


def budget_refusal(key: VirtualKey, over: Overrun, cost: float, wall: float) -> BudgetExceeded:
    name = f"{key.spec.name} ({key.id})" if key.spec.name else key.id
    message = (f"Budget exceeded for key {name}: the {over.period} budget is "
               f"${over.limit:.6f}; ${over.spent:.6f} spent and ${over.reserved:.6f} reserved "
               f"by requests in flight, and this request may cost up to ${cost:.6f}.")
    end = period_end(over.period, wall)
    headers = {} if end is None else {"retry-after": str(max(1, math.ceil(end - wall)))}
    return BudgetExceeded(message, headers)
