"""`price`: lowest predicted cost of this request (prompt + expected output tokens) first."""

from __future__ import annotations

import random
from collections.abc import Sequence

from ...stats.snapshot import Snapshot
from .base import Candidate, RankContext, by_score


def rank(
    ctx: RankContext, candidates: Sequence[Candidate], snapshot: Snapshot, rng: random.Random
) -> list[Candidate]:
    return by_score(candidates, [c.prediction.cost_usd for c in candidates])
