"""Is a deployment well right now, and is it worth re-measuring? (pure: estimates in, verdicts out)

Two questions, asked of every deployment's estimate:

- **Unhealthy now** (`unhealthy`): its first tokens are overdue (an attempt in flight has
  waited well past its own TTFT p90, or the latest one got none before the gateway gave up),
  its streams trickle far below its usual decode speed, or it fails more often than not. The
  planner puts such a deployment after the healthy ones under every adaptive policy: a
  `throughput` ranking that ignores TTFT, or a `price` ranking that ignores speed, must still
  not send users into a stall or a trickle.
- **Below its usual self** (`degraded`): unhealthy, circuit not closed, or measured worse than
  the level it held before its latest slowdown. Such a deployment may recover at any moment,
  and what it wins back when it does is the gap to its usual level, so it is re-measured
  often (see `rechecks`); one merely idle at its usual level is re-measured rarely.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..stats.snapshot import DeploymentEstimate

__all__ = ["HealthSettings", "degraded", "overdue_after", "probe_deadline", "ttft_timeout",
           "unhealthy"]


@dataclass(frozen=True, slots=True)
class HealthSettings:
    # A first token is overdue this many times the deployment's own TTFT p90 after the
    # request was sent (and never sooner than `overdue_min_s`, so a jittery fast provider is
    # not called stalled over a few milliseconds).
    overdue_factor: float = 2.0
    overdue_min_s: float = 0.25
    # Streams this many times slower than the deployment's usual decode speed trickle.
    trickle_factor: float = 3.0
    # TTFT p90 needs this many first tokens behind it before it can call one overdue.
    min_ttft_samples: int = 3
    max_error_rate: float = 0.5
    # The learned TTFT deadline: this many times the deployment's TTFT p99 (for the prompt's
    # length), never below `timeout_min_s`, once `timeout_min_samples` first tokens back it.
    timeout_p99_multiple: float = 4.0
    timeout_min_s: float = 1.0
    timeout_min_samples: int = 10


def overdue_after(e: DeploymentEstimate | None, s: HealthSettings,
                  p90_s: float | None = None) -> float | None:
    """Seconds after sending when a first token from this deployment is overdue; None while
    its TTFT is too thinly measured to say. `p90_s` overrides the estimate's p90 (the planner
    passes the one predicted for this request's prompt length)."""
    if e is None or e.ttft_samples < s.min_ttft_samples:
        return None
    p90 = p90_s if p90_s is not None else e.ttft_p90_s
    if p90 is None:
        return None
    return max(s.overdue_factor * p90, s.overdue_min_s)


def unhealthy(e: DeploymentEstimate | None, s: HealthSettings) -> str | None:
    """Why this deployment should not get users now, whatever the policy; None when well."""
    if e is None:
        return None
    if e.error_rate is not None and e.error_rate > s.max_error_rate:
        return "failing"
    if e.ttft_overdue_s is not None:
        return "first token overdue"
    limit = overdue_after(e, s)
    if limit is not None and e.live_wait_s is not None and e.live_wait_s > limit:
        return "first token overdue"
    usual = e.decode_tps_healthy or e.decode_tps_p50
    if usual is not None:
        now = min((v for v in (e.live_decode_tps, e.decode_tps_slower, e.decode_tps_p50)
                   if v is not None), default=usual)
        if now * s.trickle_factor < usual:
            return "trickling"
    return None


def degraded(e: DeploymentEstimate | None, s: HealthSettings) -> bool:
    """Below its usual self: worth re-measuring soon (see the module docstring)."""
    if e is None:
        return False
    return e.circuit != "closed" or e.below_usual or unhealthy(e, s) is not None


def ttft_timeout(e: DeploymentEstimate | None, prompt_tokens: int, s: HealthSettings,
                 cap: float) -> float:
    """How long to wait for this deployment's first token: a multiple of its own TTFT p99 at
    this prompt length, so a provider that usually answers in 200 ms is given up on in about
    a second, not after `cap`; `cap` until its TTFT is measured well enough to know."""
    if e is None or e.ttft_p99_s is None or e.ttft_samples < s.timeout_min_samples:
        return cap
    grow = 0.0
    if e.ttft_mean_prompt_tokens is not None:
        grow = max(0.0, (prompt_tokens - e.ttft_mean_prompt_tokens) / 1000
                   * e.ttft_per_1k_prompt_s)
    return min(cap, max(s.timeout_min_s, s.timeout_p99_multiple * (e.ttft_p99_s + grow)))


def probe_deadline(e: DeploymentEstimate | None, max_tokens: int, s: HealthSettings
                   ) -> float | None:
    """How long a probe of `max_tokens` may take: `trickle_factor` times what the deployment
    usually needs for it (at its usual level, never less than 2 s). A probe that has not
    finished by then has shown what it was sent to show (still slow) and must not hold up the
    next recheck: a trickling provider takes 8 s to send 16 tokens at 2 tok/s, and its
    recovery would be seen that much later. None while too little is known to say."""
    if e is None or e.ttft_p90_s is None:
        return None
    usual_tps = e.decode_tps_healthy or e.decode_tps_p50
    if not usual_tps:
        return None
    ttft = e.ttft_healthy_s or e.ttft_p90_s
    return max(2.0, s.trickle_factor * (ttft + max_tokens / usual_tps))
