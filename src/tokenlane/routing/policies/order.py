"""`order`: static. The request's `order` list first, in that order, then config order."""

from __future__ import annotations

import random
from collections.abc import Sequence

from ...stats.snapshot import Snapshot
from .base import Candidate, RankContext, by_score


def rank(
    ctx: RankContext, candidates: Sequence[Candidate], snapshot: Snapshot, rng: random.Random
) -> list[Candidate]:
    def position(c: Candidate) -> int:
        for i, name in enumerate(ctx.order):
            if c.matches(name):
                return i
        return len(ctx.order)

    return by_score(candidates, [float(position(c)) for c in candidates])
