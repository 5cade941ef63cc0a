"""Routing policies, looked up by name. Each module exports one pure `rank` function."""

from __future__ import annotations

from . import balanced, latency, order, price, throughput, weighted
from .base import Candidate, Policy, RankContext

__all__ = ["POLICIES", "Candidate", "Policy", "RankContext"]

POLICIES: dict[str, Policy] = {
    "throughput": throughput.rank,
    "latency": latency.rank,
    "price": price.rank,
    "balanced": balanced.rank,
    "order": order.rank,
    "weighted": weighted.rank,
}
