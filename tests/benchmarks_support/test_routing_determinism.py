"""The routing benchmark is deterministic: one seed, one set of numbers, whatever the machine.

Each arm runs on virtual time with seeded arrivals, seeded simulator jitter and a seeded
gateway rng, so nothing the wall clock or the machine's load does can move a number.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import routing

_WALL = ("wall_s", "cpu_s")


def _run(seed: int) -> dict[str, Any]:
    result = routing.run_job({"scenario": "decode_dip", "arm": "throughput", "seed": seed,
                              "smoke": True})
    return {k: v for k, v in result.items() if k not in _WALL}


def test_same_seed_same_numbers_and_another_seed_other_numbers() -> None:
    first, again, other = _run(1), _run(1), _run(2)
    assert first == again
    assert first["requests"] > 100  # 4 req/s over the 40 s compressed timeline
    assert [e["kind"] for e in first["events"]] == ["degrade", "recover"]
    assert other["requests"] != first["requests"] or other["mean_e2e_s"] != first["mean_e2e_s"]
