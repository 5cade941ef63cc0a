"""What every policy sees and returns. Policies are pure: no clock, no I/O, rng injected."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from ...stats.snapshot import DeploymentEstimate, Snapshot
from ...types import Deployment
from ..predict import Prediction

__all__ = ["Candidate", "Policy", "RankContext", "by_score"]


@dataclass(frozen=True, slots=True)
class RankContext:
    prompt_tokens: int
    output_tokens: int  # expected
    value_of_time: float  # USD per hour of waiting (balanced)
    order: tuple[str, ...] = ()  # requested provider/deployment order (order)


@dataclass(frozen=True, slots=True)
class Candidate:
    deployment: Deployment
    prediction: Prediction
    estimate: DeploymentEstimate | None
    score: float = 0.0  # lower is better; what the policy ranked by

    def matches(self, name: str) -> bool:
        """A request names deployments by provider (`cerebras`) or full id."""
        return name == self.deployment.provider.name or name == self.deployment.id


class Policy(Protocol):
    def __call__(
        self,
        ctx: RankContext,
        candidates: Sequence[Candidate],
        snapshot: Snapshot,
        rng: random.Random,
    ) -> list[Candidate]:
        """Candidates best first, each with the score it was ranked by."""
        ...


def by_score(candidates: Sequence[Candidate], scores: Sequence[float]) -> list[Candidate]:
    """Sort by score; ties keep config order (Python's sort is stable)."""
    scored = [replace(c, score=s) for c, s in zip(candidates, scores, strict=True)]
    return sorted(scored, key=lambda c: c.score)
