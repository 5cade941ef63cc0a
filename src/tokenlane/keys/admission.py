"""Admission before anything goes upstream, settlement after: one `Gate` for every surface.

    ticket = await gate.admit(key, chat, request_id, "chat.completions")  # 404 / 429, or in
    try: ... engine.open(chat) / engine.complete(chat) ...
    finally: ticket.settle(served, error)

Admission checks the key's models and deployments, applies its default routing options and
caps (`max_attempts`, `deadline_s`, `hedge`: a request cannot raise them), and takes a
reservation from its budgets and rate limits: the most the request can cost, from an upper
bound of its prompt and its output limit at the dearest deployment it may use
(`reservation.py`). Settlement prices every billed attempt from the provider's usage
(`pricing.py`), gives the limits the real numbers, queues one ledger row and writes the request
log's line (`request_log.py`). With keys off the gate has no limits and no ledger and is built
only for the request log (else the app uses `OPEN_GATE`: no work per request). The attempts of a request (fallbacks, hedges, restarts) reach the
ticket through the engine's `on_observation` callback; a context variable says which request
an attempt belongs to (tasks a request starts, such as a hedge, inherit it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from ..errors import ModelNotFound, TokenlaneError
from ..pricing import Tokens, cost_of, tokens_of
from ..request import ChatRequest
from ..routing.engine import Completion
from ..routing.options import RoutingOptions, parse_options
from ..routing.stream import ChatStream
from ..stats.observation import Observation
from ..types import Catalog, Deployment, ModelRoute
from .records import VirtualKey
from .reservation import hold_to, output_bound, prompt_bound
from .store import Admission, LedgerRow, Limiter

if TYPE_CHECKING:  # request_log imports this room's records
    from ..request_log import RequestLog

__all__ = ["NO_TICKET", "OPEN_GATE", "Gate", "OpenGate", "Ticket", "request_id_of"]

Served = ChatStream | Completion | None

# The request an attempt belongs to, for the engine's observation callback (which knows only
# the attempt). Set by `admit` in the handler's task, reset by `settle`.
_CURRENT: ContextVar[Ticket | None] = ContextVar("tokenlane_ticket", default=None)


class Ticket:
    """One admitted request: its reservation, its attempts so far, its response headers."""

    __slots__ = ("_gate", "_token", "admission", "chat", "key", "observations", "request_id",
                 "surface")

    def __init__(self, gate: Gate, key: VirtualKey | None, chat: ChatRequest, request_id: str,
                 surface: str, admission: Admission | None) -> None:
        self._gate = gate
        self.key = key
        self.chat = chat
        self.request_id = request_id
        self.surface = surface
        self.admission = admission
        self.observations: list[Observation] = []
        self._token: Token[Ticket | None] | None = _CURRENT.set(self)

    @property
    def headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """`x-ratelimit-*` for the response, as OpenAI sends them."""
        return self.admission.headers if self.admission is not None else ()

    def settle(self, served: Served, error: BaseException | None = None) -> None:
        """Close the books: once, however the request ended (`served` is what answered it,
        None when nothing did)."""
        if self._token is None:
            return
        _CURRENT.reset(self._token)
        self._token = None
        self._gate.settle(self, served, error)


class _NoTicket:
    """Keys off: nothing to admit or settle."""

    headers: tuple[tuple[bytes, bytes], ...] = ()

    def settle(self, served: Served, error: BaseException | None = None) -> None:
        pass


NO_TICKET = _NoTicket()


class OpenGate:
    """The gate when keys are off: every request admitted as it is, nothing recorded."""

    async def admit(self, key: VirtualKey | None, chat: ChatRequest, request_id: str,
                    surface: str) -> Ticket | _NoTicket:
        return NO_TICKET


OPEN_GATE = OpenGate()


class Gate:
    """Admission and settlement. With keys on it has a `limiter` and a ledger (`record`);
    without, it only accounts each request for the request log."""

    def __init__(self, catalog: Catalog, limiter: Limiter | None = None,
                 record: Callable[[LedgerRow], None] | None = None, *,
                 reserve_output_tokens: int = 4096, wall: Callable[[], float] = time.time,
                 request_log: RequestLog | None = None) -> None:
        self._catalog = catalog
        self._limiter = limiter
        self._record = record  # queues a ledger row (LedgerWriter.add)
        self._request_log = request_log
        # logging.content: streams keep their text for the log line
        self._keep_text = request_log is not None and request_log.content
        self._reserve_output = reserve_output_tokens
        self._wall = wall
        self._deployments: dict[str, Deployment] = {
            d.id: d for m in catalog.models.values() for d in m.deployments}

    def observe(self, observation: Observation) -> None:
        """The engine's `on_observation`: file the attempt under its request."""
        ticket = _CURRENT.get()
        if ticket is not None:
            ticket.observations.append(observation)

    async def admit(self, key: VirtualKey | None, chat: ChatRequest, request_id: str,
                    surface: str) -> Ticket:
        """Raise ModelNotFound (a model or deployment the key may not use), BudgetExceeded or
        RateLimitExceeded; otherwise the request's options are the key's and it is admitted.
        Master-key requests (`key` None) are admitted as they are, and ledgered."""
        if self._keep_text:
            chat.keep_text = True
        if key is None or self._limiter is None:
            return Ticket(self, None, chat, request_id, surface, None)
        try:
            admission = await self._admit(key, self._limiter, chat)
        except TokenlaneError as exc:
            if self._request_log is not None:  # refused: nothing spent, still one line
                row = LedgerRow(
                    request_id=request_id, key_id=key.id, model=chat.model, deployment=None,
                    prompt_tokens=0, completion_tokens=0, cached_tokens=0, cache_write_tokens=0,
                    reasoning_tokens=0, cost=0.0, ttft_s=None, decode_tps=None, outcome=exc.code or exc.type,
                    attempts=0, at=self._wall(), surface=surface, stream=chat.stream)
                self._request_log.write(row, key, None, chat)
            raise
        return Ticket(self, key, chat, request_id, surface, admission)

    async def _admit(self, key: VirtualKey, limiter: Limiter, chat: ChatRequest) -> Admission:
        route = self._route_for(key, chat.model)
        allowed = _allowed(key, route, chat.options)
        if not allowed:
            raise _no_access(chat.model)
        chat.options = _key_options(key, chat.options, route, allowed)
        budgeted = bool(key.spec.budget_usd.limits())
        limit = chat.max_output_tokens
        if limit is None:
            limit = self._reserve_output
            if budgeted:  # the reservation bounds the cost only if it bounds the answer
                hold_to(chat, limit)
        n = _choices(chat)
        cost = 0.0
        if budgeted:
            prompt = prompt_bound(chat.body)
            cost = max(d.price.cost(prompt, output_bound(limit, d) * n) for d in allowed)
        # Token buckets meter the typical count, as OpenAI's do; usage settles them.
        return await limiter.admit(key, cost, chat.prompt_tokens + limit * n)

    def settle(self, ticket: Ticket, served: Served, error: BaseException | None) -> None:
        winner = served.observation if served is not None else None
        billed = Tokens()
        cost = 0.0
        for observation in ticket.observations:
            if observation is winner or observation.ttft_s is None:
                continue  # the winner is priced from its usage below; no output: not billed
            tokens = Tokens(observation.prompt_tokens, observation.output_tokens)
            cost += self._cost(observation.deployment, tokens)
            billed = _plus(billed, tokens)
        tokens = Tokens()
        if winner is not None:
            tokens = tokens_of(_usage_of(served), winner.prompt_tokens, winner.output_tokens)
            cost += self._cost(winner.deployment, tokens)
            billed = _plus(billed, tokens)
        if ticket.admission is not None and self._limiter is not None:
            self._limiter.settle(ticket.admission, cost, billed.total)
        last = winner or (ticket.observations[-1] if ticket.observations else None)
        row = LedgerRow(
            request_id=ticket.request_id, key_id=ticket.key.id if ticket.key else None,
            model=ticket.chat.model, deployment=winner.deployment if winner else None,
            prompt_tokens=tokens.prompt, completion_tokens=tokens.completion,
            cached_tokens=tokens.cached, cache_write_tokens=tokens.cache_write,
            reasoning_tokens=tokens.reasoning, cost=cost,
            ttft_s=winner.ttft_s if winner else None,
            decode_tps=winner.decode_tps if winner else None,
            outcome=_outcome(winner, last, error), attempts=len(ticket.observations),
            at=self._wall(), surface=ticket.surface, stream=ticket.chat.stream)
        if self._record is not None:
            self._record(row)
        if self._request_log is not None:
            self._request_log.write(row, ticket.key, served, ticket.chat)

    def _route_for(self, key: VirtualKey, model: str) -> ModelRoute:
        models = key.spec.models
        route = self._catalog.models.get(model)
        if route is None or (models is not None and model not in models):
            raise _no_access(model)
        return route

    def _cost(self, deployment: str, tokens: Tokens) -> float:
        found = self._deployments.get(deployment)
        return cost_of(tokens, found.price) if found is not None else 0.0


def request_id_of(scope: Any) -> str:
    """The id `RequestContextMiddleware` gave the request (echoed as `x-request-id`)."""
    return str(scope.get("state", {}).get("request_id", ""))


def _no_access(model: str) -> ModelNotFound:
    # OpenAI's words: whether the model exists is not told to a key that may not use it.
    return ModelNotFound(f"The model `{model}` does not exist or you do not have access to it.",
                         param="model")


def _matches(deployment: Deployment, name: str) -> bool:
    return name == deployment.provider.name or name == deployment.id


def _allowed(key: VirtualKey, route: ModelRoute, options: RoutingOptions) -> list[Deployment]:
    """The deployments of `route` this request may reach: the key's, within the request's own
    `only`."""
    out = []
    for d in route.deployments:
        if key.spec.deployments is not None and not any(
                _matches(d, n) for n in key.spec.deployments):
            continue
        if options.only and not any(_matches(d, n) for n in options.only):
            continue
        out.append(d)
    return out


def _key_options(key: VirtualKey, options: RoutingOptions, route: ModelRoute,
                 allowed: list[Deployment]) -> RoutingOptions:
    spec = key.spec
    if spec.default_options:
        options = parse_options({**spec.default_options,
                                 **options.model_dump(exclude_unset=True)}, None)
    caps = spec.max_options
    failover = options.failover(route.failover)
    updates: dict[str, Any] = {}
    if caps.max_attempts is not None and failover.max_attempts > caps.max_attempts:
        updates["max_attempts"] = caps.max_attempts
    if caps.deadline_s is not None and failover.deadline_s > caps.deadline_s:
        updates["deadline_s"] = caps.deadline_s
    if caps.hedge is False and failover.hedge:
        updates["hedge"] = False
    if spec.deployments is not None:
        updates["only"] = [d.id for d in allowed]
    return options.model_copy(update=updates) if updates else options


def _choices(chat: ChatRequest) -> int:
    """`n`: each choice may produce up to the output limit."""
    n = chat.body.get("n")
    return n if type(n) is int and n > 1 else 1


def _usage_of(served: Served) -> dict[str, Any] | None:
    """The provider's usage: a stream's meter kept it; a finished answer (a Completion, or
    another surface's) has it in its body."""
    if isinstance(served, ChatStream):
        return served.meter.usage
    body = getattr(served, "body", None)
    usage = body.get("usage") if isinstance(body, dict) else None
    return usage if isinstance(usage, dict) else None


def _plus(a: Tokens, b: Tokens) -> Tokens:
    return Tokens(a.prompt + b.prompt, a.completion + b.completion, a.cached + b.cached,
                  a.reasoning + b.reasoning, a.cache_write + b.cache_write)


def _outcome(winner: Observation | None, last: Observation | None,
             error: BaseException | None) -> str:
    if winner is not None:
        return winner.outcome
    if isinstance(error, TokenlaneError):
        return error.code or error.type
    if last is not None:
        return last.outcome
    return "cancelled" if error is not None else "none"
