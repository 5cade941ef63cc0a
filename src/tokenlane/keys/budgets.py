"""USD budgets per period: what a key has spent, what is reserved in flight (pure, no I/O).

Periods are UTC calendar days and months (and `total`). Admission reserves the most a request
can cost; settlement replaces the reservation with what it really cost. A request is admitted
only while spent + reserved + its own reservation fits every budget, so concurrent requests
can overspend only by what their reservations under-estimated.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass, field

from .records import PERIODS, Period

__all__ = ["BudgetBook", "Overrun", "PeriodStarts", "period_end", "period_start"]


def period_start(period: Period, wall: float) -> float:
    """Unix time the period containing `wall` began (0 for `total`)."""
    if period == "total":
        return 0.0
    t = time.gmtime(wall)
    if period == "day":
        return float(calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0)))
    return float(calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)))


def period_end(period: Period, wall: float) -> float | None:
    """Unix time the period containing `wall` ends (None for `total`)."""
    if period == "total":
        return None
    t = time.gmtime(wall)
    if period == "day":
        return period_start("day", wall) + 86400.0
    year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    return float(calendar.timegm((year, month, 1, 0, 0, 0)))


class PeriodStarts:
    """The start of each period containing `wall`, worked out once a day rather than per
    request."""

    def __init__(self) -> None:
        self._day = (-1.0, 0.0)  # (day start, day end)
        self._starts: dict[Period, float] = {}

    def __call__(self, wall: float) -> dict[Period, float]:
        start, end = self._day
        if not start <= wall < end:
            self._starts = {p: period_start(p, wall) for p in PERIODS}
            self._day = (self._starts["day"], self._starts["day"] + 86400.0)
        return self._starts


@dataclass(frozen=True, slots=True)
class Overrun:
    """Why a request does not fit: the period, its limit, what is spent and reserved."""

    period: Period
    limit: float
    spent: float
    reserved: float


@dataclass(slots=True)
class _Spend:
    starts: dict[Period, float] = field(default_factory=dict)
    spent: dict[Period, float] = field(default_factory=dict)
    reserved: float = 0.0


class BudgetBook:
    """Spend and reservations per key, for every period at once."""

    def __init__(self) -> None:
        self._keys: dict[str, _Spend] = {}
        self._period_starts = PeriodStarts()

    def load(self, key_id: str, spent: dict[Period, float], wall: float) -> None:
        """Start from what the ledger says was spent in each current period."""
        self._keys[key_id] = _Spend(dict(self._period_starts(wall)),
                                    {p: spent.get(p, 0.0) for p in PERIODS})

    def spent(self, key_id: str, wall: float) -> dict[Period, float]:
        book = self._book(key_id, wall)
        return dict(book.spent)

    def reserved(self, key_id: str) -> float:
        book = self._keys.get(key_id)
        return book.reserved if book else 0.0

    def overrun(self, key_id: str, limits: dict[Period, float], cost: float, wall: float
                ) -> Overrun | None:
        """The first budget that `cost` more (on top of spend and reservations) would break."""
        book = self._book(key_id, wall)
        for period, limit in limits.items():
            if book.spent[period] + book.reserved + cost > limit:
                return Overrun(period, limit, book.spent[period], book.reserved)
        return None

    def reserve(self, key_id: str, cost: float, wall: float) -> None:
        self._book(key_id, wall).reserved += cost

    def settle(self, key_id: str, reserved: float, cost: float, wall: float) -> None:
        book = self._book(key_id, wall)
        book.reserved = max(0.0, book.reserved - reserved)
        for period in PERIODS:
            book.spent[period] += cost

    def _book(self, key_id: str, wall: float) -> _Spend:
        starts = self._period_starts(wall)
        book = self._keys.get(key_id)
        if book is None:
            book = self._keys[key_id] = _Spend(dict(starts), {p: 0.0 for p in PERIODS})
            return book
        if book.starts["day"] != starts["day"]:  # a new day (or month): its spend starts at 0
            for period in ("day", "month"):
                if starts[period] > book.starts[period]:
                    book.starts[period], book.spent[period] = starts[period], 0.0
        return book
