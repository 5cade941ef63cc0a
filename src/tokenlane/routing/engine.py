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
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from ..assemble import CompletionAssembler
from ..clock import Clock, MonotonicClock
from ..errors import Attempt, ModelNotFound, NoDeploymentAvailable, UpstreamRejected
from ..providers import build_dialect
from ..providers.base import (
    Dialect,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamTimeout,
)
from ..request import ChatRequest
from ..stats.observation import Observation
from ..stats.store import StatsSettings, StatsStore
from ..types import Catalog, Deployment, Failover, ModelRoute
from .attempts import AttemptFailed, PlanWalk
from .circuit import CircuitBoard
from .decision import Decision
from .hedge import HedgeBudget
from .planner import PlannerSettings, plan
from .policies import Candidate
from .stream import AttemptMeter, ChatStream, StreamBroken

__all__ = ["Completion", "Engine"]

log = logging.getLogger("tokenlane.engine")

# Upstream 4xx that are worth another try elsewhere; every other 4xx says the request itself is
# wrong, would fail the same way anywhere, and goes back to the client unchanged.
_RETRYABLE_4XX = frozenset({408, 409, 429})


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
        rng: random.Random | None = None,
        on_observation: Callable[[Observation], None] | None = None,
        on_overhead: Callable[[float], None] | None = None,
        on_hedge: Callable[[str], None] | None = None,
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
        self.rng = rng or random.Random()
        self._on_observation = on_observation
        self._on_overhead = on_overhead
        self._on_hedge = on_hedge or (lambda event: None)

    # -- planning ---------------------------------------------------------------------------

    def route(self, model: str) -> ModelRoute:
        route = self.catalog.models.get(model)
        if route is None:
            raise ModelNotFound(f"The model `{model}` does not exist.", param="model")
        return route

    def plan(self, request: ChatRequest) -> Decision:
        route = self.route(request.model)
        snapshot = self.stats.snapshot(
            (d.id for d in route.deployments), circuit=self.circuits.state)
        decision = plan(route, request, request.options, snapshot, self.rng, self.planner,
                        sort=request.sort)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("route %s: %s", request.model, decision.header())
        return decision

    # -- running ----------------------------------------------------------------------------

    async def open(self, request: ChatRequest) -> ChatStream:
        """Start the request: the returned stream has its first token in hand."""
        decision = self.plan(request)
        if request.received_at is not None and self._on_overhead is not None:
            self._on_overhead(self.clock.now() - request.received_at)
        failover = request.options.failover(self.route(request.model).failover)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + failover.deadline_s
        walk = PlanWalk(decision.plan, failover.retry_same, self.circuits)
        attempts: list[Attempt] = []
        self.hedges.on_request()

        def wait(state: RetryCallState) -> float:
            # Only a retry on the same deployment waits (its Retry-After, or a short backoff);
            # falling back to another deployment goes at once.
            exc = state.outcome.exception() if state.outcome else None
            if not walk.next_is_same() or not isinstance(exc, AttemptFailed):
                return 0.0
            backoff = exc.retry_after if exc.retry_after is not None else 0.1 * state.attempt_number
            return max(0.0, min(backoff, deadline - loop.time()))

        retrying = AsyncRetrying(
            stop=stop_after_attempt(failover.max_attempts),
            retry=retry_if_exception_type(AttemptFailed),
            wait=wait,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(request, decision, walk, failover, deadline,
                                               attempts)
        except (AttemptFailed, _PlanExhausted):
            pass
        raise self._all_failed(request.model, attempts, walk)

    async def complete(self, request: ChatRequest) -> Completion:
        """Run a request to the end and assemble the non-streaming chat.completion.

        Nothing reaches the client before the end, so an upstream that breaks mid-answer is
        not final: the request starts again without that deployment, within max_attempts."""
        failover = request.options.failover(self.route(request.model).failover)
        broken: list[str] = []
        while True:
            stream = await self.open(request)
            assembler = CompletionAssembler()
            try:
                async for batch in stream.batches():
                    for chunk in batch:
                        assembler.add(chunk)
                break
            except StreamBroken:
                broken.append(stream.deployment.id)
                if len(broken) >= failover.max_attempts or not request.options.allow_fallbacks:
                    raise
                ignore = [*(request.options.ignore or ()), stream.deployment.id]
                request = replace(request, options=request.options.model_copy(
                    update={"ignore": ignore}))
            finally:
                await stream.aclose()
        body = assembler.result()
        if body.get("usage") is None:
            meter = stream.meter
            body["usage"] = {"prompt_tokens": meter.prompt_tokens,
                             "completion_tokens": meter.output_tokens,
                             "total_tokens": meter.prompt_tokens + meter.output_tokens}
        return Completion(body, stream)

    async def _attempt(
        self,
        request: ChatRequest,
        decision: Decision,
        walk: PlanWalk,
        failover: Failover,
        deadline: float,
        attempts: list[Attempt],
    ) -> ChatStream:
        if asyncio.get_running_loop().time() >= deadline:
            raise _PlanExhausted("deadline passed")
        primary = walk.next()
        if primary is None:
            raise _PlanExhausted("plan exhausted")
        if not failover.hedge:
            return await self._try(request, primary, decision, failover, deadline, attempts)
        return await self._hedged(request, primary, decision, walk, failover, deadline, attempts)

    async def _hedged(
        self,
        request: ChatRequest,
        primary: Candidate,
        decision: Decision,
        walk: PlanWalk,
        failover: Failover,
        deadline: float,
        attempts: list[Attempt],
    ) -> ChatStream:
        """Race a second deployment if the first is slow to produce its first token."""
        loop = asyncio.get_running_loop()
        p90 = primary.estimate.ttft_p90_s if primary.estimate else None
        delay = max(failover.hedge_delay_s, p90 or 0.0)
        first = asyncio.create_task(
            self._try(request, primary, decision, failover, deadline, attempts))
        tasks = {first}
        try:
            await asyncio.wait(tasks, timeout=max(0.0, min(delay, deadline - loop.time())))
            if first.done() or not self.hedges.try_spend():
                return await first
            backup = walk.next()
            if backup is None:
                return await first
            self._on_hedge("started")
            second = asyncio.create_task(
                self._try(request, backup, decision, failover, deadline, attempts))
            tasks.add(second)
            failure: BaseException | None = None
            while tasks:
                done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task.exception() is None:
                        if task is second:
                            self._on_hedge("won")
                        return task.result()
                    failure = task.exception()
            assert failure is not None
            raise failure
        finally:
            await _cancel_losers(tasks)

    async def _try(
        self,
        request: ChatRequest,
        candidate: Candidate,
        decision: Decision,
        failover: Failover,
        deadline: float,
        attempts: list[Attempt],
    ) -> ChatStream:
        """One attempt up to its first token. Raises AttemptFailed (retryable) or
        UpstreamRejected (the request's own fault)."""
        deployment = candidate.deployment
        dialect = self.dialects[deployment.provider.name]
        meter = AttemptMeter(deployment, self.clock, request.prompt_tokens, request.model)
        self.stats.track(deployment.id, meter)
        loop = asyncio.get_running_loop()
        ttft_budget = min(failover.ttft_timeout_s, deadline - loop.time())
        upstream = None
        try:
            try:
                async with asyncio.timeout(ttft_budget):
                    upstream = await dialect.open_stream(
                        upstream_body(request, deployment), failover.connect_timeout_s)
                    batches = upstream.batches()
                    head: list[dict[str, Any]] = []
                    # Hold back what precedes the first token (role-only chunks): until a
                    # token arrives nothing has reached the client and another deployment can
                    # still serve.
                    async for batch in batches:
                        for i, chunk in enumerate(batch):
                            head.append(chunk)
                            if meter.see(chunk) or meter.finish_reason:
                                return ChatStream(
                                    request, deployment, upstream, batches, head, meter,
                                    self.finish_attempt, decision,
                                    stall_timeout=failover.stall_timeout_s, deadline=deadline,
                                    rest=batch[i + 1:])
                    raise UpstreamBadResponse("stream ended before any output")
            except TimeoutError:
                raise UpstreamTimeout(f"no first token within {ttft_budget:.2f}s") from None
        except UpstreamError as exc:
            if upstream is not None:
                await upstream.aclose()
            self.finish_attempt(meter, exc.outcome, exc.status, exc.retry_after)
            if isinstance(exc, UpstreamHTTPError) and _is_client_fault(exc.status or 0):
                raise UpstreamRejected(exc.status or 400, exc.body, deployment.id) from exc
            attempt = Attempt(deployment.id, exc.outcome, exc.status, str(exc))
            attempts.append(attempt)
            log.info("attempt failed: %s", attempt.describe())
            raise AttemptFailed(attempt, exc.retry_after) from exc
        except BaseException:
            if upstream is not None:
                await upstream.aclose()
            self.finish_attempt(meter, "cancelled", None)
            raise

    def finish_attempt(
        self, meter: AttemptMeter, outcome: str, status: int | None,
        retry_after: float | None = None,
    ) -> Observation:
        """Close the books on one attempt: stats, circuit, then whoever listens (metrics)."""
        deployment = meter.deployment.id
        self.stats.untrack(deployment, meter)
        observation = meter.observe(outcome, status)
        self.stats.observe(observation)
        if self.circuits.record(deployment, outcome, retry_after):
            self.stats.forget_failures(deployment)
        if self._on_observation is not None:
            self._on_observation(observation)
        return observation

    def _all_failed(
        self, model: str, attempts: list[Attempt], walk: PlanWalk
    ) -> NoDeploymentAvailable:
        skipped = [Attempt(d, "circuit_open", None, "skipped: " + (
            "honouring its Retry-After" if self.circuits.rate_limited(d) else "failing"))
            for d in walk.skipped]
        waits = [w for a in attempts + skipped if (w := self.circuits.retry_in(a.deployment)) > 0]
        retry_after = min(waits) if waits else None
        if attempts:
            rate_limited = all(a.outcome == "429" for a in attempts)
        else:
            rate_limited = bool(skipped) and all(
                self.circuits.rate_limited(a.deployment) for a in skipped)
        if rate_limited:
            # Every provider is rate limiting (now, or by a Retry-After we are still honouring):
            # a 429 tells the client to back off.
            return NoDeploymentAvailable(f"All deployments of {model} are rate limited",
                                         tuple(attempts + skipped), retry_after, rate_limited=True)
        if not attempts:
            return NoDeploymentAvailable(
                f"No deployment of {model} is available (circuits open)", tuple(skipped),
                retry_after)
        return NoDeploymentAvailable(f"All deployments of {model} failed",
                                     tuple(attempts + skipped), retry_after)

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
    return 400 <= status < 500 and status not in _RETRYABLE_4XX


class _PlanExhausted(Exception):
    """No deployment left to try (or no time left): stop retrying."""


async def _cancel_losers(tasks: set[asyncio.Task[ChatStream]]) -> None:
    """Cancel attempts still racing; a loser that already got its first token is closed (its
    spend is recorded as a cancelled attempt)."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(BaseException):  # cancelled or failed: already recorded
            await (await task).aclose()


def upstream_body(request: ChatRequest, deployment: Deployment) -> dict[str, Any]:
    """The client's body with the upstream model id, always streamed with usage (to measure)."""
    body = dict(request.body)
    body["model"] = deployment.upstream_model
    body["stream"] = True
    options = body.get("stream_options")
    body["stream_options"] = {**options, "include_usage": True} if isinstance(options, dict) else {
        "include_usage": True}
    return body
