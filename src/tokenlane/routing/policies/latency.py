"""`latency`: lowest predicted time to first token for this prompt length first."""

from __future__ import annotations

import random
from collections.abc import Sequence

from ...stats.snapshot import Snapshot
from .base import Candidate, RankContext, by_score


def rank(
    ctx: RankContext, candidates: Sequence[Candidate], snapshot: Snapshot, rng: random.Random
) -> list[Candidate]:
    return by_score(candidates, [c.prediction.ttft_s for c in candidates])
