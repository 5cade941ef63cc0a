"""Time requests spend waiting for a connection from a provider's pool, as its own signal.

A pool at its `max_connections` makes the next request wait before a byte is sent, and from
outside that wait reads as a slow first token. The transport (transport.py) reports each wait
here; `/metrics` and `/v1/router/stats` read the totals per provider. Pure bookkeeping: the
transport measures, this counts.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

__all__ = ["POOL_WAIT_BUCKETS", "PoolWaits", "pool_waits_of"]

# Seconds; a wait of a millisecond is already a pool at its limit.
POOL_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class PoolWaits:
    """Waits for a pooled connection: how many, how long (histogram), how many waiting now."""

    __slots__ = ("bucket_counts", "count", "max_s", "sum_s", "waiting")

    def __init__(self) -> None:
        self.count = 0  # waits that ended (a connection came, or the request gave up)
        self.sum_s = 0.0
        self.max_s = 0.0
        self.waiting = 0
        self.bucket_counts = [0] * (len(POOL_WAIT_BUCKETS) + 1)  # the last: over the top bucket

    def queued(self) -> None:
        """A request found every connection busy and waits."""
        self.waiting += 1

    def dequeued(self, seconds: float) -> None:
        """A wait ended after `seconds`."""
        self.waiting -= 1
        self.count += 1
        self.sum_s += seconds
        self.max_s = max(self.max_s, seconds)
        self.bucket_counts[bisect_left(POOL_WAIT_BUCKETS, seconds)] += 1

    def cumulative_buckets(self) -> list[tuple[float, int]]:
        """(upper bound, waits at most that long) per bucket, `inf` last: Prometheus's form."""
        out = []
        total = 0
        for bound, n in zip((*POOL_WAIT_BUCKETS, float("inf")), self.bucket_counts, strict=True):
            total += n
            out.append((bound, total))
        return out

    def summary(self) -> dict[str, Any]:
        """For `/v1/router/stats`."""
        return {"pool_waits": self.count, "pool_waiting": self.waiting,
                "pool_wait_s_total": self.sum_s, "pool_wait_s_max": self.max_s,
                "pool_wait_s_mean": self.sum_s / self.count if self.count else None}


def pool_waits_of(holder: object) -> PoolWaits | None:
    """The waits a transport (or a dialect over one) measures; None when it does not."""
    waits = getattr(holder, "pool_waits", None)
    return waits if isinstance(waits, PoolWaits) else None
