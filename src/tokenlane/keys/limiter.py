"""The in-process `Limiter`: per-key token buckets (rpm, tpm) and USD budgets.

Every check and every take happens in one synchronous call on the event loop, with no await
in between, so concurrent requests are admitted one at a time: an rpm limit is exact however
many arrive together. Limits are per gateway process (replicas sharing them: a Redis limiter
behind the same interface).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..clock import Clock
from .buckets import TokenBucket, format_reset
from .budgets import BudgetBook, Overrun, period_end
from .errors import BudgetExceeded, RateLimitExceeded
from .records import Period, VirtualKey
from .store import Admission

__all__ = ["LocalLimiter"]

_KINDS = (("requests", "RPM", "requests per min"), ("tokens", "TPM", "tokens per min"))


class _Buckets:
    __slots__ = ("requests", "rpm", "tokens", "tpm")

    def __init__(self, rpm: int | None, tpm: int | None, now: float) -> None:
        self.rpm, self.tpm = rpm, tpm
        self.requests = TokenBucket(rpm, now) if rpm else None
        self.tokens = TokenBucket(tpm, now) if tpm else None


class LocalLimiter:
    def __init__(self, clock: Clock, wall: Callable[[], float]) -> None:
        self._clock = clock  # monotonic: buckets
        self._wall = wall  # calendar: budget periods
        self._budgets = BudgetBook()
        self._buckets: dict[str, _Buckets] = {}

    def load(self, key_id: str, spent: dict[Period, float]) -> None:
        self._budgets.load(key_id, spent, self._wall())

    def admit(self, key: VirtualKey, cost: float, tokens: int) -> Admission:
        now, wall = self._clock.now(), self._wall()
        buckets = self._buckets_of(key, now)
        limits = key.spec.budget_usd.limits()
        if limits and (over := self._budgets.overrun(key.id, limits, cost, wall)) is not None:
            raise BudgetExceeded(_budget_message(key, over, cost), _budget_headers(over, wall))
        for (kind, short, long), bucket, need in zip(
                _KINDS, (buckets.requests, buckets.tokens), (1, tokens), strict=True):
            if bucket is not None and not bucket.can_take(need, now):
                wait = bucket.available_in(need, now)
                headers = dict(_rate_headers(buckets, now))
                headers["retry-after"] = str(max(1, math.ceil(wait)))
                raise RateLimitExceeded(
                    f"Rate limit reached for key {key.id} on {long} ({short}): Limit "
                    f"{int(bucket.capacity)}, Remaining {bucket.remaining(now)}, Requested "
                    f"{need}. Please try again in {format_reset(wait)}.", headers, kind=kind)
        if buckets.requests is not None:
            buckets.requests.take(1, now)
        if buckets.tokens is not None:
            buckets.tokens.take(tokens, now)
        self._budgets.reserve(key.id, cost, wall)
        headers = tuple((k.encode(), v.encode()) for k, v in _rate_headers(buckets, now))
        return Admission(key.id, cost, tokens if buckets.tokens is not None else 0, headers)

    def settle(self, admission: Admission, cost: float, tokens: int) -> None:
        self._budgets.settle(admission.key_id, admission.cost, cost, self._wall())
        buckets = self._buckets.get(admission.key_id)
        if buckets is not None and buckets.tokens is not None and admission.tokens:
            # What was reserved and not used goes back; more than reserved is taken.
            buckets.tokens.give(admission.tokens - tokens, self._clock.now())

    def spent(self, key_id: str) -> dict[Period, float]:
        return self._budgets.spent(key_id, self._wall())

    def reserved(self, key_id: str) -> float:
        return self._budgets.reserved(key_id)

    def _buckets_of(self, key: VirtualKey, now: float) -> _Buckets:
        buckets = self._buckets.get(key.id)
        if buckets is None or (buckets.rpm, buckets.tpm) != (key.spec.rpm, key.spec.tpm):
            buckets = self._buckets[key.id] = _Buckets(key.spec.rpm, key.spec.tpm, now)
        return buckets


def _rate_headers(buckets: _Buckets, now: float) -> list[tuple[str, str]]:
    out = []
    for (kind, _, _), bucket in zip(_KINDS, (buckets.requests, buckets.tokens), strict=True):
        if bucket is not None:
            out += [(f"x-ratelimit-limit-{kind}", str(int(bucket.capacity))),
                    (f"x-ratelimit-remaining-{kind}", str(bucket.remaining(now))),
                    (f"x-ratelimit-reset-{kind}", format_reset(bucket.full_in(now)))]
    return out


def _budget_message(key: VirtualKey, over: Overrun, cost: float) -> str:
    name = f"{key.spec.name} ({key.id})" if key.spec.name else key.id
    return (f"Budget exceeded for key {name}: the {over.period} budget is ${over.limit:.6f}; "
            f"${over.spent:.6f} spent and ${over.reserved:.6f} reserved by requests in "
            f"flight, and this request may cost up to ${cost:.6f}.")


def _budget_headers(over: Overrun, wall: float) -> dict[str, str]:
    end = period_end(over.period, wall)
    return {} if end is None else {"retry-after": str(max(1, math.ceil(end - wall)))}
