"""The `routing:` section: policy defaults, failover, circuits, probes, rechecks, health.

How requests are spread over a model's deployments and how measurement steers them; a
model's own `failover` and policy (config_providers.ModelSettings) override these defaults.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .config_base import _Strict

PolicyName = Literal["balanced", "throughput", "latency", "price", "order", "weighted"]


class FailoverSettings(_Strict):
    """Retries, fallbacks, deadlines, hedging. In `routing.failover` for every model; a
    model's own `failover` overrides only the keys it sets."""

    max_attempts: int = Field(4, ge=1, le=20)
    retry_same: int = Field(0, ge=0, le=5, description="extra tries on one deployment")
    deadline_s: float = Field(300.0, gt=0)
    ttft_timeout_s: float | None = Field(
        None, gt=0, description="fixed TTFT deadline; unset: learned from each deployment's p99")
    max_ttft_timeout_s: float = Field(30.0, gt=0, description="bound of the learned deadline")
    stall_timeout_s: float = Field(30.0, gt=0)
    connect_timeout_s: float | None = Field(None, gt=0)
    hedge: bool = False
    hedge_delay_s: float = Field(1.0, ge=0)
    hedge_overdue: bool = Field(True, description="hedge when a first token is overdue")
    escape_slow_factor: float | None = Field(
        3.0, gt=1, description="non-stream: restart elsewhere when this many times slower")


class CircuitConfig(_Strict):
    consecutive_failures: int = Field(5, ge=1)
    error_rate: float = Field(0.5, gt=0, le=1)
    min_requests: int = Field(10, ge=1)
    window_s: float = Field(60.0, gt=0)
    open_s: float = Field(1.0, gt=0, description="first cool-down; doubles per failed trial")
    max_open_s: float = Field(30.0, gt=0)
    max_retry_after_s: float = Field(300.0, gt=0, description="Retry-After honoured up to")
    auth_open_s: float = Field(300.0, gt=0, description="open this long on an upstream 401/403")


class ProbeConfig(_Strict):
    """Active probes re-measure deployments users are kept away from (see routing.probes)."""

    enabled: bool = True
    interval_s: float = Field(0.25, gt=0, description="how often the recheck schedule is read")
    max_tokens: int = Field(16, ge=2, le=256)
    spend_cap_usd_per_day: float = Field(1.0, ge=0)


class RecheckConfig(_Strict):
    """When deployments are re-measured (routing.rechecks): degraded ones after `first_s`,
    backing off to `max_s`; idle healthy ones every `idle_s`."""

    first_s: float = Field(1.0, gt=0)
    max_s: float = Field(2.0, gt=0)
    idle_s: float = Field(60.0, gt=0)


class HealthConfig(_Strict):
    """What demotes a deployment under every policy, and the learned TTFT deadline."""

    overdue_factor: float = Field(2.0, gt=1, description="first token later than this x p90")
    trickle_factor: float = Field(3.0, gt=1, description="decoding this many times slower")
    ttft_timeout_p99_multiple: float = Field(4.0, gt=1)
    min_ttft_timeout_s: float = Field(1.0, gt=0)
    healthy_memory_s: float = Field(
        3600.0, gt=0, description="a slowdown is re-measured often for this long")


class RoutingSettings(_Strict):
    """Defaults for every model, and how measurement and exploration behave."""

    policy: PolicyName = "balanced"
    value_of_time: float = Field(10.0, ge=0, description="USD per hour of waiting")
    expected_output_tokens: int = Field(256, gt=0)
    exploration_share: float = Field(0.05, ge=0, le=1)
    half_life_s: float = Field(300.0, gt=0, description="old samples fade at this pace")
    stale_after_s: float = Field(600.0, gt=0, description="unused this long = stale")
    recheck_after_s: float = Field(
        60.0, gt=0, description="a `require` miss on TTFT/decode speed binds this long")
    bad_news_hold_s: float = Field(
        60.0, ge=0, description="slower samples, not yet a confirmed shift, count this long")
    failover: FailoverSettings = FailoverSettings()
    circuit: CircuitConfig = CircuitConfig()
    hedge_budget: float = Field(0.1, ge=0, le=1, description="max share of requests hedged")
    probes: ProbeConfig = ProbeConfig()
    rechecks: RecheckConfig = RecheckConfig()
    health: HealthConfig = HealthConfig()
