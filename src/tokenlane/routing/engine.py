"""The engine: plan a request, walk the plan until one deployment starts producing, measure.

Both the HTTP server and the in-process library are thin layers over `Engine`: they parse and
present; planning, attempts, failure handling and measurement live here.

Before the first token reaches the client a failure is only a reason to try again: the next
deployment in the plan (or the same one, `retry_same`), within `max_attempts` and the overall
deadline, skipping open circuits, optionally hedged. After the first token there is no
switching: see `ChatStream`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ..assemble import CompletionAssembler
from ..capabilities import prepare
from ..capacity import HeadroomBoard
from ..clock import Clock, MonotonicClock
from ..errors import (
    Attempt,
    InvalidRequest,
    ModelNotFound,
    NoDeploymentAvailable,
    UpstreamRejected,
)
from ..providers import build_dialect
from ..providers.base import (
    AUTH_STATUSES,
    Dialect,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamTimeout,
)
from ..providers.headroom import classify_429, parse_rate_limits, retry_after_429
from ..providers.refusals import classify_refusal
from ..request import ChatRequest, chat_request_from_body
from ..stats.observation import Observation
from ..stats.store import StatsSettings, StatsStore
from ..types import Catalog, Deployment, Failover, ModelRoute
from .attempt_trace import AttemptTracer
from .attempts import AttemptFailed, PlanWalk
from .circuit import CircuitBoard
from .decision import Decision
from .health import HealthSettings, degraded, overdue_after, probe_deadline, ttft_timeout
from .hedge import HedgeBudget, race
from .lag import LagTolerantTimeout
from .outcomes import all_failed, retry_wait
from .planner import PlannerSettings, expected_output_tokens, plan
from .policies import Candidate
from .rechecks import RecheckSchedule
from .stream import AttemptMeter, ChatStream, StreamBroken

__all__ = ["Completion", "Engine"]

log = logging.getLogger("tokenlane.engine")

# Upstream 4xx that are worth another try elsewhere; every other 4xx says the request itself is
# wrong, would fail the same way anywhere, and goes back to the client unchanged.
_RETRYABLE_4XX = frozenset({408, 409, 429})
# A deployment whose model the provider says is gone is kept last this long, then re-checked.
_UNAVAILABLE_RECHECK_S = 300.0


class Completion:
    """A finished non-streaming result: the chat.completion body and how it was obtained."""

    __slots__ = ("body", "decision", "deployment", "observation")

    def __init__(self, body: dict[str, Any], stream: ChatStream) -> None:
        self.body = body
        self.deployment = stream.deployment
        self.decision = stream.decision
        self.observation = stream.observation


class Engine:
    def __init__(
        self,
        catalog: Catalog,
        *,
        clock: Clock | None = None,
        dialects: dict[str, Dialect] | None = None,
        stats: StatsStore | None = None,
        planner: PlannerSettings | None = None,
        circuits: CircuitBoard | None = None,
        hedge_budget: HedgeBudget | None = None,
        health: HealthSettings | None = None,
        rechecks: RecheckSchedule | None = None,
        rng: random.Random | None = None,
        on_observation: Callable[[Observation], None] | None = None,
        on_overhead: Callable[[float], None] | None = None,
        on_hedge: Callable[[str], None] | None = None,
        on_refusal: Callable[[str, str], None] | None = None,
        tracer: AttemptTracer | None = None,
    ) -> None:
        self.catalog = catalog
        self.clock = clock or MonotonicClock()
        self.dialects = dialects if dialects is not None else {
            name: build_dialect(provider) for name, provider in catalog.providers.items()
        }
        self.stats = stats or StatsStore(self.clock, StatsSettings())
        self.planner = planner or PlannerSettings()
        self.circuits = circuits or CircuitBoard(self.clock)
        self.hedges = hedge_budget or HedgeBudget(0.1)
        self.health = health or HealthSettings()
        self.rechecks = rechecks or RecheckSchedule()
        # What providers said is left of their limits; retired models (capacity.py).
        self.headroom = HeadroomBoard(self.clock)
        # Set while the active prober runs: rechecks are its job then, not users'.
        self.probing = False
        self.rng = rng or random.Random()
        self._on_observation = on_observation
        self._on_overhead = on_overhead
        self._on_hedge = on_hedge or (lambda event: None)
        self._on_refusal = on_refusal or (lambda deployment, kind: None)
        self.tracer = tracer  # None: tracing off (routing/attempt_trace.py)

    # -- planning ---------------------------------------------------------------------------

    def route(self, model: str) -> ModelRoute:
        """The model's deployments that serve chat (embedding-only ones: routing/passthrough)."""
        route = self.catalog.models.get(model)
        if route is None:
            raise ModelNotFound(f"The model `{model}` does not exist.", param="model")
        chat = route.serving("chat")
        if not chat.deployments:
            raise ModelNotFound(f"The model `{model}` is not a chat model: no deployment of it "
                                "serves chat completions.", param="model")
        return chat

    def plan(self, request: ChatRequest) -> Decision:
        route = self.route(request.model)
        snapshot = self.stats.snapshot(
            (d.id for d in route.deployments), circuit=self.circuits.state)
        due = None if self.probing or request.probe else self._rechecks_due(snapshot)
        # Admission counts input plus the output limit (Cerebras): that is what must fit.
        need = request.prompt_tokens + expected_output_tokens(route, request)
        no_room = self.headroom.no_room((d.id for d in route.deployments), need)
        decision = plan(route, request, request.options, snapshot, self.rng, self.planner,
                        sort=request.sort, health=self.health, probing=self.probing,
                        recheck_due=due, no_room=no_room)
        decision = self._with_fallbacks(route, request, decision)
        if decision.why == "recheck":
            self.rechecks.sent(decision.chosen, snapshot.at)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("route %s: %s", request.model, decision.header())
        return decision

    def _with_fallbacks(self, route: ModelRoute, request: ChatRequest, decision: Decision
                        ) -> Decision:
        """OpenRouter's `models` and the model's `fallback_models`: each one's plan follows
        this one's (its deployments get its own upstream ids), before the first token."""
        names = [m for m in (*request.fallback_models, *route.fallback_models)
                 if m != route.name]
        if not names or not request.options.allow_fallbacks:
            return decision
        seen = {c.deployment.id for c in decision.plan}
        extra: list[Candidate] = []
        for name in dict.fromkeys(names):
            other = self.catalog.models.get(name)
            if other is None or not (other := other.serving("chat")).deployments:
                continue  # OpenRouter skips a fallback it cannot serve, and so do we
            snapshot = self.stats.snapshot(
                (d.id for d in other.deployments), circuit=self.circuits.state)
            try:
                fallback = plan(other, request, request.options, snapshot, self.rng,
                                self.planner, sort=request.sort, health=self.health,
                                probing=self.probing)
            except (NoDeploymentAvailable, InvalidRequest):
                continue
            for c in fallback.plan:
                if c.deployment.id not in seen:
                    seen.add(c.deployment.id)
                    extra.append(c)
        return replace(decision, plan=decision.plan + tuple(extra)) if extra else decision

    def _rechecks_due(self, snapshot: Any) -> frozenset[str]:
        """With no prober running, the deployments a user's request should re-measure."""
        now = snapshot.at
        return frozenset(
            d for d, e in snapshot.estimates.items()
            if not e.in_flight and e.age_s is not None and not self.circuits.rate_limited(d)
            and self.rechecks.due(d, degraded(e, self.health), now - e.age_s, now,
                                  hopeful=e.getting_better))

    # -- running ----------------------------------------------------------------------------

    async def open(self, request: ChatRequest) -> ChatStream:
        """Start the request: the returned stream has its first token in hand."""
        return await self._walk(self._start(request))

    async def complete(self, request: ChatRequest) -> Completion:
        """Run a request to the end and assemble the non-streaming chat.completion.

        Nothing reaches the client before the end, so an upstream that breaks mid-answer is
        not final: the request goes on along its plan without that deployment, within the same
        overall deadline and `max_attempts`. When everything failed, the error lists every
        attempt, mid-answer breaks included."""
        run = self._start(request)
        while True:
            stream = await self._walk(run)
            assembler = CompletionAssembler()
            batches = stream.batches(present=False)  # the answer is assembled, named below
            try:
                escaped = None
                async for batch in batches:
                    assembler.add_all(batch)
                    if (escaped := self._escape(run, stream)) is not None:
                        break
                if escaped is None:
                    break
                await batches.aclose()
                await stream.abandon("stall")
                attempt = Attempt(stream.deployment.id, "stall", None, escaped)
                run.attempts.append(attempt)
                run.notes.append(f"restarted: {escaped}")
                log.info("attempt abandoned: %s", attempt.describe())
                run.walk.drop(stream.deployment.id)
            except StreamBroken as exc:
                observed = stream.observation
                attempt = Attempt(stream.deployment.id,
                                  observed.outcome if observed else "error",
                                  observed.status if observed else None, exc.message)
                run.attempts.append(attempt)
                log.info("attempt failed: %s", attempt.describe())
                run.walk.drop(stream.deployment.id)
            finally:
                await stream.aclose()
        body = assembler.result()
        body["model"] = request.model  # the public name, not the deployment's upstream id
        # Usage exactly as the upstream reported it, detail fields included. The stream does
        # not present the usage chunk (a non-streaming client asked for none): the meter kept it.
        meter = stream.meter
        body["usage"] = meter.usage if meter.usage is not None else {
            "prompt_tokens": meter.prompt_tokens, "completion_tokens": meter.output_tokens,
            "total_tokens": meter.prompt_tokens + meter.output_tokens}
        completion = Completion(body, stream)
        if run.notes:
            completion.decision = replace(run.decision, notes=tuple(run.notes))
        return completion

    def _escape(self, run: _Run, stream: ChatStream) -> str | None:
        """Why a non-streaming request should start over elsewhere now (None: carry on).

        Its client has seen nothing yet, so when the attempt's live decode speed says it will
        finish `escape_slow_factor` times later than the next deployment in the plan would
        from scratch (and at least a second later), abandoning it wins time. Budgeted like a
        hedge: every escape spends one from the hedge budget."""
        factor = run.failover.escape_slow_factor
        if factor is None:
            return None
        meter = stream.meter
        live = self.stats.settings
        tps = meter.decode_tps_so_far(self.stats.tokens_per_chunk(meter.deployment.id),
                                      live.live_min_seconds)
        if tps is None:
            return None
        backup = run.walk.peek()
        if backup is None:
            return None
        expected = run.decision_output_tokens
        left = max(0, expected - meter.chunks)
        finish_in = left / max(tps, 0.01)
        elsewhere = backup.prediction.duration_s
        if finish_in < factor * elsewhere or finish_in - elsewhere < 1.0:
            return None
        if not self.hedges.try_spend():
            return None
        return (f"{meter.deployment.id} decoding at {tps:.1f} tok/s would finish in "
                f"{finish_in:.1f}s; {backup.deployment.id} predicted {elsewhere:.1f}s")

    async def probe(self, model: str, deployment: str, max_tokens: int) -> Completion:
        """Measure one deployment with a tiny request of the gateway's own (the active
        prober's): planned and measured like any request, no fallback, no hedge, and allowed
        through an open circuit (it is the circuit's trial)."""
        options: dict[str, Any] = {"only": [deployment], "allow_fallbacks": False,
                                   "max_attempts": 1, "hedge": False}
        estimate = self.stats.snapshot([deployment]).estimates[deployment]
        if (limit := probe_deadline(estimate, max_tokens, self.health)) is not None:
            options["deadline_s"] = limit  # a trickle answers "still slow" by then
        request = chat_request_from_body({
            "model": model,
            "messages": [{"role": "user", "content": "Count from one to twenty."}],
            "max_tokens": max_tokens,
            "provider": options,
        })
        request.probe = True
        return await self.complete(request)

    def _start(self, request: ChatRequest) -> _Run:
        """Plan the request and fix its deadline and attempt budget, once per request."""
        decision = self.plan(request)
        if request.probe:
            decision = replace(decision, why="probe")
        if request.received_at is not None and self._on_overhead is not None:
            self._on_overhead(self.clock.now() - request.received_at)
        route = self.route(request.model)
        failover = request.options.failover(route.failover)
        if request.probe:
            failover = replace(failover, hedge_overdue=False, escape_slow_factor=None)
        else:
            self.hedges.on_request()
        deadline = asyncio.get_running_loop().time() + failover.deadline_s
        return _Run(request, decision, failover, deadline,
                    PlanWalk(decision.plan, failover.retry_same, self.circuits,
                             probe=request.probe),
                    decision_output_tokens=expected_output_tokens(route, request))

    async def _walk(self, run: _Run) -> ChatStream:
        """Attempts along the plan until one has its first token, within what is left of the
        request's deadline and attempt budget.

        A plain loop, not tenacity's AsyncRetrying: each AsyncRetrying is a reference cycle
        (its call state and its pending actions point back at it, ~30 objects), and one per
        request left the cyclic garbage collector ~20% of the gateway's CPU at 16 requests in
        flight and ~38% at 256 (issue 17; `benchmarks/overhead.py`). What we used of it is
        this loop: retry on AttemptFailed while the attempt budget lasts, waiting only as
        `retry_wait` says."""
        loop = asyncio.get_running_loop()
        number = 0  # of the attempt being made in this walk
        try:
            while run.tries < run.failover.max_attempts:
                number += 1
                try:
                    return await self._attempt(run)
                except AttemptFailed as exc:
                    if run.tries >= run.failover.max_attempts:
                        break
                    delay = retry_wait(run.walk, self.circuits, exc, number,
                                       run.deadline - loop.time())
                    if delay > 0:
                        await asyncio.sleep(delay)
        except _PlanExhausted:
            pass
        if run.refused is not None and run.attempts and run.attempts[-1].outcome == "4xx":
            # The plan ended on a provider's "not here" refusal: the client gets that
            # provider's own answer (with every attempt), as for any upstream 4xx.
            deployment, exc = run.refused
            raise UpstreamRejected(exc.status or 400, exc.body, deployment,
                                   tuple(run.attempts)) from exc
        raise all_failed(run.request.model, run.attempts, run.walk, self.circuits)

    async def _attempt(self, run: _Run) -> ChatStream:
        if asyncio.get_running_loop().time() >= run.deadline:
            raise _PlanExhausted("deadline passed")
        primary = run.walk.next()
        if primary is None:
            raise _PlanExhausted("plan exhausted")
        run.tries += 1
        delay = self._hedge_delay(run, primary)
        if delay is None:
            return await self._try(run, primary)
        return await self._hedged(run, primary, delay)

    def _hedge_delay(self, run: _Run, primary: Candidate) -> float | None:
        """When to start a backup beside `primary` if it has no first token yet (None: no
        hedge). Opt-in hedging waits max(hedge_delay_s, its p90); otherwise a backup starts
        only once the first token is overdue, and only while the budget could pay for it."""
        failover = run.failover
        if failover.hedge:
            return max(failover.hedge_delay_s, primary.prediction.ttft_p90_s
                       if primary.prediction.measured else 0.0)
        if not failover.hedge_overdue or not self.hedges.can_spend() or len(run.walk) == 0:
            return None
        return overdue_after(primary.estimate, self.health, primary.prediction.ttft_p90_s)

    async def _hedged(self, run: _Run, primary: Candidate, delay: float) -> ChatStream:
        """`primary`, raced by a backup from the plan if it has no first token within
        `delay` (hedge.race). A backup is taken from the plan only when the budget allows a
        hedge, and the budget is spent only when there is a backup to start."""
        overdue = overdue_after(primary.estimate, self.health, primary.prediction.ttft_p90_s)

        def backup() -> Callable[[], Awaitable[ChatStream]] | None:
            candidate = run.walk.next() if self.hedges.can_spend() else None
            if candidate is None:
                return None
            self.hedges.try_spend()
            return lambda: self._try(run, candidate, hedge=True)

        left = run.deadline - asyncio.get_running_loop().time()
        return await race(lambda: self._try(run, primary, overdue_in=overdue),
                          min(delay, left), backup, self._on_hedge)

    async def _try(self, run: _Run, candidate: Candidate, overdue_in: float | None = None,
                   *, hedge: bool = False) -> ChatStream:
        """One attempt up to its first token. Raises AttemptFailed (retryable) or
        UpstreamRejected (the request's own fault). `overdue_in`: seconds after which, if
        cancelled without a first token, the attempt counts as timed out."""
        request, failover, deadline = run.request, run.failover, run.deadline
        deployment = candidate.deployment
        dialect = self.dialects[deployment.provider.name]
        meter = AttemptMeter(deployment, self.clock, request.prompt_tokens, request.model,
                             probe=request.probe)
        if overdue_in is not None:
            meter.overdue_at = meter.sent_at + overdue_in
        self.stats.track(deployment.id, meter)
        trace = None if self.tracer is None else self.tracer.started(
            meter, request, run.decision, hedge=hedge)
        loop = asyncio.get_running_loop()
        timeout = failover.ttft_timeout_s
        if timeout is None:
            timeout = ttft_timeout(candidate.estimate, request.prompt_tokens, self.health,
                                   failover.max_ttft_timeout_s)
            if request.probe:
                # A probe serves nobody: once its first token is overdue the answer (still
                # unwell) is known, and the next recheck is what matters.
                timeout = min(timeout, overdue_after(candidate.estimate, self.health)
                              or timeout)
        ttft_budget = min(timeout, deadline - loop.time())
        upstream = None
        try:
            try:
                async with LagTolerantTimeout(ttft_budget, deadline):
                    upstream = await dialect.open_stream(
                        upstream_body(request, deployment), failover.connect_timeout_s, trace,
                        request.upstream_headers)
                    self._heard(deployment.id, upstream)
                    batches = upstream.batches()
                    head: list[dict[str, Any]] = []
                    # Hold back what precedes the first token (role-only chunks): until a
                    # token arrives nothing has reached the client and another deployment can
                    # still serve.
                    async for batch in batches:
                        for i, chunk in enumerate(batch):
                            head.append(chunk)
                            if meter.see(chunk) or meter.finish_reason:
                                if self.tracer is not None:
                                    self.tracer.answered(meter, chunk)
                                return ChatStream(
                                    request, deployment, upstream, batches, head, meter,
                                    self.finish_attempt, run.decision,
                                    stall_timeout=failover.stall_timeout_s, deadline=deadline,
                                    rest=batch[i + 1:])
                    raise UpstreamBadResponse("stream ended before any output")
            except TimeoutError:
                raise UpstreamTimeout(f"no first token within {ttft_budget:.2f}s") from None
        except UpstreamError as exc:
            if upstream is not None:
                await upstream.aclose()
            refused = self._refused(deployment.id, exc)
            if refused is not None and isinstance(exc, UpstreamHTTPError):
                run.refused = (deployment.id, exc)
            self.finish_attempt(meter, exc.outcome, exc.status, exc.retry_after)
            attempt = Attempt(deployment.id, exc.outcome, exc.status, str(exc))
            run.attempts.append(attempt)
            if (isinstance(exc, UpstreamHTTPError) and _is_client_fault(exc.status or 0)
                    and refused is None):
                raise UpstreamRejected(exc.status or 400, exc.body, deployment.id,
                                       tuple(run.attempts)) from exc
            if exc.outcome == "auth":
                provider = deployment.provider
                log.warning("provider %s refused the gateway's credentials (HTTP %s; key from "
                            "$%s): %s kept out of routing for %.0fs", provider.name, exc.status,
                            provider.api_key_env or "-", deployment.id,
                            self.circuits.settings.auth_open_s)
            else:
                log.info("attempt failed: %s", attempt.describe())
            raise AttemptFailed(attempt, exc.retry_after) from exc
        except BaseException:
            if upstream is not None:
                await upstream.aclose()
            self.finish_attempt(meter, "timeout" if meter.overdue() else "cancelled", None)
            raise

    def _heard(self, deployment: str, upstream: Any) -> None:
        """A 2xx answer: its rate-limit headers update the deployment's headroom."""
        headers = getattr(upstream, "headers", None)
        if headers:
            self.headroom.observe(deployment, parse_rate_limits(headers))
        self.headroom.available(deployment)

    def _refused(self, deployment: str, exc: UpstreamError) -> str | None:
        """Read what a failed answer says about the deployment (headroom, 429 kind, a
        provider's refusal); the refusal kind when it is one (then the request moves on)."""
        if not isinstance(exc, UpstreamHTTPError):
            return None
        limits = parse_rate_limits(exc.headers) if exc.headers else ()
        self.headroom.observe(deployment, limits)
        if exc.status == 429:
            kind = classify_429(exc.body)
            exc.retry_after = retry_after_429(kind, exc.retry_after, limits)
            if kind == "quota" and exc.retry_after:
                self.headroom.exhausted(deployment, exc.retry_after)
            return None
        refusal = classify_refusal(exc.status or 0, exc.body)
        if refusal is not None:
            self._on_refusal(deployment, refusal)
        if refusal == "model_unavailable":
            self.headroom.unavailable(deployment, f"model unavailable upstream ({exc.status})",
                                      _UNAVAILABLE_RECHECK_S)
            log.warning("deployment %s: model unavailable upstream (HTTP %s); kept last for "
                        "%.0fs", deployment, exc.status, _UNAVAILABLE_RECHECK_S)
        elif refusal is not None:
            log.info("deployment %s refused a parameter (HTTP %s): trying the next one",
                     deployment, exc.status)
        return refusal

    def finish_attempt(
        self, meter: AttemptMeter, outcome: str, status: int | None,
        retry_after: float | None = None,
    ) -> Observation:
        """Close the books on one attempt: stats, circuit, then whoever listens (metrics)."""
        deployment = meter.deployment.id
        self.stats.untrack(deployment, meter)
        observation = meter.observe(outcome, status)
        self.stats.observe(observation)
        if self.circuits.record(deployment, outcome, retry_after, started_at=meter.sent_at,
                                probe=meter.probe):
            self.stats.forget_failures(deployment)
        if self._on_observation is not None:
            self._on_observation(observation)
        if self.tracer is not None:
            self.tracer.ended(meter, observation)
        return observation

    # -- reporting --------------------------------------------------------------------------

    def stats_report(self) -> dict[str, Any]:
        """Live estimates per model and deployment (what `/v1/router/stats` serves)."""
        snapshot = self.stats.snapshot(
            {d.id for m in self.catalog.models.values() for d in m.deployments},
            circuit=self.circuits.state)
        models = {}
        for name, route in self.catalog.models.items():
            deployments = []
            for d in route.deployments:
                row = snapshot.estimates[d.id].to_dict()
                row.update(provider=d.provider.name, upstream_model=d.upstream_model,
                           price_input=d.price.input, price_output=d.price.output)
                deployments.append(row)
            models[name] = {"policy": route.policy, "deployments": deployments}
        return {"object": "router.stats", "at": snapshot.at, "models": models}

    async def aclose(self) -> None:
        for dialect in self.dialects.values():
            await dialect.aclose()


def _is_client_fault(status: int) -> bool:
    return 400 <= status < 500 and status not in _RETRYABLE_4XX and status not in AUTH_STATUSES


class _PlanExhausted(Exception):
    """No deployment left to try (or no time left): stop retrying."""


@dataclass(slots=True, eq=False)
class _Run:
    """One client request's state across all its attempts: one plan, one deadline (event-loop
    time), one attempt budget, every attempt that failed."""

    request: ChatRequest
    decision: Decision
    failover: Failover
    deadline: float
    walk: PlanWalk
    tries: int = 0  # attempts started (a hedged pair counts once)
    attempts: list[Attempt] = field(default_factory=list)
    decision_output_tokens: int = 256  # what the plan's predictions assumed
    notes: list[str] = field(default_factory=list)  # for the decision record
    # The latest "not here" refusal (providers/refusals.py), answered if nothing else works.
    refused: tuple[str, UpstreamHTTPError] | None = None


def upstream_body(request: ChatRequest, deployment: Deployment) -> dict[str, Any]:
    """The client's body with the upstream model id, always streamed with usage (to measure)."""
    body = dict(request.body)
    body["model"] = deployment.upstream_model
    prepare(body, deployment, request.options)  # limit parameter, cap, drops, forwarding
    body["stream"] = True
    options = body.get("stream_options")
    body["stream_options"] = {**options, "include_usage": True} if isinstance(options, dict) else {
        "include_usage": True}
    return body
