"""Runtime records shared by the rooms: what config resolves into and what requests carry."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Catalog", "Deployment", "Failover", "ModelRoute", "Price", "Provider"]


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float

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


@dataclass(frozen=True, slots=True)
class Deployment:
    """One model on one provider, e.g. `cerebras/llama-3.3-70b`."""

    id: str
    provider: Provider
    upstream_model: str
    price: Price
    context_window: int | None = None
    capabilities: frozenset[str] = frozenset()
    weight: float = 1.0  # for the static `weighted` policy


@dataclass(frozen=True, slots=True)
class Failover:
    """Retries, fallbacks, deadlines and hedging for one request (model defaults, per-request
    overrides)."""

    max_attempts: int = 4
    retry_same: int = 0  # extra tries on the same deployment before falling back
    deadline_s: float = 300.0  # overall
    ttft_timeout_s: float = 30.0  # no first token by then: abandon, next deployment
    stall_timeout_s: float = 30.0  # gap between tokens once streaming
    connect_timeout_s: float | None = None  # None: the provider's
    hedge: bool = False
    hedge_delay_s: float = 1.0  # hedge after max(this, the primary's p90 TTFT)


@dataclass(frozen=True, slots=True)
class ModelRoute:
    """A public model name and the deployments that can serve it."""

    name: str
    deployments: tuple[Deployment, ...]
    policy: str = "balanced"
    value_of_time: float = 10.0  # USD per hour of waiting, for `balanced`
    expected_output_tokens: int = 256  # when the request sets no max_tokens
    failover: Failover = Failover()


@dataclass(frozen=True, slots=True)
class Catalog:
    models: dict[str, ModelRoute]
    providers: dict[str, Provider]
