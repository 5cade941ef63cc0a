"""Per-deployment stats: observations in, a frozen `Snapshot` out. The clock is injected.

In-process store. Attempts in flight are tracked too (`track`/`untrack`), so a deployment whose
current streams trickle far below its estimate is demoted while they still run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ..clock import Clock
from .decay import DecayedMean, DecayedQuantiles, DecayedRegression, LevelShift
from .observation import Observation
from .snapshot import DeploymentEstimate, Snapshot

__all__ = ["LiveAttempt", "StatsSettings", "StatsStore"]

_FAILURES = frozenset({"5xx", "429", "timeout", "connect", "stall", "bad_response", "auth"})


@dataclass(frozen=True, slots=True)
class StatsSettings:
    half_life_s: float = 300.0
    stale_after_s: float = 600.0
    # A live stream counts once it has produced this many tokens or run this long.
    live_min_tokens: int = 8
    live_min_seconds: float = 1.0
    # Before that, a stream counts with an upper bound on its speed once it has run this long.
    live_bound_seconds: float = 0.25
    # Quantiles cost a sort and an exp() per sample: under load, recompute them at most this
    # often (new samples in between wait their turn; routing on 0.5 s old medians is fine).
    quantile_refresh_s: float = 0.5
    # The streams in flight are walked once per estimate: exact while few, but at hundreds in
    # flight that walk was per-request work growing with load (issue 17). From this many on,
    # their signals are reused for up to `live_refresh_s` (one stream more or less barely
    # moves a median of hundreds; a trickle still shows within a quarter second).
    live_cache_min: int = 64
    live_refresh_s: float = 0.1
    # Level shifts (see `LevelShift`): this many samples in a row, each this many times off
    # the recent level on the same side, replace the history. TTFT is heavier-tailed than
    # decode speed, so it takes a larger factor.
    shift_samples: int = 3
    decode_shift_factor: float = 1.5
    ttft_shift_factor: float = 2.0
    # Bad news acts at once, for a while: an unconfirmed run of slower samples is what the
    # estimates report (`*_slower`) until this long after its latest sample, so routing stops
    # sending users to a deployment that just got slower without waiting for the shift to be
    # confirmed (the planner sends it one confirming request at a time). A bound, in case
    # nothing confirms or dismisses the run: then the estimates stand again.
    bad_news_hold_s: float = 60.0
    # What a deployment measured before a slowdown is remembered this long as its usual
    # level ("healthy"): while it is below it, it is worth re-measuring often (a recovery
    # should be seen in seconds, however long the slowdown lasted). After this long the slow
    # level is simply what the deployment is.
    healthy_memory_s: float = 3600.0
    # A level counts as below the usual one when it is this many times worse.
    healthy_factor: float = 1.25


class LiveAttempt(Protocol):
    """What the store reads from an attempt in flight (the engine's AttemptMeter)."""

    sent_at: float
    first_at: float | None
    chunks: int


def _slower(shift: LevelShift, worse_side: int, now: float, hold_s: float) -> float | None:
    """The level of a pending run on the worse side, while its latest sample is recent."""
    run = shift.pending_run()
    if run is None:
        return None
    side, level, last_at = run
    return level if side == worse_side and now - last_at <= hold_s else None


def _better_pending(shift: LevelShift, worse_side: int) -> bool:
    run = shift.pending_run()
    return run is not None and run[0] == -worse_side


def _healthy(shift: LevelShift, worse_side: int, now: float, s: StatsSettings) -> float | None:
    """The level before the last shift, when that shift went the worse way (recently enough
    to still be the deployment's usual level) and the current one is still that much worse."""
    previous, level, at = shift.previous(), shift.level(), shift.shifted_at
    if previous is None or level is None or at is None or now - at > s.healthy_memory_s:
        return None
    worse_by = level / previous if worse_side > 0 else previous / level
    return previous if worse_by >= s.healthy_factor else None


@dataclass(slots=True)
class _Seen:
    """How many times one signal was measured, and when last."""

    count: int = 0
    last_at: float | None = None

    def saw(self, at: float) -> None:
        self.count += 1
        self.last_at = at

    def age(self, now: float) -> float | None:
        return None if self.last_at is None else now - self.last_at


class _DeploymentStats:
    def __init__(self, s: StatsSettings) -> None:
        half_life = s.half_life_s
        self.samples = 0
        self.last_at: float | None = None
        self.ttft_seen = _Seen()
        self.decode_seen = _Seen()
        # The latest attempt that got no first token before the gateway gave up on it (its
        # TTFT deadline, or a hedge that answered first): how long it waited, and when.
        self.overdue: tuple[float, float] | None = None
        # When the latest attempts that measured a first token / a decode speed were sent:
        # streams in flight sent before them are old news (see `StatsStore._live_signals`).
        self.ttft_sent_at = float("-inf")
        self.decode_sent_at = float("-inf")
        self.ttft = DecayedQuantiles(half_life)
        self.ttft_fit = DecayedRegression(half_life)
        self.decode = DecayedQuantiles(half_life)
        self.failures = DecayedMean(half_life)
        self.rate_limited = DecayedMean(half_life)
        self.cost = DecayedMean(half_life)
        self.output = DecayedMean(half_life)
        self.tokens_per_chunk = DecayedMean(half_life)
        self.queue = DecayedMean(half_life)  # provider-reported queue time
        self.ttft_shift = LevelShift(half_life, s.ttft_shift_factor, s.shift_samples)
        self.decode_shift = LevelShift(half_life, s.decode_shift_factor, s.shift_samples)

        self._quantiles: tuple[float, int, Any, Any] | None = None

    def quantiles(
        self, now: float, refresh_s: float
    ) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
        """(TTFT p50, p90, p99) and (decode p50), cached while fresh or nothing new arrived."""
        cached = self._quantiles
        if cached is None or (cached[1] != self.samples and now - cached[0] >= refresh_s):
            ttft = self.ttft.quantiles((0.5, 0.9, 0.99), now)
            decode = self.decode.quantiles((0.5,), now)
            cached = self._quantiles = (now, self.samples, ttft, decode)
        return cached[2], cached[3]

    def add(self, obs: Observation) -> None:
        if obs.outcome == "cancelled" and obs.ttft_s is None:
            return  # the client left before anything was learnt
        at = obs.at
        self.samples += 1
        self.last_at = at
        if obs.outcome != "cancelled":
            self.failures.add(1.0 if obs.outcome in _FAILURES else 0.0, at)
            self.rate_limited.add(1.0 if obs.outcome == "429" else 0.0, at)
        if obs.ttft_s is not None:
            # Judged at the typical prompt length, so a long prompt is not mistaken for a shift.
            mean_x = self.ttft_fit.mean_x()
            typical = obs.ttft_s
            if mean_x is not None:
                grow = self.ttft_fit.slope(min_spread=50.0) * (obs.prompt_tokens - mean_x)
                typical = max(obs.ttft_s - grow, obs.ttft_s * 0.25)
            if (began := self.ttft_shift.add(typical, at)) is not None:
                self.ttft.forget_before(began)
                self._quantiles = None
            self.ttft.add(obs.ttft_s, at)
            self.ttft_seen.saw(at)
            self.ttft_fit.add(obs.prompt_tokens, obs.ttft_s, at)
            self.overdue = None
            self.ttft_sent_at = max(self.ttft_sent_at, at - obs.total_s)
        elif obs.outcome == "timeout" and obs.total_s > 0:
            # No first token: not a TTFT sample (the real one is unknown, only longer), but
            # evidence that first tokens are late now, kept until one arrives again.
            self.overdue = (obs.total_s, at)
        if obs.decode_tps is not None:
            if (began := self.decode_shift.add(obs.decode_tps, at)) is not None:
                self.decode.forget_before(began)
                self._quantiles = None
            self.decode.add(obs.decode_tps, at)
            self.decode_seen.saw(at)
            self.decode_sent_at = max(self.decode_sent_at, at - obs.total_s)
        if obs.queue_s is not None:
            self.queue.add(obs.queue_s, at)
        if obs.output_tokens > 0:
            # Weighted by tokens: sum(cost) / sum(tokens), both decayed alike.
            self.cost.add(obs.cost / obs.output_tokens * 1e6, at, weight=obs.output_tokens)
            self.output.add(obs.output_tokens, at)
            if obs.chunks > 0:
                self.tokens_per_chunk.add(obs.output_tokens / obs.chunks, at, weight=obs.chunks)


class StatsStore:
    def __init__(self, clock: Clock, settings: StatsSettings | None = None) -> None:
        self.clock = clock
        self.settings = settings or StatsSettings()
        self._stats: dict[str, _DeploymentStats] = {}
        self._live: dict[str, set[LiveAttempt]] = {}
        self._forgot_at: dict[str, float] = {}  # when each deployment's failures were forgotten
        # deployment -> (computed at, its inputs, (live tps, longest wait)): `_live_of`
        self._live_cache: dict[str, tuple[float, tuple[float, float, float], Any]] = {}

    def observe(self, obs: Observation) -> None:
        stats = self._stats.get(obs.deployment)
        if stats is None:
            stats = self._stats[obs.deployment] = _DeploymentStats(self.settings)
        stats.add(obs)

    def observe_peer(self, obs: Observation) -> None:
        """What another replica measured (tokenlane.state), reaching this one a moment late:
        a failure from before the outage was declared over here is history, as it would
        have been had it arrived in time."""
        forgot_at = self._forgot_at.get(obs.deployment)
        if forgot_at is not None and obs.at < forgot_at and obs.outcome in _FAILURES:
            return
        self.observe(obs)

    def forget_failures(self, deployment: str) -> None:
        """A deployment proved it recovered (its circuit closed): its outage is history."""
        self._forgot_at[deployment] = self.clock.now()
        stats = self._stats.get(deployment)
        if stats is not None:
            stats.failures = DecayedMean(self.settings.half_life_s)
            stats.rate_limited = DecayedMean(self.settings.half_life_s)

    def tokens_per_chunk(self, deployment: str) -> float:
        """Tokens a chunk of this deployment's streams carries, as learnt (1 until known)."""
        stats = self._stats.get(deployment)
        return (stats.tokens_per_chunk.value() if stats is not None else None) or 1.0

    def track(self, deployment: str, attempt: LiveAttempt) -> None:
        self._live.setdefault(deployment, set()).add(attempt)

    def untrack(self, deployment: str, attempt: LiveAttempt) -> None:
        live = self._live.get(deployment)
        if live is not None:
            live.discard(attempt)

    def snapshot(
        self, deployments: Iterable[str], circuit: Callable[[str], str] | None = None
    ) -> Snapshot:
        """Estimates as of now; `circuit` (the breaker's state lookup) is folded in so the
        planner can see which deployments are due a trial."""
        now = self.clock.now()
        estimates = {d: self._estimate(d, now) for d in deployments}
        if circuit is not None:
            for d, e in estimates.items():
                state = circuit(d)
                if state != "closed":
                    estimates[d] = replace(e, circuit=state)
        return Snapshot(now, estimates)

    def _estimate(self, deployment: str, now: float) -> DeploymentEstimate:
        stats = self._stats.get(deployment)
        live = self._live.get(deployment, ())
        per_chunk = self.tokens_per_chunk(deployment)
        if stats is None:
            live_tps, live_wait = self._live_of(deployment, live, now, per_chunk)
            return DeploymentEstimate(
                deployment, 0, 0.0, None, True, None, None, 0.0, None, None, None, None, None,
                None, len(live), live_tps, live_wait,
            )
        live_tps, live_wait = self._live_of(deployment, live, now, per_chunk,
                                            stats.ttft_sent_at, stats.decode_sent_at)
        ttft, decode = stats.quantiles(now, self.settings.quantile_refresh_s)
        age = None if stats.last_at is None else now - stats.last_at
        return DeploymentEstimate(
            deployment=deployment,
            samples=stats.samples,
            weight=stats.failures.weight(now),
            age_s=age,
            stale=age is None or age > self.settings.stale_after_s,
            ttft_p50_s=ttft[0] if ttft else None,
            ttft_p90_s=ttft[1] if ttft else None,
            ttft_p99_s=ttft[2] if ttft else None,
            # TTFT regressions only mean something across a spread of prompt lengths.
            ttft_per_1k_prompt_s=stats.ttft_fit.slope(min_spread=50.0) * 1000,
            ttft_mean_prompt_tokens=stats.ttft_fit.mean_x(),
            decode_tps_p50=decode[0] if decode else None,
            error_rate=stats.failures.value(),
            rate_limit_rate=stats.rate_limited.value(),
            usd_per_m_output=stats.cost.value(),
            mean_output_tokens=stats.output.value(),
            in_flight=len(live),
            live_decode_tps=live_tps,
            live_wait_s=live_wait,
            shifting=stats.ttft_shift.pending or stats.decode_shift.pending,
            ttft_slower_s=_slower(stats.ttft_shift, +1, now, self.settings.bad_news_hold_s),
            decode_tps_slower=_slower(stats.decode_shift, -1, now, self.settings.bad_news_hold_s),
            getting_better=(_better_pending(stats.ttft_shift, +1)
                            or _better_pending(stats.decode_shift, -1)),
            ttft_healthy_s=_healthy(stats.ttft_shift, +1, now, self.settings),
            decode_tps_healthy=_healthy(stats.decode_shift, -1, now, self.settings),
            ttft_overdue_s=self._overdue(stats, now),
            queue_s=stats.queue.value(),
            ttft_samples=stats.ttft_seen.count,
            ttft_age_s=stats.ttft_seen.age(now),
            decode_samples=stats.decode_seen.count,
            decode_age_s=stats.decode_seen.age(now),
        )

    def _overdue(self, stats: _DeploymentStats, now: float) -> float | None:
        """How long the latest attempt waited in vain for a first token, while that is the
        latest news (no first token since) and recent."""
        if stats.overdue is None:
            return None
        waited, at = stats.overdue
        return waited if now - at <= self.settings.bad_news_hold_s else None

    def _live_of(
        self, deployment: str, live: set[LiveAttempt] | tuple[()], now: float,
        tokens_per_chunk: float, ttft_sent_at: float = float("-inf"),
        decode_sent_at: float = float("-inf"),
    ) -> tuple[float | None, float | None]:
        """`_live_signals`, reused for a moment when many streams are in flight."""
        if len(live) < self.settings.live_cache_min:
            return self._live_signals(live, now, tokens_per_chunk, ttft_sent_at, decode_sent_at)
        inputs = (tokens_per_chunk, ttft_sent_at, decode_sent_at)
        cached = self._live_cache.get(deployment)
        if (cached is not None and cached[1] == inputs
                and 0 <= now - cached[0] < self.settings.live_refresh_s):
            return cached[2]
        signals = self._live_signals(live, now, tokens_per_chunk, ttft_sent_at, decode_sent_at)
        self._live_cache[deployment] = (now, inputs, signals)
        return signals

    def _live_signals(
        self, live: Iterable[LiveAttempt], now: float, tokens_per_chunk: float,
        ttft_sent_at: float = float("-inf"), decode_sent_at: float = float("-inf"),
    ) -> tuple[float | None, float | None]:
        """Median decode tokens/s of the streams in flight, and the longest wait for a first
        token. Streams count chunks, estimates count tokens: `tokens_per_chunk` (learnt from
        finished attempts) converts, so a provider that packs tokens is not seen as slow.

        A stream sent before the latest finished attempt that measured the same thing is old
        news: a trickle that began before a recovery goes on trickling after it (a provider
        does not speed up a stream it already serves slowly), and once a later request has
        shown the deployment well, those leftovers must not keep it demoted."""
        rates = []
        longest_wait = None
        s = self.settings
        for attempt in live:
            if attempt.first_at is None:
                if attempt.sent_at < ttft_sent_at:
                    continue
                wait = now - attempt.sent_at
                longest_wait = wait if longest_wait is None else max(longest_wait, wait)
                continue
            if attempt.sent_at < decode_sent_at:
                continue
            elapsed = now - attempt.first_at
            enough = attempt.chunks >= s.live_min_tokens or elapsed >= s.live_min_seconds
            if enough and elapsed > 0:
                rates.append(max(attempt.chunks - 1, 0) * tokens_per_chunk / elapsed)
            elif elapsed >= s.live_bound_seconds:
                # Too early for a rate, not for a bound: were a token to arrive this instant
                # the stream would be going this fast, and it is going no faster. A trickle
                # shows in a quarter of a second this way, not after a second or 8 tokens.
                rates.append(attempt.chunks * tokens_per_chunk / elapsed)
        if not rates:
            return None, longest_wait
        rates.sort()
        return rates[len(rates) // 2], longest_wait
