"""What the dashboard plots: every attempt's measurements, kept in time buckets for a window.

The stats store answers "how fast is it now" (one estimate per deployment); a person also wants
to see how that moved over the last minutes. `TrafficWindow` keeps the raw numbers of each
attempt (TTFT, decode speed, outcome, tokens, cost) in fixed buckets of engine-clock time, at
most `span_s` of them, so memory is bounded by deployments x buckets x `samples_per_bucket`
however much traffic there is. Pure: observations in, plain dicts out, time passed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..stats.observation import Observation

__all__ = ["TrafficWindow"]


@dataclass(slots=True)
class _Bucket:
    attempts: int = 0
    errors: int = 0  # failed attempts, 429s included; cancelled ones are neither
    rate_limited: int = 0
    cancelled: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    ttft: list[float] = field(default_factory=list)
    decode_tps: list[float] = field(default_factory=list)


@dataclass(slots=True)
class _Lane:
    """One deployment's buckets, keyed by bucket number (engine-clock time / bucket_s)."""

    buckets: dict[int, _Bucket] = field(default_factory=dict)


class TrafficWindow:
    def __init__(self, deployments: Iterable[str], *, span_s: float = 900.0,
                 bucket_s: float = 10.0, samples_per_bucket: int = 128) -> None:
        self.span_s = span_s
        self.bucket_s = bucket_s
        self._samples = samples_per_bucket
        # Only configured deployments: the label set stays what the config says.
        self._lanes = {d: _Lane() for d in deployments}

    def observe(self, obs: Observation) -> None:
        lane = self._lanes.get(obs.deployment)
        if lane is None:
            return
        number = math.floor(obs.at / self.bucket_s)
        bucket = lane.buckets.get(number)
        if bucket is None:
            bucket = lane.buckets[number] = _Bucket()
            self._forget_before(lane, number - self._bucket_count())
        bucket.attempts += 1
        if obs.outcome == "cancelled":
            bucket.cancelled += 1
        elif obs.outcome != "ok":
            bucket.errors += 1
            bucket.rate_limited += obs.outcome == "429"
        bucket.input_tokens += obs.prompt_tokens
        bucket.output_tokens += obs.output_tokens
        bucket.cost += obs.cost
        if obs.ttft_s is not None:
            _keep(bucket.ttft, obs.ttft_s, bucket.attempts, self._samples)
        if obs.decode_tps:
            _keep(bucket.decode_tps, obs.decode_tps, bucket.attempts, self._samples)

    def view(self, now: float) -> dict[str, dict[str, Any]]:
        """Per deployment: `series` (one point per bucket with traffic in the window, `t` its
        start in engine-clock seconds) and `totals` over the whole window."""
        first = math.floor(now / self.bucket_s) - self._bucket_count() + 1
        out = {}
        for deployment, lane in self._lanes.items():
            self._forget_before(lane, first)
            numbers = sorted(lane.buckets)
            buckets = [lane.buckets[n] for n in numbers]
            out[deployment] = {
                "series": {
                    "t": [n * self.bucket_s for n in numbers],
                    "attempts": [b.attempts for b in buckets],
                    "decode_tps_p50": [_quantile(b.decode_tps, 0.5) for b in buckets],
                    "ttft_p50_s": [_quantile(b.ttft, 0.5) for b in buckets],
                    "ttft_p90_s": [_quantile(b.ttft, 0.9) for b in buckets],
                },
                "totals": _totals(buckets),
            }
        return out

    def _bucket_count(self) -> int:
        return max(1, math.ceil(self.span_s / self.bucket_s))

    @staticmethod
    def _forget_before(lane: _Lane, first: int) -> None:
        for number in [n for n in lane.buckets if n < first]:
            del lane.buckets[number]


def _keep(values: list[float], value: float, seen: int, limit: int) -> None:
    """At most `limit` values a bucket: past it, each new one overwrites an older one in turn,
    so a busy bucket still holds a spread of its whole span."""
    if len(values) < limit:
        values.append(value)
    else:
        values[seen % limit] = value


def _quantile(values: list[float], q: float) -> float | None:
    """Nearest-rank quantile; None for no values (a gap in the plot, not a zero)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _totals(buckets: list[_Bucket]) -> dict[str, Any]:
    attempts = sum(b.attempts for b in buckets)
    judged = attempts - sum(b.cancelled for b in buckets)  # cancelled says nothing of health
    errors = sum(b.errors for b in buckets)
    limited = sum(b.rate_limited for b in buckets)
    succeeded = judged - errors
    tokens = sum(b.input_tokens + b.output_tokens for b in buckets)
    cost = sum(b.cost for b in buckets)
    return {
        "attempts": attempts,
        "errors": errors,
        "rate_limited": limited,
        "error_rate": errors / judged if judged else None,
        "rate_limit_rate": limited / judged if judged else None,
        "input_tokens": sum(b.input_tokens for b in buckets),
        "output_tokens": sum(b.output_tokens for b in buckets),
        "cost_usd": cost,
        "usd_per_request": cost / succeeded if succeeded else None,
        "usd_per_m_tokens": cost / tokens * 1e6 if tokens else None,
    }
