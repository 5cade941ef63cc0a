"""The hedge budget: at most a configured share of requests may start a second attempt.

A token bucket: every request adds `share` of a token (up to a small burst), every hedge spends
one. Deterministic, O(1), and it never lets hedging double the load during an incident.
"""

from __future__ import annotations

__all__ = ["HedgeBudget"]


class HedgeBudget:
    __slots__ = ("_tokens", "burst", "share")

    def __init__(self, share: float, burst: float = 3.0) -> None:
        self.share = share
        self.burst = burst
        self._tokens = min(1.0, burst) if share > 0 else 0.0

    def on_request(self) -> None:
        self._tokens = min(self.burst, self._tokens + self.share)

    def can_spend(self) -> bool:
        """Would `try_spend` succeed now? (Spends nothing.)"""
        return self._tokens >= 1.0

    def try_spend(self) -> bool:
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
