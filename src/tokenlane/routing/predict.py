"""Predictions for one request on one deployment, from a stats snapshot (pure).

predicted duration ≈ TTFT(prompt length) + expected output tokens / decode tokens per second
predicted cost     = prompt tokens × input price + expected output tokens × output price

Deployments with no samples borrow the median of their siblings (the prior), so they are
neither favoured nor buried before exploration measures them.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

from ..stats.snapshot import DeploymentEstimate
from ..types import Deployment

__all__ = ["Prediction", "Prior", "predict", "prior_from"]

_DEFAULT_TTFT_S = 1.0
_DEFAULT_TPS = 50.0


@dataclass(frozen=True, slots=True)
class Prior:
    ttft_s: float = _DEFAULT_TTFT_S
    decode_tps: float = _DEFAULT_TPS


@dataclass(frozen=True, slots=True)
class Prediction:
    ttft_s: float
    ttft_p90_s: float
    decode_tps: float
    duration_s: float
    cost_usd: float
    error_rate: float
    measured: bool


def prior_from(estimates: list[DeploymentEstimate]) -> Prior:
    ttfts = [e.ttft_p50_s for e in estimates if e.ttft_p50_s is not None]
    tps = [e.decode_tps_p50 for e in estimates if e.decode_tps_p50 is not None]
    return Prior(median(ttfts) if ttfts else _DEFAULT_TTFT_S, median(tps) if tps else _DEFAULT_TPS)


def predict(
    deployment: Deployment,
    estimate: DeploymentEstimate | None,
    prompt_tokens: int,
    output_tokens: int,
    prior: Prior,
) -> Prediction:
    ttft = prior.ttft_s
    ttft_p90 = ttft * 1.5
    tps = prior.decode_tps
    error_rate = 0.0
    measured = False
    if estimate is not None:
        if estimate.ttft_p50_s is not None:
            measured = True
            grow = 0.0
            if estimate.ttft_mean_prompt_tokens is not None:
                grow = (prompt_tokens - estimate.ttft_mean_prompt_tokens) / 1000
                grow *= estimate.ttft_per_1k_prompt_s
            ttft = max(estimate.ttft_p50_s + grow, estimate.ttft_p50_s * 0.25)
            ttft_p90 = max((estimate.ttft_p90_s or ttft) + grow, ttft)
        if estimate.decode_tps_p50 is not None:
            tps = estimate.decode_tps_p50
        # What streams in flight show right now, and what the latest finished ones showed
        # before it is confirmed as a new level, override history when they are worse.
        for worse in (estimate.live_decode_tps, estimate.decode_tps_slower):
            if worse is not None:
                tps = min(tps, worse)
        for worse in (estimate.live_wait_s, estimate.ttft_slower_s, estimate.ttft_overdue_s):
            if worse is not None:
                ttft = max(ttft, worse)
                ttft_p90 = max(ttft_p90, ttft)
        error_rate = estimate.error_rate or 0.0
    tps = max(tps, 0.01)
    return Prediction(
        ttft_s=ttft,
        ttft_p90_s=ttft_p90,
        decode_tps=tps,
        duration_s=ttft + output_tokens / tps,
        cost_usd=deployment.price.cost(prompt_tokens, output_tokens),
        error_rate=error_rate,
        measured=measured,
    )
