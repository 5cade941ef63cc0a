"""The engine: plan a request, walk the plan until one deployment starts producing, measure.

Both the HTTP server and the in-process library are thin layers over `Engine`: they parse and
present; planning, attempts and measurement live here.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

from ..assemble import CompletionAssembler
from ..clock import Clock, MonotonicClock
from ..errors import Attempt, ModelNotFound, NoDeploymentAvailable, UpstreamRejected
from ..providers import build_dialect
from ..providers.base import Dialect, UpstreamBadResponse, UpstreamError, UpstreamHTTPError
from ..request import ChatRequest
from ..stats.observation import Observation
from ..stats.store import StatsSettings, StatsStore
from ..types import Catalog, Deployment, ModelRoute
from .decision import Decision
from .planner import PlannerSettings, plan
from .stream import AttemptMeter, ChatStream

__all__ = ["Completion", "Engine"]

log = logging.getLogger("tokenlane.engine")

# Upstream statuses that say "this request is wrong", not "this provider is unwell": retrying
# elsewhere would fail the same way, so the client gets them unchanged.
_CLIENT_FAULTS = frozenset({400, 401, 403, 404, 413, 422})


class Completion:
    """A finished non-streaming result: the chat.completion body and how it was obtained."""

    __slots__ = ("body", "deployment", "decision", "observation")

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
        rng: random.Random | None = None,
        on_observation: Callable[[Observation], None] | None = None,
        on_overhead: Callable[[float], None] | None = None,
    ) -> None:
        self.catalog = catalog
        self.clock = clock or MonotonicClock()
        self.dialects = dialects if dialects is not None else {
            name: build_dialect(provider) for name, provider in catalog.providers.items()
        }
        self.stats = stats or StatsStore(self.clock, StatsSettings())
        self.planner = planner or PlannerSettings()
        self.rng = rng or random.Random()
        self._on_observation = on_observation
        self._on_overhead = on_overhead

    def route(self, model: str) -> ModelRoute:
        route = self.catalog.models.get(model)
        if route is None:
            raise ModelNotFound(f"The model `{model}` does not exist.", param="model")
        return route

    def plan(self, request: ChatRequest) -> Decision:
        route = self.route(request.model)
        snapshot = self.stats.snapshot(d.id for d in route.deployments)
        decision = plan(route, request, request.options, snapshot, self.rng, self.planner,
                        sort=request.sort)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("route %s: %s", request.model, decision.header())
        return decision

    async def open(self, request: ChatRequest) -> ChatStream:
        """Start the request on the first deployment in the plan that produces a token."""
        decision = self.plan(request)
        if request.received_at is not None and self._on_overhead is not None:
            self._on_overhead(self.clock.now() - request.received_at)
        attempts: list[Attempt] = []
        for candidate in decision.plan:
            stream = await self._try(request, candidate.deployment, decision, attempts)
            if stream is not None:
                return stream
        raise NoDeploymentAvailable(f"All deployments of {request.model} failed", tuple(attempts))

    async def complete(self, request: ChatRequest) -> Completion:
        """Run a request to the end and assemble the non-streaming chat.completion."""
        stream = await self.open(request)
        assembler = CompletionAssembler()
        try:
            async for chunk in stream:
                assembler.add(chunk)
        finally:
            await stream.aclose()
        body = assembler.result()
        if body.get("usage") is None:
            meter = stream.meter
            body["usage"] = {"prompt_tokens": meter.prompt_tokens,
                             "completion_tokens": meter.output_tokens,
                             "total_tokens": meter.prompt_tokens + meter.output_tokens}
        return Completion(body, stream)

    def finish_attempt(self, meter: AttemptMeter, outcome: str, status: int | None) -> Observation:
        """Close the books on one attempt: stats, then whoever listens (metrics)."""
        self.stats.untrack(meter.deployment.id, meter)
        observation = meter.observe(outcome, status)
        self.stats.observe(observation)
        if self._on_observation is not None:
            self._on_observation(observation)
        return observation

    async def _try(
        self,
        request: ChatRequest,
        deployment: Deployment,
        decision: Decision,
        attempts: list[Attempt],
    ) -> ChatStream | None:
        dialect = self.dialects[deployment.provider.name]
        meter = AttemptMeter(deployment, self.clock, request.prompt_tokens, request.model)
        self.stats.track(deployment.id, meter)
        upstream = None
        try:
            upstream = await dialect.open_stream(upstream_body(request, deployment))
            chunks = aiter(upstream)
            head: list[dict[str, Any]] = []
            # Hold back what precedes the first token (role-only chunks): until a token
            # arrives nothing has reached the client and another deployment can still serve.
            async for chunk in chunks:
                head.append(chunk)
                if meter.see(chunk) or meter.finish_reason:
                    return ChatStream(request, deployment, upstream, chunks, head, meter,
                                      self.finish_attempt, decision)
            raise UpstreamBadResponse("stream ended before any output")
        except UpstreamError as exc:
            if upstream is not None:
                await upstream.aclose()
            self.finish_attempt(meter, exc.outcome, exc.status)
            if isinstance(exc, UpstreamHTTPError) and exc.status in _CLIENT_FAULTS:
                raise UpstreamRejected(exc.status, exc.body, deployment.id) from exc
            attempts.append(Attempt(deployment.id, exc.outcome, exc.status, str(exc)))
            log.info("attempt on %s failed: %s", deployment.id, exc)
            return None
        except BaseException:
            if upstream is not None:
                await upstream.aclose()
            self.finish_attempt(meter, "cancelled", None)
            raise

    def stats_report(self) -> dict[str, Any]:
        """Live estimates per model and deployment (what `/v1/router/stats` serves)."""
        snapshot = self.stats.snapshot(
            {d.id for m in self.catalog.models.values() for d in m.deployments})
        models = {}
        for name, route in self.catalog.models.items():
            deployments = []
            for d in route.deployments:
                estimate = snapshot.estimates[d.id].to_dict()
                estimate.update(provider=d.provider.name, upstream_model=d.upstream_model,
                                price_input=d.price.input, price_output=d.price.output)
                deployments.append(estimate)
            models[name] = {"policy": route.policy, "deployments": deployments}
        return {"object": "router.stats", "at": snapshot.at, "models": models}

    async def aclose(self) -> None:
        for dialect in self.dialects.values():
            await dialect.aclose()


def upstream_body(request: ChatRequest, deployment: Deployment) -> dict[str, Any]:
    """The client's body with the upstream model id, always streamed with usage (to measure)."""
    body = dict(request.body)
    body["model"] = deployment.upstream_model
    body["stream"] = True
    options = body.get("stream_options")
    body["stream_options"] = {**options, "include_usage": True} if isinstance(options, dict) else {
        "include_usage": True}
    return body
