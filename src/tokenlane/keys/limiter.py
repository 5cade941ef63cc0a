"""The in-process `Limiter`: per-key token buckets (rpm, tpm) and USD budgets.

Every check and every take happens in one synchronous call on the event loop, with no await
in between, so concurrent requests are admitted one at a time: an rpm limit is exact however
many arrive together. Limits are per gateway process (replicas share them through
`RedisLimiter`, which falls back on this one while Redis is out of reach).
"""

from __future__ import annotations

from collections.abc import Callable

from ..clock import Clock
from .buckets import TokenBucket
from .budgets import BudgetBook
from .records import Period, VirtualKey
from .refusals import budget_refusal, rate_headers, rate_refusal
from .store import Admission

__all__ = ["LocalLimiter"]


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

    async def admit(self, key: VirtualKey, cost: float, tokens: int) -> Admission:
        # Nothing to wait for: the check and the take are one synchronous step (`take`).
        return self.take(key, cost, tokens)

    def take(self, key: VirtualKey, cost: float, tokens: int) -> Admission:
        """`admit` without the await (the Redis limiter's fallback calls it too)."""
        now, wall = self._clock.now(), self._wall()
        buckets = self._buckets_of(key, now)
        limits = key.spec.budget_usd.limits()
        if limits and (over := self._budgets.overrun(key.id, limits, cost, wall)) is not None:
            raise budget_refusal(key, over, cost, wall)
        for kind, bucket, need in (("requests", buckets.requests, 1),
                                   ("tokens", buckets.tokens, tokens)):
            if bucket is not None and not bucket.can_take(need, now):
                raise rate_refusal(key, kind, need, buckets.requests, buckets.tokens, now)
        if buckets.requests is not None:
            buckets.requests.take(1, now)
        if buckets.tokens is not None:
            buckets.tokens.take(tokens, now)
        self._budgets.reserve(key.id, cost, wall)
        headers = tuple((k.encode(), v.encode())
                        for k, v in rate_headers(buckets.requests, buckets.tokens, now))
        return Admission(key.id, cost, tokens if buckets.tokens is not None else 0, headers)

    def settle(self, admission: Admission, cost: float, tokens: int) -> None:
        self._budgets.settle(admission.key_id, admission.cost, cost, self._wall())
        buckets = self._buckets.get(admission.key_id)
        if buckets is not None and buckets.tokens is not None and admission.tokens:
            # What was reserved and not used goes back; more than reserved is taken.
            buckets.tokens.give(admission.tokens - tokens, self._clock.now())

    async def usage(self, key_id: str) -> tuple[dict[Period, float], float]:
        return self.spent(key_id), self.reserved(key_id)

    def spent(self, key_id: str) -> dict[Period, float]:
        return self._budgets.spent(key_id, self._wall())

    def reserved(self, key_id: str) -> float:
        return self._budgets.reserved(key_id)

    async def aclose(self) -> None:
        pass

    def _buckets_of(self, key: VirtualKey, now: float) -> _Buckets:
        buckets = self._buckets.get(key.id)
        if buckets is None or (buckets.rpm, buckets.tpm) != (key.spec.rpm, key.spec.tpm):
            buckets = self._buckets[key.id] = _Buckets(key.spec.rpm, key.spec.tpm, now)
        return buckets
