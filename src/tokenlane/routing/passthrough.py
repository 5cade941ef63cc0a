"""Embeddings and legacy completions through the engine: planned, measured, failed over.

These endpoints skip translation, not routing. A request is planned by the engine's planner
over the model's deployments that serve the endpoint (`endpoints:` in the config), walked with
the engine's `PlanWalk` and circuits under the same rules as chat (connect errors, timeouts,
408/409/429/5xx and bad answers move on before anything reached the client; other 4xx go back
unchanged), and every attempt is closed by `Engine.finish_attempt`: stats, circuit, metrics
and the spend ledger see it like any chat attempt.

Measurement. An embedding's answer arrives whole, so its time to first token is the time to
the answer: that is what the TTFT estimates of an embeddings deployment hold (and what the
`latency` and `balanced` policies and the learned deadline use); cost is the prompt tokens
the upstream reports at the input price. Legacy completions are always streamed from upstream
(`stream_options.include_usage`) and assembled for a client that did not stream, so their TTFT
and decode speed are measured exactly as chat's.

The engine's own rules are used, not copied: its recheck schedule, its reading of a failed
answer (429 kinds, refusals, headroom) and its all-failed error are called on it directly
(`Engine._rechecks_due`, `_refused`, `_heard`; `outcomes.all_failed`), so every surface fails the same
way.

The active prober speaks chat, so it never re-measures these deployments: as with probes off,
a user's request re-measures one that is due its recheck (`why=recheck`), and stale ones get
the exploration share.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx
import orjson

from ..errors import Attempt, ModelNotFound, UpstreamRejected
from ..providers.base import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamTimeout,
)
from ..providers.sse import SSEDecoder
from ..providers.transport import BODY_ERRORS, body_reader
from ..request import ChatRequest
from ..stats.observation import Observation
from ..surfaces.passthrough import (
    PASSTHROUGH_PATHS,
    TextCompletionAssembler,
    has_text,
    text_chunk_ok,
)
from ..types import Deployment, Failover, ModelRoute
from .attempt_trace import Headers
from .attempts import AttemptFailed, PlanWalk
from .decision import Decision
from .engine import Engine
from .health import ttft_timeout
from .lag import LagTolerantTimeout
from .outcomes import all_failed
from .planner import expected_output_tokens, plan
from .policies import Candidate
from .stream import AttemptMeter, StreamBroken

__all__ = ["JSONPoster", "Passthrough", "PassthroughAnswer", "TextStream"]

log = logging.getLogger("tokenlane.passthrough")

T = TypeVar("T")
_RETRYABLE_4XX = frozenset({408, 409, 429})
_DONE = b"[DONE]"
# An endpoint's GenAI operation name, for its attempts' spans (tokenlane.telemetry).
_OPERATIONS = {"embeddings": "embeddings", "completions": "text_completion"}


class JSONPoster(Protocol):
    """The optional dialect ability these endpoints need (the OpenAI dialect has it)."""

    async def post(self, path: str, body: dict[str, Any], *, stream: bool = False,
                   connect_timeout: float | None = None,
                   headers: Headers | None = None) -> httpx.Response: ...


@dataclass(slots=True)
class PassthroughAnswer:
    """A finished answer: the upstream's body (model renamed), who served it, and why."""

    body: dict[str, Any]
    deployment: Deployment
    decision: Decision
    observation: Observation | None


@dataclass(slots=True, eq=False)
class _Run:
    """One request across its attempts: its route, plan, deadline and failures."""

    endpoint: str
    request: ChatRequest
    route: ModelRoute
    decision: Decision
    failover: Failover
    deadline: float  # event-loop time
    walk: PlanWalk
    tries: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    refused: tuple[str, UpstreamHTTPError] | None = None


class _Meter(AttemptMeter):
    """An attempt's timestamps and tokens for text-completion chunks and whole answers."""

    __slots__ = ()

    def see(self, chunk: dict[str, Any]) -> bool:
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        for choice in chunk["choices"]:
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        if not has_text(chunk):
            return False
        self.stamp_output()
        return True

    def answered(self, usage: Any) -> None:
        """A whole answer arrived (embeddings): its arrival is its first token."""
        self.first_at = self.last_at = self.clock.now()
        if isinstance(usage, dict):
            self.usage = usage


class Passthrough:
    """Embeddings and legacy completions over `engine` (its stats, circuits, planner)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- planning ---------------------------------------------------------------------------

    def route(self, endpoint: str, model: str) -> ModelRoute:
        full = self.engine.catalog.models.get(model)
        if full is None:
            raise ModelNotFound(f"The model `{model}` does not exist.", param="model")
        route = full.serving(endpoint)
        if not route.deployments:
            raise ModelNotFound(
                f"The model `{model}` does not serve /v1/{PASSTHROUGH_PATHS[endpoint]}: none of "
                f"its deployments lists `{endpoint}` in its endpoints.", param="model")
        return route

    def plan(self, endpoint: str, request: ChatRequest) -> tuple[ModelRoute, Decision]:
        """The planner's decision over the deployments serving `endpoint`, as `Engine.plan`
        makes it for chat, except that rechecks are users' (the prober speaks only chat)."""
        engine = self.engine
        route = self.route(endpoint, request.model)
        ids = [d.id for d in route.deployments]
        snapshot = engine.stats.snapshot(ids, circuit=engine.circuits.state)
        due = engine._rechecks_due(snapshot)  # the engine's own recheck rule
        need = request.prompt_tokens + expected_output_tokens(route, request)
        decision = plan(route, request, request.options, snapshot, engine.rng, engine.planner,
                        sort=request.sort, health=engine.health, probing=False,
                        recheck_due=due, no_room=engine.headroom.no_room(ids, need))
        if decision.why == "recheck":
            engine.rechecks.sent(decision.chosen, snapshot.at)
        return route, decision

    def _start(self, endpoint: str, request: ChatRequest) -> _Run:
        route, decision = self.plan(endpoint, request)
        failover = request.options.failover(route.failover)
        deadline = asyncio.get_running_loop().time() + failover.deadline_s
        return _Run(endpoint, request, route, decision, failover, deadline,
                    PlanWalk(decision.plan, failover.retry_same, self.engine.circuits))

    # -- running ----------------------------------------------------------------------------

    async def embed(self, request: ChatRequest) -> PassthroughAnswer:
        """`POST /v1/embeddings` along its plan until one deployment answers."""
        run = self._start("embeddings", request)
        return await self._walk(run, lambda c: self._post(run, c))

    async def open_text(self, request: ChatRequest) -> TextStream:
        """A streamed legacy completion, its first text in hand (nothing sent yet)."""
        run = self._start("completions", request)
        return await self._walk(run, lambda c: self._open_text(run, c))

    async def complete_text(self, request: ChatRequest) -> PassthroughAnswer:
        """A non-streamed legacy completion, assembled from the upstream stream. Nothing has
        reached the client before the end, so a break mid-answer moves on along the plan."""
        run = self._start("completions", request)
        while True:
            stream = await self._walk(run, lambda c: self._open_text(run, c))
            assembler = TextCompletionAssembler()
            try:
                async for chunk in stream:
                    assembler.add(chunk)
            except StreamBroken as exc:
                observed = stream.observation
                run.attempts.append(Attempt(stream.deployment.id,
                                            observed.outcome if observed else "error",
                                            observed.status if observed else None, exc.message))
                run.walk.drop(stream.deployment.id)
                continue
            finally:
                await stream.aclose()
            body = assembler.result()
            body["model"] = request.model
            return PassthroughAnswer(body, stream.deployment, run.decision, stream.observation)

    async def _walk(self, run: _Run, attempt: Callable[[Candidate], Awaitable[T]]) -> T:
        """Attempts along the plan, as the engine's walk: a retry on the same deployment
        waits its Retry-After (or a short backoff) when the deadline allows; a fallback goes
        at once; open circuits are skipped."""
        loop = asyncio.get_running_loop()
        engine, walk = self.engine, run.walk
        while run.tries < run.failover.max_attempts and loop.time() < run.deadline:
            candidate = walk.next()
            if candidate is None:
                break
            run.tries += 1
            try:
                return await attempt(candidate)
            except AttemptFailed as failed:
                if not walk.next_is_same():
                    continue
                deployment = failed.attempt.deployment
                wait = failed.retry_after if failed.retry_after is not None else 0.1 * run.tries
                if engine.circuits.state(deployment) == "open":
                    wait = max(wait, engine.circuits.retry_in(deployment))
                if wait >= run.deadline - loop.time():
                    walk.drop(deployment)
                elif wait > 0:
                    await engine.clock.sleep(wait)
        if run.refused is not None and all(a.outcome == "4xx" for a in run.attempts):
            deployment, exc = run.refused
            raise UpstreamRejected(exc.status or 400, exc.body, deployment,
                                   tuple(run.attempts)) from exc
        raise all_failed(run.request.model, run.attempts, walk, engine.circuits)

    def _meter(self, run: _Run, candidate: Candidate) -> tuple[_Meter, float, Headers | None]:
        """A meter for one attempt, its first-token (embeddings: answer) time budget, and the
        headers its tracing adds (None: tracing off)."""
        engine, request, failover = self.engine, run.request, run.failover
        timeout = failover.ttft_timeout_s
        if timeout is None:
            timeout = ttft_timeout(candidate.estimate, request.prompt_tokens, engine.health,
                                   failover.max_ttft_timeout_s)
        left = run.deadline - asyncio.get_running_loop().time()
        meter = _Meter(candidate.deployment, engine.clock, request.prompt_tokens, request.model)
        trace = None if engine.tracer is None else engine.tracer.started(
            meter, request, run.decision, operation=_OPERATIONS[run.endpoint])
        return meter, min(timeout, left), trace

    async def _post(self, run: _Run, candidate: Candidate) -> PassthroughAnswer:
        deployment = candidate.deployment
        meter, budget, trace = self._meter(run, candidate)
        body = {**run.request.body, "model": deployment.upstream_model}
        try:
            try:
                async with LagTolerantTimeout(budget, run.deadline):
                    response = await self._poster(deployment).post(
                        PASSTHROUGH_PATHS[run.endpoint], body,
                        connect_timeout=run.failover.connect_timeout_s, headers=trace)
                    self.engine._heard(deployment.id, response)  # headroom, as for chat
                    try:
                        raw = await response.aread()
                    finally:
                        await response.aclose()
            except TimeoutError:
                raise UpstreamTimeout(f"no answer within {budget:.2f}s") from None
            except httpx.HTTPError as exc:
                raise UpstreamBadResponse(
                    f"connection lost mid-answer ({type(exc).__name__})") from exc
            answer = _embeddings_body(raw)
        except UpstreamError as exc:
            raise self._failed(run, meter, exc) from exc
        except BaseException:
            self.engine.finish_attempt(meter, "cancelled", None)
            raise
        meter.answered(answer.get("usage"))
        if self.engine.tracer is not None:
            self.engine.tracer.answered(meter, answer)
        observation = self.engine.finish_attempt(meter, "ok", response.status_code)
        answer["model"] = run.request.model
        return PassthroughAnswer(answer, deployment, run.decision, observation)

    async def _open_text(self, run: _Run, candidate: Candidate) -> TextStream:
        deployment = candidate.deployment
        meter, budget, trace = self._meter(run, candidate)
        body = {**run.request.body, "model": deployment.upstream_model, "stream": True}
        options = body.get("stream_options")
        body["stream_options"] = {**(options if isinstance(options, dict) else {}),
                                  "include_usage": True}
        response = None
        try:
            try:
                async with LagTolerantTimeout(budget, run.deadline):
                    response = await self._poster(deployment).post(
                        "completions", body, stream=True,
                        connect_timeout=run.failover.connect_timeout_s, headers=trace)
                    self.engine._heard(deployment.id, response)  # headroom, as for chat
                    chunks = _text_chunks(response, deployment.provider.max_event_bytes)
                    head: list[dict[str, Any]] = []
                    # Held back until the first text: before it, another deployment can serve.
                    async for chunk in chunks:
                        head.append(chunk)
                        if meter.see(chunk) or meter.finish_reason:
                            if self.engine.tracer is not None:
                                self.engine.tracer.answered(meter, chunk)
                            return TextStream(self.engine, run, meter, response, chunks, head)
                    raise UpstreamBadResponse("stream ended before any output")
            except TimeoutError:
                raise UpstreamTimeout(f"no first token within {budget:.2f}s") from None
        except UpstreamError as exc:
            if response is not None:
                await response.aclose()
            raise self._failed(run, meter, exc) from exc
        except BaseException:
            if response is not None:
                await response.aclose()
            self.engine.finish_attempt(meter, "cancelled", None)
            raise

    def _poster(self, deployment: Deployment) -> JSONPoster:
        dialect = self.engine.dialects[deployment.provider.name]
        if not hasattr(dialect, "post"):  # config refuses this; a hand-built catalog may not
            raise UpstreamBadResponse(f"{deployment.provider.name}'s dialect cannot pass through")
        return dialect  # type: ignore[return-value]

    def _failed(self, run: _Run, meter: _Meter, exc: UpstreamError) -> Exception:
        """Record a failed attempt; the exception to raise: the client's fault goes back
        unchanged (UpstreamRejected), anything else is worth another try (AttemptFailed)."""
        deployment = meter.deployment.id
        refused = self.engine._refused(deployment, exc)  # 429 kinds, refusals
        if refused is not None and isinstance(exc, UpstreamHTTPError):
            run.refused = (deployment, exc)
        self.engine.finish_attempt(meter, exc.outcome, exc.status, exc.retry_after)
        attempt = Attempt(deployment, exc.outcome, exc.status, str(exc))
        run.attempts.append(attempt)
        # A 4xx outcome (not 429, not our credentials' 401/403) other than 408/409.
        if (isinstance(exc, UpstreamHTTPError) and refused is None and exc.outcome == "4xx"
                and exc.status not in _RETRYABLE_4XX):
            return UpstreamRejected(exc.status or 400, exc.body, deployment,
                                    tuple(run.attempts))
        log.info("attempt failed: %s", attempt.describe())
        return AttemptFailed(attempt, exc.retry_after)


class TextStream:
    """A committed legacy-completion stream: chunks for the client (model renamed), measured
    as they go. Once its first text is out there is no switching: a failure after it raises
    StreamBroken. Iterate it to the end or `aclose()` it: that records the attempt."""

    def __init__(self, engine: Engine, run: _Run, meter: _Meter, response: httpx.Response,
                 chunks: AsyncIterator[dict[str, Any]], head: list[dict[str, Any]]) -> None:
        self._engine = engine
        self._run = run
        self._meter = meter
        self._response = response
        self._chunks = chunks
        self._head = head
        self.deployment = meter.deployment
        self.decision = run.decision
        self.observation: Observation | None = None
        # What the client was sent, assembled (only when the request log keeps content).
        self.kept = TextCompletionAssembler() if run.request.keep_text else None

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        model = self._run.request.model
        kept = self.kept
        for chunk in self._head:
            if kept is not None:
                kept.add(chunk)
            yield {**chunk, "model": model}
        self._head = []
        loop = asyncio.get_running_loop()
        stall, deadline = self._run.failover.stall_timeout_s, self._run.deadline
        try:
            while True:
                try:
                    async with asyncio.timeout(min(stall, deadline - loop.time())):
                        chunk = await anext(self._chunks)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise UpstreamTimeout("the stream stalled") from None
                self._meter.see(chunk)
                if kept is not None:
                    kept.add(chunk)
                yield {**chunk, "model": model}
        except UpstreamError as exc:
            outcome = "stall" if isinstance(exc, UpstreamTimeout) else exc.outcome
            self._finish(outcome, exc.status)
            raise StreamBroken(f"upstream stream broke: {exc}") from exc
        self._finish("ok", self._response.status_code)

    def _finish(self, outcome: str, status: int | None) -> None:
        if self.observation is None:
            self.observation = self._engine.finish_attempt(self._meter, outcome, status)

    async def aclose(self) -> None:
        """Release the upstream connection; an attempt not finished counts as cancelled."""
        self._finish("cancelled", None)
        await self._response.aclose()


def _embeddings_body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamBadResponse("unparsable JSON answer") from None
    if type(body) is not dict or type(body.get("data")) is not list:
        raise UpstreamBadResponse("the answer is not a list of embeddings")
    usage = body.get("usage")
    if usage is not None and (type(usage) is not dict or any(
            (n := usage.get(k)) is not None and type(n) is not int
            for k in ("prompt_tokens", "total_tokens"))):
        raise UpstreamBadResponse("usage counts are not integers")
    return body


async def _text_chunks(response: httpx.Response, max_event_bytes: int
                       ) -> AsyncIterator[dict[str, Any]]:
    """The checked `text_completion` chunks of an upstream stream, until `[DONE]`; a stream
    that ends without it, or breaks the format, is a bad answer."""
    decoder = SSEDecoder(max_event_bytes)
    read = body_reader(response)
    try:
        while piece := await read():
            for event in decoder.feed(piece):
                if event.data == _DONE:
                    return
                try:
                    chunk = orjson.loads(event.data)
                except orjson.JSONDecodeError:
                    raise UpstreamBadResponse("unparsable SSE data line") from None
                if type(chunk) is dict and (event.event == "error" or "error" in chunk):
                    raise UpstreamBadResponse("error event in stream")
                if not text_chunk_ok(chunk):
                    raise UpstreamBadResponse("SSE chunk is not shaped like a text_completion")
                yield chunk
            if decoder.error is not None:
                raise UpstreamBadResponse(decoder.error)
    except BODY_ERRORS as exc:
        raise UpstreamBadResponse(f"connection lost mid-stream ({type(exc).__name__})") from exc
    raise UpstreamBadResponse("stream ended without [DONE]")
