"""Where a virtual key's limits live in Redis, and the arguments each script takes (pure).

The scripts themselves and the meaning of every key are in `redis_lua.py`; this module only
spells names and numbers, so the I/O class (`redis_limiter.py`) stays a thin caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .budgets import period_end, period_start
from .records import PERIODS, Period, VirtualKey

__all__ = ["BUCKET_TTL_S", "KeyLayout", "Seeds", "admit_args", "current_starts", "period_ttls",
           "settle_args"]

# A bucket refills from empty in a minute: past that a missing bucket and a full one are alike.
BUCKET_TTL_S = 120


def _fmt(x: float) -> str:
    return repr(float(x))  # shortest exact text; Lua's tonumber reads it back bit for bit


def period_ttls(starts: dict[Period, float], wall: float) -> list[str]:
    """Seconds each period's spend key is kept (its end, plus a minute for replicas whose
    clocks run a little behind); -1 for a period already over; 0 for `total`, kept forever."""
    out = []
    for period in PERIODS:
        end = period_end(period, starts[period])
        if end is None:
            out.append("0")
        else:
            left = end - wall
            out.append(str(math.ceil(left) + 60) if left > 0 else "-1")
    return out


def current_starts(wall: float) -> dict[Period, float]:
    return {p: period_start(p, wall) for p in PERIODS}


class Seeds:
    """USD spent per key and period as of some moment: what the ledger said at start-up (the
    starting point of a spend key Redis does not have, yet or any more), or what Redis said
    last (where local counting starts when Redis goes out of reach)."""

    def __init__(self) -> None:
        self._seeds: dict[str, tuple[dict[Period, float], dict[Period, float]]] = {}

    def load(self, key_id: str, spent: dict[Period, float], starts: dict[Period, float]) -> None:
        self._seeds[key_id] = (dict(starts), {p: spent.get(p, 0.0) for p in PERIODS})

    def spent(self, key_id: str, starts: dict[Period, float]) -> dict[Period, float]:
        """What was loaded for each period, 0 for a period that began since."""
        found = self._seeds.get(key_id)
        if found is None:
            return {p: 0.0 for p in PERIODS}
        loaded, spent = found
        return {p: spent[p] if loaded[p] == starts[p] else 0.0 for p in PERIODS}

    def of(self, key_id: str, starts: dict[Period, float]) -> list[str]:
        """The seeds as script arguments."""
        return [_fmt(v) for v in self.spent(key_id, starts).values()]

    def add(self, key_id: str, usd: float, starts: dict[Period, float]) -> None:
        """`usd` more in the periods beginning at `starts` (those still current)."""
        if key_id not in self._seeds:
            self.load(key_id, {}, starts)
        loaded, spent = self._seeds[key_id]
        for p in PERIODS:
            if loaded[p] == starts[p]:
                spent[p] += usd

    def key_ids(self) -> list[str]:
        return list(self._seeds)


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """The Redis keys of one virtual key (one hash tag, so one cluster slot)."""

    base: str  # "<prefix>:limits:{<key id>}"

    def spend(self, starts: dict[Period, float]) -> list[str]:
        return [f"{self.base}:spend:{p}:{int(starts[p])}" for p in PERIODS]

    def limit_keys(self, starts: dict[Period, float]) -> list[str]:
        """KEYS of ADMIT and SETTLE."""
        return [f"{self.base}:buckets", f"{self.base}:reservations", f"{self.base}:leases",
                *self.spend(starts)]

    def usage_keys(self, starts: dict[Period, float]) -> list[str]:
        return [f"{self.base}:reservations", f"{self.base}:leases", *self.spend(starts)]

    def pushed(self, batch: str) -> str:
        return f"{self.base}:pushed:{batch}"


def admit_args(key: VirtualKey, usd: float, tokens: int, reservation: str, wall: float,
               lease_s: float, seeds: list[str], ttls: list[str]) -> list[str]:
    limits = key.spec.budget_usd.limits()
    return [_fmt(wall), str(key.spec.rpm or 0), str(key.spec.tpm or 0), str(tokens), _fmt(usd),
            reservation, _fmt(lease_s),
            *(_fmt(limits[p]) if p in limits else "-1" for p in PERIODS),
            *seeds, *ttls, str(BUCKET_TTL_S)]


def settle_args(reservation: str, usd: float, tokens: int, wall: float, seeds: list[str],
                ttls: list[str], *, fresh: bool) -> list[str]:
    return [_fmt(wall), reservation, _fmt(usd), str(tokens), *seeds, *ttls,
            "1" if fresh else "0"]
