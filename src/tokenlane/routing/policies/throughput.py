"""`throughput`: highest predicted decode tokens/s first."""

from __future__ import annotations

import random
from collections.abc import Sequence

from ...stats.snapshot import Snapshot
from .base import Candidate, RankContext, by_score


def rank(
    ctx: RankContext, candidates: Sequence[Candidate], snapshot: Snapshot, rng: random.Random
) -> list[Candidate]:
    return by_score(candidates, [-c.prediction.decode_tps for c in candidates])
