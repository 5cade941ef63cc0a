"""Runtime records shared by the rooms: what config resolves into and what requests carry."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .capabilities import DEFAULT_RULES, ParamRules

__all__ = ["CHAT_ONLY", "ENDPOINTS", "Catalog", "Deployment", "Failover", "ModelRoute", "Price",
           "Provider"]

# The upstream APIs a deployment may serve: chat completions (every surface that translates to
# chat rides on it), embeddings and legacy text completions (passed through: routing/passthrough).
ENDPOINTS = ("chat", "embeddings", "completions")
CHAT_ONLY = frozenset({"chat"})


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float
    # Cached prompt tokens (a provider's prompt cache); None: billed as input. Applied where a
    # request's usage is known (tokenlane.pricing: the ledger and each attempt's observation).
    cached_input: float | None = None
    # Prompt tokens written to the cache (Anthropic bills them above the input price); None:
    # billed as input.
    cache_write: float | None = None

    def cost(self, prompt_tokens: float, output_tokens: float) -> float:
        return (prompt_tokens * self.input + output_tokens * self.output) / 1_000_000


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    base_url: str
    # Never printed: repr=False keeps it out of logs, tracebacks and debug dumps.
    api_key: str | None = field(repr=False)
    headers: tuple[tuple[str, str], ...] = ()
    dialect: str = "openai"
    max_connections: int = 4096
    connect_timeout_s: float = 5.0
    max_event_bytes: int = 1024 * 1024  # one SSE event longer than this is a bad answer
    # The header the key goes in: `authorization` carries `Bearer <key>`, any other name
    # (Azure's `api-key`) the bare key; and query parameters every request carries.
    auth_header: str = "authorization"
    query: tuple[tuple[str, str], ...] = ()
    api_key_env: str | None = None  # where the key came from (named in logs; never the key)


@dataclass(frozen=True, slots=True)
class Deployment:
    """One model on one provider, e.g. `cerebras/llama-3.3-70b`."""

    id: str
    provider: Provider
    upstream_model: str
    price: Price
    context_window: int | None = None
    # Features it supports (tokenlane.capabilities); None: unknown, assumed to accept all.
    capabilities: frozenset[str] | None = None
    weight: float = 1.0  # for the static `weighted` policy
    rules: ParamRules = DEFAULT_RULES  # limit parameter, unsupported-parameter rule, cap
    endpoints: frozenset[str] = CHAT_ONLY  # of ENDPOINTS: what this deployment serves


@dataclass(frozen=True, slots=True)
class Failover:
    """Retries, fallbacks, deadlines and hedging for one request (model defaults, per-request
    overrides)."""

    max_attempts: int = 4
    retry_same: int = 0  # extra tries on the same deployment before falling back
    deadline_s: float = 300.0  # overall
    # No first token by then: abandon, next deployment. None: learned per deployment from its
    # TTFT distribution (see `routing.health.ttft_timeout`), at most `max_ttft_timeout_s`.
    ttft_timeout_s: float | None = None
    max_ttft_timeout_s: float = 30.0
    stall_timeout_s: float = 30.0  # gap between tokens once streaming
    connect_timeout_s: float | None = None  # None: the provider's
    hedge: bool = False
    hedge_delay_s: float = 1.0  # hedge after max(this, the primary's p90 TTFT)
    # Hedge when the first token is overdue (past twice the deployment's own TTFT p90),
    # within the hedge budget, even when `hedge` is off: a stall costs about 2x a usual TTFT.
    hedge_overdue: bool = True
    # Non-streaming: start over elsewhere when a running attempt's live decode speed predicts
    # it will finish this many times later than the next deployment would (None: never).
    escape_slow_factor: float | None = 3.0


@dataclass(frozen=True, slots=True)
class ModelRoute:
    """A public model name and the deployments that can serve it."""

    name: str
    deployments: tuple[Deployment, ...]
    policy: str = "balanced"
    value_of_time: float = 10.0  # USD per hour of waiting, for `balanced`
    expected_output_tokens: int = 256  # when the request sets no max_tokens
    failover: Failover = Failover()
    created: int = 0  # Unix time, for /v1/models: configured, else when the config loaded
    fallback_models: tuple[str, ...] = ()  # tried, in order, when every deployment failed

    def serving(self, endpoint: str) -> ModelRoute:
        """This model with only the deployments that serve `endpoint` (itself when all do,
        the common case: no copy on the chat path)."""
        if all(endpoint in d.endpoints for d in self.deployments):
            return self
        return replace(self, deployments=tuple(
            d for d in self.deployments if endpoint in d.endpoints))


@dataclass(frozen=True, slots=True)
class Catalog:
    models: dict[str, ModelRoute]
    providers: dict[str, Provider]
