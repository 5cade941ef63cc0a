"""Views of the stats as of one moment, handed to policies (which must not read anything
live, nor change these)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["DeploymentEstimate", "Snapshot"]


# Not frozen, though nothing changes one once made (`dataclasses.replace` makes another): one is
# built per deployment per request, and a frozen dataclass's __init__ sets each of these 31
# fields through object.__setattr__ (2.4 us an estimate, 0.3 us plain; issue 17).
@dataclass(slots=True)
class DeploymentEstimate:
    deployment: str
    samples: int  # attempts ever observed
    weight: float  # decayed sample weight: how much the estimates below still rest on
    age_s: float | None  # since the last observation; None when never observed
    stale: bool
    ttft_p50_s: float | None
    ttft_p90_s: float | None
    ttft_per_1k_prompt_s: float  # how TTFT grows with prompt length
    ttft_mean_prompt_tokens: float | None  # the prompt length ttft_p50_s belongs to
    decode_tps_p50: float | None
    error_rate: float | None
    rate_limit_rate: float | None
    usd_per_m_output: float | None  # effective: actual cost / actual output tokens
    mean_output_tokens: float | None
    in_flight: int
    # Streams in flight right now: their decode speed so far and the longest wait for a first
    # token. A slow provider is demoted before its slow streams finish.
    live_decode_tps: float | None = None
    live_wait_s: float | None = None
    circuit: str = "closed"
    # Recent samples disagree with the estimates (a level shift is suspected, not yet
    # confirmed): the planner sends it a request or two to settle the question.
    shifting: bool = False
    # A pending shift toward worse, while recent (StatsSettings.bad_news_hold_s): the level the
    # latest samples show, which predictions use before the shift is confirmed.
    ttft_slower_s: float | None = None
    decode_tps_slower: float | None = None
    # What each speed estimate rests on: attempts that measured it, and the age of the last
    # one (a failing deployment keeps adding samples, but no TTFT or decode speed).
    ttft_samples: int = 0
    ttft_age_s: float | None = None
    decode_samples: int = 0
    decode_age_s: float | None = None
    ttft_p99_s: float | None = None
    # Recent samples are better than the estimates (a recovery, not yet confirmed).
    getting_better: bool = False
    # The usual level before the latest slowdown, while the deployment is still that much
    # below it (StatsSettings.healthy_memory_s): what re-measuring it may win back.
    ttft_healthy_s: float | None = None
    decode_tps_healthy: float | None = None
    # The latest attempt got no first token before the gateway gave up on it: how long it
    # waited (until a first token arrives again, for at most bad_news_hold_s).
    ttft_overdue_s: float | None = None
    # What the provider itself reports as queueing (time_info.queue_time), decayed mean.
    queue_s: float | None = None

    @property
    def got_slower(self) -> bool:
        """Recent samples say it got slower (not yet confirmed as a new level)."""
        return self.ttft_slower_s is not None or self.decode_tps_slower is not None

    @property
    def below_usual(self) -> bool:
        """Measured worse than its own usual level (a slowdown that may end)."""
        return (self.got_slower or self.ttft_healthy_s is not None
                or self.decode_tps_healthy is not None or self.ttft_overdue_s is not None)

    @property
    def known(self) -> bool:
        return self.samples > 0 and not self.stale

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float
    estimates: dict[str, DeploymentEstimate] = field(default_factory=dict)

    def get(self, deployment: str) -> DeploymentEstimate | None:
        return self.estimates.get(deployment)
