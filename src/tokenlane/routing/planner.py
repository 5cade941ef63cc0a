"""The planner: candidates → constraints → policy → health → exploration → plan (pure).

    1. hard filters: `only`, `ignore`, `max_price`, `require`, context window
    2. the policy ranks what is left (request `sort`, model suffix, or the model's default)
    3. the request's `order` goes first; soft preferences, deployments that cannot yet show they
       meet a hard constraint, and unhealthy ones (failing, first token overdue, trickling:
       `health`, under every policy but `order`) go last
    4. exploration by users, only where no prober re-measures: deployments never measured are
       tried once each (one at a time); one whose recent samples say it got better gets a
       request or two to confirm it; without a prober, deployments due their recheck
       (`rechecks`) get one request at a time, and stale, thinly measured or unproven ones a
       bounded share of traffic
    5. `allow_fallbacks: false` keeps only the first

Hard constraints (`require`) and what the gateway knows. `max_cost` and `max_price` rest on
configured prices, known before any request: they always apply. `min_throughput` and
`max_latency` rest on measurements, and a miss only excludes while it is recent: a deployment
measured within `recheck_after_s` (not stale, no level shift pending) whose estimates miss is
never used. One never measured, or missing only on older numbers, is not excluded but
*unproven*: it goes after every deployment whose estimates meet the constraint, so it serves
only as an exploration pick (once while unmeasured, then within `exploration_share`) or as a
fallback when nothing else is left. So a cold gateway serves requests that carry an SLO
instead of refusing them (each deployment is tried, then the constraint applies), and a
deployment excluded for being slow is re-measured now and then and can win its traffic back
once it is faster: the prober re-measures it (or, without one, a user's request when its
recheck is due), and a probe's good news is confirmed by a user's request.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..capabilities import screen, unsupported_param
from ..errors import InvalidRequest, NoDeploymentAvailable
from ..request import ChatRequest
from ..stats.snapshot import DeploymentEstimate, Snapshot
from ..types import ModelRoute
from .decision import Decision
from .health import HealthSettings, unhealthy
from .options import Percentiles, RoutingOptions
from .policies import POLICIES, Candidate, RankContext
from .predict import predict, prior_from

__all__ = ["STATIC_POLICIES", "PlannerSettings", "expected_output_tokens", "plan"]

# Users who pick a static policy want it followed: no exploration. Health still applies to
# `weighted` (a split of healthy traffic); `order` is followed to the letter.
STATIC_POLICIES = frozenset({"order", "weighted"})
_UNGATED_POLICIES = frozenset({"order"})
_NO_HEALTH = HealthSettings()


@dataclass(frozen=True, slots=True)
class PlannerSettings:
    exploration_share: float = 0.05
    # Below this decayed sample weight a deployment's numbers are too thin to trust alone.
    min_weight: float = 2.0
    # Deployments failing more often than this are tried after the others.
    max_error_rate: float = 0.5
    # A measurement older than this no longer proves a deployment misses a hard constraint
    # on TTFT or decode speed (see the module docstring).
    recheck_after_s: float = 60.0


def expected_output_tokens(route: ModelRoute, request: ChatRequest) -> int:
    """Output tokens predictions assume: the model's expectation, capped by the request."""
    if request.max_output_tokens is not None:
        return min(route.expected_output_tokens, request.max_output_tokens)
    return route.expected_output_tokens


def plan(
    route: ModelRoute,
    request: ChatRequest,
    options: RoutingOptions,
    snapshot: Snapshot,
    rng: random.Random,
    settings: PlannerSettings,
    sort: str | None = None,
    *,
    health: HealthSettings = _NO_HEALTH,
    probing: bool = False,
    recheck_due: frozenset[str] | None = None,
    no_room: Mapping[str, str] | None = None,
) -> Decision:
    """The ordered plan for one request. `probing`: an active prober re-measures demoted and
    idle deployments, so users are not sent to explore; otherwise `recheck_due` names the
    deployments a user's request may re-measure (one at a time). `no_room`: deployments whose
    provider-reported headroom cannot take this request now, and why (they go last)."""
    policy_name = options.sort or sort or route.policy
    output_tokens = expected_output_tokens(route, request)
    estimates = [snapshot.get(d.id) for d in route.deployments]
    prior = prior_from([e for e in estimates if e is not None])
    candidates = [
        Candidate(d, predict(d, e, request.prompt_tokens, output_tokens, prior), e)
        for d, e in zip(route.deployments, estimates, strict=True)
    ]
    # Capabilities first: a deployment that cannot serve what the request uses is out (rule
    # `reject`, or `require_parameters`) or goes after those that can (see capabilities).
    fit = screen(route.deployments, request.body, require_parameters=options.require_parameters)
    if fit.excluded:
        candidates = [c for c in candidates if c.deployment.id not in fit.excluded]
    candidates, unproven = _filter(candidates, options, request.prompt_tokens, settings)
    if not candidates and fit.excluded:
        raise InvalidRequest(
            f"No deployment of {route.name} that the request allows supports it: "
            + "; ".join(f"{d} {why}" for d, why in fit.excluded.items()),
            param=unsupported_param(fit.used), code="unsupported_parameter")
    if not candidates:
        raise NoDeploymentAvailable(
            f"No deployment of {route.name} satisfies the request's routing constraints "
            "(only/ignore/max_price/require/context window; `require` judged on recent "
            "measurements)"
        )
    ctx = RankContext(
        prompt_tokens=request.prompt_tokens,
        output_tokens=output_tokens,
        value_of_time=options.value_of_time if options.value_of_time is not None
        else route.value_of_time,
        order=tuple(options.order or ()),
    )
    ranked = POLICIES[policy_name](ctx, candidates, snapshot, rng)
    gate = policy_name not in _UNGATED_POLICIES
    sick = {c.deployment.id: why for c in ranked
            if gate and (why := unhealthy(c.estimate, health)) is not None}
    for reasons in (fit.demoted, no_room or {}):
        for d, reason in reasons.items():
            sick.setdefault(d, reason)
    # Demoted for this request itself (a feature it lacks, no room for it): never the one to
    # measure with it (cold start, recheck, explore; confirming skips every demoted one), or
    # an image goes to a model that cannot see it.
    unfit = frozenset(fit.demoted) | frozenset(no_room or ())
    mode = _Exploring(explore=policy_name not in STATIC_POLICIES, probing=probing,
                      recheck_due=(recheck_due or frozenset()) - unfit, unfit=unfit)
    ranked, why = _arrange(ranked, options, settings, rng, unproven, sick, mode, gate)
    if not options.allow_fallbacks:
        ranked = ranked[:1]
    return Decision(policy_name, why, tuple(ranked), demoted=tuple(sick.items()),
                    excluded=tuple(fit.excluded.items()),
                    dropped=tuple((d, ",".join(sorted(f))) for d, f in fit.dropped.items()))


@dataclass(frozen=True, slots=True)
class _Exploring:
    explore: bool  # adaptive policy: users may be sent to measure
    probing: bool  # the prober measures instead of users
    recheck_due: frozenset[str]
    unfit: frozenset[str] = frozenset()  # not to be measured with this request


def _filter(
    candidates: list[Candidate], options: RoutingOptions, prompt: int, settings: PlannerSettings
) -> tuple[list[Candidate], set[str]]:
    """What may serve the request, and which of those cannot yet show they meet `require`."""
    out = []
    unproven: set[str] = set()
    for c in candidates:
        d, p, e = c.deployment, c.prediction, c.estimate
        if options.only and not any(c.matches(n) for n in options.only):
            continue
        if options.ignore and any(c.matches(n) for n in options.ignore):
            continue
        if d.context_window is not None and prompt > d.context_window:
            continue
        if (mp := options.max_price) is not None:
            if mp.prompt is not None and d.price.input > mp.prompt:
                continue
            if mp.completion is not None and d.price.output > mp.completion:
                continue
        if (req := options.require) is not None:
            if req.max_cost is not None and p.cost_usd > req.max_cost:
                continue  # prices are configured: known, binding from the first request
            # A miss excludes only when the numbers are recent; a deployment never measured,
            # or missing on old numbers, is unproven (explored, then judged again).
            fresh = _binds(e, settings)
            if req.min_throughput is not None:
                if e is None or e.decode_tps_p50 is None:
                    unproven.add(d.id)
                elif p.decode_tps < req.min_throughput:
                    if fresh:
                        continue
                    unproven.add(d.id)
            if req.max_latency is not None:
                if not p.measured:
                    unproven.add(d.id)
                elif p.ttft_s > req.max_latency:
                    if fresh:
                        continue
                    unproven.add(d.id)
        out.append(c)
    return out, unproven


def _binds(e: DeploymentEstimate | None, settings: PlannerSettings) -> bool:
    """Are these numbers recent and settled enough to exclude a deployment on?"""
    return (e is not None and e.age_s is not None and not e.stale and not e.shifting
            and e.age_s < settings.recheck_after_s)


def _arrange(
    ranked: list[Candidate],
    options: RoutingOptions,
    settings: PlannerSettings,
    rng: random.Random,
    unproven: set[str],
    sick: dict[str, str],
    mode: _Exploring,
    gate: bool,
) -> tuple[list[Candidate], str]:
    def demoted(c: Candidate) -> int:
        # Stable partition keys: 0 = fine, 1 = misses a soft preference, 2 = not yet shown to
        # meet a hard constraint, 3 = unhealthy (failing, first token overdue, trickling) or
        # a circuit whose trial is the prober's, 4 = circuit open (the walk skips it; listed
        # last so the decision shows it).
        state = c.estimate.circuit if c.estimate is not None else "closed"
        if state == "open":
            return 4
        if c.deployment.id in sick or c.prediction.error_rate > settings.max_error_rate:
            return 3
        if state == "half_open" and mode.probing:
            return 3
        if c.deployment.id in unproven:
            return 2
        return 1 if _misses_preferences(c, options) else 0

    explore = mode.explore
    if explore:
        ranked = sorted(ranked, key=demoted)
    elif gate:  # a static split of the healthy ones: only health reorders it
        ranked = sorted(ranked, key=lambda c: max(demoted(c) - 2, 0))
    if options.order:
        named = [c for n in options.order for c in ranked if c.matches(n)]
        seen = {id(c) for c in named}
        rest = [c for c in ranked if id(c) not in seen] if options.allow_fallbacks else []
        return _dedupe(named) + rest, "order"
    if len(ranked) == 1:
        return ranked, "only"
    if not explore:
        return ranked, "policy"
    # A circuit past its cool-down is due its single trial (the breaker admits one at a time):
    # without it a deployment that failed once would never win traffic back. With a prober
    # running, the trial is a probe's, not a user's.
    trial = None if mode.probing else next(
        (c for c in ranked if c.estimate is not None and c.estimate.circuit == "half_open"),
        None)
    if trial is not None:
        return [trial] + [c for c in ranked if c is not trial], "trial"
    cold = [c for c in ranked if c.deployment.id not in mode.unfit and (c.estimate is None or
            (c.estimate.samples == 0 and c.estimate.in_flight == 0))]
    if cold:
        first = cold[0]
        return [first] + [c for c in ranked if c is not first], "cold"
    # Recent samples contradict the estimates: a request or two (one at a time) confirm the
    # new level or dismiss the outliers, rather than waiting for the exploration share. Bad
    # news is already in the predictions (for `bad_news_hold_s`), so while that one request
    # is in flight every other goes elsewhere: a real slowdown costs a request or two, a
    # one-off hiccup is dismissed by the next answer.
    # With a prober running, only good news is confirmed by a user (the probe that brought it
    # found the deployment well; bad news is the prober's to re-measure).
    shifting = next((c for c in ranked[1:] if c.estimate is not None and c.estimate.shifting
                     and (c.estimate.getting_better or not mode.probing)
                     and c.estimate.in_flight == 0 and demoted(c) < 3), None)
    if shifting is not None:
        return [shifting] + [c for c in ranked if c is not shifting], "confirm"
    if mode.probing:
        return ranked, "policy"
    # No prober: a deployment due its recheck (degraded ones on a backing-off schedule, idle
    # ones now and then; see `rechecks`) gets this one request.
    recheck = next((c for c in ranked[1:] if c.deployment.id in mode.recheck_due
                    and demoted(c) < 4), None)
    if recheck is not None:
        return [recheck] + [c for c in ranked if c is not recheck], "recheck"
    thin = [c for c in ranked[1:] if c.deployment.id not in mode.unfit and (
            c.deployment.id in unproven or (c.estimate is not None and
            (c.estimate.stale or c.estimate.weight < settings.min_weight)))]
    if thin and rng.random() < settings.exploration_share:
        pick = thin[rng.randrange(len(thin))]
        return [pick] + [c for c in ranked if c is not pick], "explore"
    return ranked, "policy"


def _misses_preferences(c: Candidate, options: RoutingOptions) -> bool:
    p = c.prediction
    if not p.measured:
        return False
    want_tps = options.preferred_min_throughput
    if want_tps is not None:
        floor = want_tps if isinstance(want_tps, float | int) else _strictest(want_tps, max)
        if floor is not None and p.decode_tps < floor:
            return True
    want_ttft = options.preferred_max_latency
    if want_ttft is not None:
        if isinstance(want_ttft, float | int):
            if p.ttft_s > want_ttft:
                return True
        else:
            if want_ttft.p50 is not None and p.ttft_s > want_ttft.p50:
                return True
            # The tail thresholds are checked against our p90 (see Percentiles).
            tails = [v for v in (want_ttft.p75, want_ttft.p90, want_ttft.p99) if v is not None]
            if tails and p.ttft_p90_s > min(tails):
                return True
    return False


def _strictest(p: Percentiles, pick: Callable[[list[float]], float]) -> float | None:
    values = [v for v in (p.p50, p.p75, p.p90, p.p99) if v is not None]
    return pick(values) if values else None


def _dedupe(candidates: list[Candidate]) -> list[Candidate]:
    seen: set[str] = set()
    out = []
    for c in candidates:
        if c.deployment.id not in seen:
            seen.add(c.deployment.id)
            out.append(c)
    return out
