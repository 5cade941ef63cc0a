"""`weighted`: static random split by configured weight (weighted shuffle, rng injected)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from ...stats.snapshot import Snapshot
from .base import Candidate, RankContext, by_score


def rank(
    ctx: RankContext, candidates: Sequence[Candidate], snapshot: Snapshot, rng: random.Random
) -> list[Candidate]:
    # Efraimidis-Spirakis: key = U^(1/w); sorting by -key is a weighted random permutation.
    keys = [-(rng.random() ** (1.0 / max(c.deployment.weight, 1e-9))) for c in candidates]
    return by_score(candidates, keys)
