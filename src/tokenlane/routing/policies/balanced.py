"""`balanced`: lowest predicted cost + value of time × predicted duration.

With value_of_time at $V per hour of waiting, a deployment that is $0.001 dearer must save
at least 3.6/V seconds to win. V = 0 is `price`; a very large V approaches fastest-to-finish.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from ...stats.snapshot import Snapshot
from .base import Candidate, RankContext, by_score


def rank(
    ctx: RankContext, candidates: Sequence[Candidate], snapshot: Snapshot, rng: random.Random
) -> list[Candidate]:
    per_second = ctx.value_of_time / 3600
    return by_score(
        candidates,
        [c.prediction.cost_usd + per_second * c.prediction.duration_s for c in candidates],
    )
