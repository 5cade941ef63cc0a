"""The walk along a plan: which deployment to try next, skipping open circuits (no I/O)."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import Attempt
from .circuit import CircuitBoard
from .policies import Candidate

__all__ = ["AttemptFailed", "PlanWalk"]


class AttemptFailed(Exception):
    """A retryable failure before the first token: the next attempt may succeed."""

    def __init__(self, attempt: Attempt, retry_after: float | None = None) -> None:
        super().__init__(attempt.describe())
        self.attempt = attempt
        self.retry_after = retry_after


class PlanWalk:
    """Yields the plan's candidates in order, each `1 + retry_same` times in a row, skipping
    deployments whose circuit is open (and remembering them for the error message)."""

    def __init__(self, plan: Sequence[Candidate], retry_same: int, circuits: CircuitBoard,
                 *, probe: bool = False):
        self._queue = [c for c in plan for _ in range(1 + retry_same)]
        self._circuits = circuits
        self._probe = probe  # a probe goes through open circuits: it is their trial
        self._last: Candidate | None = None
        self.skipped: list[str] = []

    def __len__(self) -> int:
        """Tries left in the plan (open circuits not yet skipped count too)."""
        return len(self._queue)

    def peek(self) -> Candidate | None:
        """The next candidate on another deployment whose circuit is closed, without taking
        it (what a request would fall back to)."""
        last = self._last.deployment.id if self._last is not None else None
        for c in self._queue:
            d = c.deployment.id
            if d != last and self._circuits.state(d) == "closed":
                return c
        return None

    def next(self) -> Candidate | None:
        while self._queue:
            candidate = self._queue.pop(0)
            deployment = candidate.deployment.id
            if self._circuits.acquire(deployment, probe=self._probe):
                self._last = candidate
                return candidate
            if deployment not in self.skipped:
                self.skipped.append(deployment)
        return None

    def drop(self, deployment: str) -> None:
        """Give up on `deployment` for this request: skip its remaining (same-deployment)
        tries."""
        self._queue = [c for c in self._queue if c.deployment.id != deployment]

    def next_is_same(self) -> bool:
        """Will the next attempt go to the deployment that just failed (a same-deployment retry)?"""
        return bool(self._queue and self._last is not None and
                    self._queue[0].deployment.id == self._last.deployment.id)

    def retry_in(self) -> float | None:
        """For an all-circuits-open failure: seconds until the first skipped one reopens."""
        waits = [self._circuits.retry_in(d) for d in self.skipped]
        return min(waits) if waits else None
