"""Configuration: typed, frozen, validated once at start.

A YAML file becomes a `Settings` (pydantic, unknown keys rejected), then `resolve()` checks the
cross-references (a deployment naming an unknown provider, a provider whose key env var is unset)
and produces the runtime `Catalog`. Every failure is a `ConfigError` whose message names the file,
the key path and, when known, the line: one readable line, no traceback.

Secrets never live in files: a provider names the env var that holds its key (`api_key_env`),
and any other secret header the env var that holds its value (`headers_env`); `headers` refuses
names that carry credentials.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    model_validator,
)

from .capabilities import ALL_FEATURES, LimitParam, ParamRules, UnsupportedRule
from .presets import PRESETS, Preset
from .types import Catalog, Deployment, Failover, ModelRoute, Price, Provider
from .yamlfile import (
    ConfigError,
    describe_validation_error,
    describe_validation_errors,
    locate,
    read_yaml,
)

__all__ = [
    "AuthSettings",
    "CircuitConfig",
    "ConfigError",
    "DeploymentSettings",
    "FailoverSettings",
    "KeysSettings",
    "LoggingSettings",
    "MetricsSettings",
    "ModelSettings",
    "ProviderSettings",
    "RoutingSettings",
    "ServerSettings",
    "Settings",
    "StateSettings",
    "TelemetrySettings",
    "load_settings",
    "parse_settings",
]


PolicyName = Literal["balanced", "throughput", "latency", "price", "order", "weighted"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AuthSettings(_Strict):
    """Gateway auth. Clients send `Authorization: Bearer <one of the master keys>`."""

    enabled: bool = True
    # Comma-separated keys in this env var; several allow rotation without downtime.
    master_keys_env: str = "TOKENLANE_MASTER_KEYS"

    def master_keys(self, env: Mapping[str, str], *, source: str = "<config>") -> tuple[str, ...]:
        """The keys clients may present (none when auth is off); ConfigError when unset."""
        if not self.enabled:
            return ()
        keys = tuple(k.strip() for k in env.get(self.master_keys_env, "").split(",") if k.strip())
        if not keys:
            raise ConfigError(
                f"{source}: server.auth.master_keys_env: environment variable "
                f"{self.master_keys_env} is not set (set it, or disable auth explicitly with "
                "server.auth.enabled: false)"
            )
        return keys


class MetricsSettings(_Strict):
    """`/metrics` shows deployment names, spend and circuit states: it follows auth
    (Prometheus sends `authorization: Bearer`) unless made public explicitly."""

    public: bool = False


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0)
    # On SIGTERM: stop accepting, let streams in flight finish for up to this long.
    drain_timeout_s: float = Field(30.0, ge=0)
    auth: AuthSettings = AuthSettings()
    metrics: MetricsSettings = MetricsSettings()


_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key"})
_CREDENTIAL_WORDS = ("key", "token", "secret")


def _plain_header(name: str) -> str:
    lowered = name.lower()
    if lowered in _CREDENTIAL_HEADERS or any(word in lowered for word in _CREDENTIAL_WORDS):
        raise ValueError(
            f"header {name!r} carries a credential, and secrets never live in config files: "
            "put the key in an environment variable and name it with api_key_env (a second "
            "secret header: headers_env: {Header-Name: ENV_VAR})"
        )
    return name


def _absolute_url(url: str) -> str:
    # httpx would take "api.example.com/v1" as a relative URL and fail at the first request.
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an http:// or https:// URL with a host")
    return url


class ProviderSettings(_Strict):
    """One upstream API. `preset` fills `base_url` and `api_key_env`; either can be overridden."""

    preset: str | None = None
    base_url: Annotated[str, AfterValidator(_absolute_url)] | None = None
    api_key_env: str | None = None
    # The upstream API: "openai" (every OpenAI-compatible server) or "anthropic" (Messages).
    # Unset: the preset's (anthropic for `preset: anthropic`), else openai.
    dialect: Literal["openai", "anthropic"] | None = None
    # Fixed, non-secret headers; a name that looks like a credential is refused.
    headers: dict[Annotated[str, AfterValidator(_plain_header)], str] = {}
    # Header name -> env var holding its value, for a provider that needs a second secret.
    headers_env: dict[str, Annotated[str, Field(min_length=1)]] = {}
    # Upstream connections (each stream holds one); the pool's queue is measured in
    # tokenlane_upstream_pool_wait_seconds, so size it for the streams you run at once.
    max_connections: int = Field(4096, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    max_event_bytes: int = Field(1024 * 1024, ge=1024, description="cap on one SSE event")
    # Query parameters on every request (Azure's api-version); merged over the preset's.
    query: dict[str, str] = {}

    @model_validator(mode="after")
    def _known_preset(self) -> ProviderSettings:
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r} (known: {', '.join(sorted(PRESETS))})")
        if self.preset is None and self.base_url is None:
            raise ValueError("give either 'preset' or 'base_url'")
        if self.preset is not None and self.base_url is None and PRESETS[self.preset].base_url is None:
            raise ValueError(f"preset {self.preset!r} needs 'base_url' (the account's own address)")
        both = {h.lower() for h in self.headers} & {h.lower() for h in self.headers_env}
        if both:
            raise ValueError(f"header(s) {', '.join(sorted(both))} in both headers and headers_env")
        return self


class PriceSettings(_Strict):
    """US dollars per million tokens."""

    input: float = Field(0.0, ge=0)  # unset: 0, free (a local server)
    output: float = Field(0.0, ge=0)
    # Cached prompt tokens (reported as usage.prompt_tokens_details.cached_tokens); unset:
    # the preset's share of the input price (Anthropic's 0.1x), else the input price.
    cached_input: float | None = Field(None, ge=0)
    # Prompt tokens written to the cache (Anthropic's cache_creation_input_tokens); unset:
    # the preset's share of the input price (Anthropic's 1.25x), else the input price.
    cache_write: float | None = Field(None, ge=0)

    def resolve(self, preset: Preset | None) -> Price:
        """The deployment's prices, cache rates the preset's shares of input where unset."""
        read = self.cached_input
        write = self.cache_write
        if preset is not None and read is None and preset.cache_read_factor is not None:
            read = self.input * preset.cache_read_factor
        if preset is not None and write is None and preset.cache_write_factor is not None:
            write = self.input * preset.cache_write_factor
        return Price(self.input, self.output, read, write)


class DeploymentSettings(_Strict):
    provider: str
    model: str = Field(min_length=1, description="the model id the provider knows")
    price: PriceSettings = PriceSettings()  # unset: free (your own vLLM or llama.cpp box)
    context_window: int | None = Field(None, gt=0)
    # Features it supports (tokenlane.capabilities.ALL_FEATURES); unset: the preset's.
    capabilities: list[str] | None = None
    weight: float = Field(1.0, gt=0, description="share for the static `weighted` policy")
    # Parameter hygiene; unset: the preset's (see tokenlane.capabilities).
    unsupported: UnsupportedRule | None = None
    limit_param: LimitParam | None = None
    max_output_tokens: int | None = Field(
        None, gt=0, description="cap on the output limit sent (Cerebras admits on it)")
    # The upstream APIs it serves (tokenlane.types.ENDPOINTS): an embedding model is
    # `[embeddings]`, a base model behind vLLM may be `[chat, completions]`.
    endpoints: list[Literal["chat", "embeddings", "completions"]] = Field(
        ["chat"], min_length=1)

    @model_validator(mode="after")
    def _known_capabilities(self) -> DeploymentSettings:
        unknown = sorted(set(self.capabilities or ()) - ALL_FEATURES)
        if unknown:
            raise ValueError(f"unknown capabilities {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(ALL_FEATURES))})")
        return self

    def resolve_rules(self, preset: Preset | None) -> tuple[frozenset[str] | None, ParamRules]:
        """Capabilities and parameter rules: this deployment's settings over its preset's."""
        base = preset.rules if preset is not None else ParamRules()
        rules = replace(
            base, limit_param=self.limit_param or base.limit_param,
            unsupported=self.unsupported or base.unsupported,
            max_output_tokens=self.max_output_tokens or base.max_output_tokens)
        if self.capabilities is not None:
            return frozenset(self.capabilities), rules
        return (preset.capabilities if preset is not None else None), rules


class FailoverSettings(_Strict):
    """Retries, fallbacks, deadlines, hedging. In `routing.failover` for every model; a
    model's own `failover` overrides only the keys it sets."""

    max_attempts: int = Field(4, ge=1, le=20)
    retry_same: int = Field(0, ge=0, le=5, description="extra tries on one deployment")
    deadline_s: float = Field(300.0, gt=0)
    ttft_timeout_s: float | None = Field(
        None, gt=0, description="fixed TTFT deadline; unset: learned from each deployment's p99")
    max_ttft_timeout_s: float = Field(30.0, gt=0, description="bound of the learned deadline")
    stall_timeout_s: float = Field(30.0, gt=0)
    connect_timeout_s: float | None = Field(None, gt=0)
    hedge: bool = False
    hedge_delay_s: float = Field(1.0, ge=0)
    hedge_overdue: bool = Field(True, description="hedge when a first token is overdue")
    escape_slow_factor: float | None = Field(
        3.0, gt=1, description="non-stream: restart elsewhere when this many times slower")


class CircuitConfig(_Strict):
    consecutive_failures: int = Field(5, ge=1)
    error_rate: float = Field(0.5, gt=0, le=1)
    min_requests: int = Field(10, ge=1)
    window_s: float = Field(60.0, gt=0)
    open_s: float = Field(1.0, gt=0, description="first cool-down; doubles per failed trial")
    max_open_s: float = Field(30.0, gt=0)
    max_retry_after_s: float = Field(300.0, gt=0, description="Retry-After honoured up to")
    auth_open_s: float = Field(300.0, gt=0, description="open this long on an upstream 401/403")


class ProbeConfig(_Strict):
    """Active probes re-measure deployments users are kept away from (see routing.probes)."""

    enabled: bool = True
    interval_s: float = Field(0.25, gt=0, description="how often the recheck schedule is read")
    max_tokens: int = Field(16, ge=2, le=256)
    spend_cap_usd_per_day: float = Field(1.0, ge=0)


class RecheckConfig(_Strict):
    """When deployments are re-measured (routing.rechecks): degraded ones after `first_s`,
    backing off to `max_s`; idle healthy ones every `idle_s`."""

    first_s: float = Field(1.0, gt=0)
    max_s: float = Field(2.0, gt=0)
    idle_s: float = Field(60.0, gt=0)


class HealthConfig(_Strict):
    """What demotes a deployment under every policy, and the learned TTFT deadline."""

    overdue_factor: float = Field(2.0, gt=1, description="first token later than this x p90")
    trickle_factor: float = Field(3.0, gt=1, description="decoding this many times slower")
    ttft_timeout_p99_multiple: float = Field(4.0, gt=1)
    min_ttft_timeout_s: float = Field(1.0, gt=0)
    healthy_memory_s: float = Field(
        3600.0, gt=0, description="a slowdown is re-measured often for this long")


class ModelSettings(_Strict):
    deployments: list[DeploymentSettings] = Field(min_length=1)
    # Unset fields take the `routing:` section's defaults.
    policy: PolicyName | None = None
    value_of_time: float | None = Field(None, ge=0, description="USD per hour of waiting")
    expected_output_tokens: int | None = Field(None, gt=0)
    failover: FailoverSettings | None = None
    # Unix time /v1/models reports (e.g. the model's release); unset: when the config loaded.
    created: int | None = Field(None, ge=0)
    # Other models (by public name) whose deployments follow this one's in every plan.
    fallback_models: list[str] = []


class RoutingSettings(_Strict):
    """Defaults for every model, and how measurement and exploration behave."""

    policy: PolicyName = "balanced"
    value_of_time: float = Field(10.0, ge=0, description="USD per hour of waiting")
    expected_output_tokens: int = Field(256, gt=0)
    exploration_share: float = Field(0.05, ge=0, le=1)
    half_life_s: float = Field(300.0, gt=0, description="old samples fade at this pace")
    stale_after_s: float = Field(600.0, gt=0, description="unused this long = stale")
    recheck_after_s: float = Field(
        60.0, gt=0, description="a `require` miss on TTFT/decode speed binds this long")
    bad_news_hold_s: float = Field(
        60.0, ge=0, description="slower samples, not yet a confirmed shift, count this long")
    failover: FailoverSettings = FailoverSettings()
    circuit: CircuitConfig = CircuitConfig()
    hedge_budget: float = Field(0.1, ge=0, le=1, description="max share of requests hedged")
    probes: ProbeConfig = ProbeConfig()
    rechecks: RecheckConfig = RecheckConfig()
    health: HealthConfig = HealthConfig()


class KeysSettings(_Strict):
    """Virtual keys, budgets and the spend ledger (tokenlane.keys). Off unless enabled; then
    keys are managed under /admin/ (master keys only) and kept in SQLite in `data_dir`."""

    enabled: bool = False
    store: Literal["sqlite"] = "sqlite"
    data_dir: str = "tokenlane-data"  # relative: from the working directory
    path: str = "keys.sqlite3"  # the SQLite file, inside data_dir unless absolute
    # The most a request may produce when it sets no max_tokens: its budget reservation, and
    # (for a key with a budget) the max_tokens it is sent with, so it cannot spend past it.
    reserve_output_tokens: int = Field(4096, gt=0)
    # The ledger is written off the request path, in batches: this often, or this many rows.
    flush_interval_s: float = Field(0.5, gt=0)
    flush_rows: int = Field(500, gt=0)
    # Serve /admin/ on this port of server.host (`tokenlane serve`) instead of the API's
    # port, e.g. to firewall it apart; unset: on the API's port.
    admin_port: int | None = Field(None, ge=1, le=65535)

    def db_path(self) -> str:
        return os.path.join(self.data_dir, self.path)


class LoggingSettings(_Strict):
    """The gateway's own log lines (`tokenlane serve`), the access log and the request log."""

    format: Literal["json", "text"] = "text"  # json: one JSON object per line, for collectors
    # One line per HTTP request on every route, on the `tokenlane.access` logger at INFO.
    access: bool = True
    # The request log: one line per model request (its ledger fields, the decision, the
    # client) on the `tokenlane.requests` logger at INFO, with or without virtual keys.
    requests: bool = False
    # The request log's lines also carry the prompt and the answer text, streamed or not:
    # off, since prompts may hold what the callers would not want on disk.
    content: bool = False


def _redis_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"{url!r} is not a redis://, rediss:// or unix:// URL")
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError(f"{url!r} names no host")
    if parts.password:
        # Secrets never live in config files: the URL names where, password_env holds the key.
        raise ValueError("the URL carries a password: put it in an environment variable and "
                         "name that with state.password_env")
    return url


class StateSettings(_Strict):
    """Where shared, mutable state lives (tokenlane.state): `local` (in-process, the default)
    or `redis`, where replicas share estimates, circuits and probe leases (and, through
    tokenlane.keys, rate limits and budgets). Redis down or slow never fails a request: the
    replica carries on locally and resyncs when Redis answers again."""

    backend: Literal["local", "redis"] = "local"
    url: Annotated[str, AfterValidator(_redis_url)] | None = None
    password_env: str | None = None  # env var holding the Redis password (AUTH / ACL)
    # Every Redis call is bounded by this (connect and reply): past it the replica goes local.
    timeout_s: float = Field(0.25, gt=0, le=10)
    # Keys and channels start with this, so several fleets can share one Redis.
    prefix: str = Field("tokenlane", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    # Each replica publishes what it measured and takes the others' this often (twice a
    # second: a slowdown one replica sees steers every replica within about a second).
    sync_interval_s: float = Field(0.5, gt=0, le=60)
    # A replica that published nothing for this long drops out of the fleet's view.
    peer_stale_s: float = Field(5.0, gt=0)
    # While Redis is unreachable, it is tried again this often (one line logged per outage).
    retry_s: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _redis_needs_url(self) -> StateSettings:
        if self.backend == "redis" and self.url is None:
            raise ValueError("backend redis needs url (e.g. url: redis://127.0.0.1:6379/0)")
        if self.peer_stale_s <= self.sync_interval_s:
            raise ValueError("peer_stale_s must be longer than sync_interval_s, or every "
                             "replica would age out between two of its own publications")
        return self

    def password(self, env: Mapping[str, str], *, source: str = "<config>") -> str | None:
        """The Redis password from `password_env`; ConfigError when that variable is unset."""
        if self.password_env is None:
            return None
        value = env.get(self.password_env)
        if not value:
            raise ConfigError(f"{source}: state.password_env: environment variable "
                              f"{self.password_env} is not set")
        return value


class TelemetrySettings(_Strict):
    """OpenTelemetry tracing (the `tokenlane[otel]` extra): a span per client request and one
    per upstream attempt, W3C trace context continued from the client and sent upstream.
    Off by default; the SDK's OTEL_* environment variables apply (sampler, resource, OTLP
    endpoint and headers, OTEL_SDK_DISABLED)."""

    otel: bool = False
    # null: $OTEL_SERVICE_NAME, else "tokenlane".
    service_name: str | None = None
    # otlp: OTLP over HTTP (protobuf), batched; console: each span printed to stdout as it
    # ends; none: spans made and propagated upstream, exported nowhere.
    exporter: Literal["otlp", "console", "none"] = "otlp"
    # The OTLP traces URL (e.g. http://collector:4318/v1/traces); null:
    # $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or $OTEL_EXPORTER_OTLP_ENDPOINT, else localhost:4318.
    endpoint: Annotated[str, AfterValidator(_absolute_url)] | None = None


def _sim_section(value: Any) -> Any:
    # The simulator's own types validate it (errors keep their `sim.` paths), imported only
    # when a config has the section: a gateway without one never loads the simulator.
    if value is None:
        return None
    from .sim.spec import SimSettings

    return SimSettings.model_validate(value)


if TYPE_CHECKING:
    from .sim.spec import SimSettings

    SimSection = SimSettings | None
else:
    SimSection = Annotated[Any, PlainValidator(_sim_section)]


class Settings(_Strict):
    server: ServerSettings = ServerSettings()
    providers: dict[str, ProviderSettings] = {}
    models: dict[str, ModelSettings] = Field(min_length=1)
    routing: RoutingSettings = RoutingSettings()
    keys: KeysSettings = KeysSettings()
    logging: LoggingSettings = LoggingSettings()
    state: StateSettings = StateSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    # Simulated providers `tokenlane serve` starts beside the gateway (demo, tests, benchmarks).
    sim: SimSection = None

    @model_validator(mode="after")
    def _keys_need_master_keys(self) -> Settings:
        if self.keys.enabled and not self.server.auth.enabled:
            raise ValueError("keys.enabled needs server.auth.enabled: master keys guard the "
                             "admin API that manages virtual keys")
        return self

    def check_not_serving_itself(self, catalog: Catalog, *, source: str = "<config>") -> None:
        """For the gateway (not the in-process Router, which listens nowhere): refuse a
        provider whose base URL is this gateway's own listen address (e.g. vLLM's default
        127.0.0.1:8000 under the gateway's default), which would send requests in a loop."""
        for name, provider in catalog.providers.items():
            _not_this_gateway(name, self.providers[name], provider.base_url, self.server, source)

    def resolve(self, env: Mapping[str, str], *, source: str = "<config>") -> Catalog:
        """Check cross-references and read keys from `env`; raise ConfigError naming the key."""
        used = {d.provider for m in self.models.values() for d in m.deployments}
        providers: dict[str, Provider] = {}
        for name, spec in self.providers.items():
            if name in used:
                providers[name] = _resolve_provider(name, spec, env, source)
        models: dict[str, ModelRoute] = {}
        for model_name, model in self.models.items():
            deployments = []
            for i, dep in enumerate(model.deployments):
                provider = providers.get(dep.provider)
                if provider is None:
                    known = ", ".join(sorted(self.providers)) or "none"
                    raise ConfigError(
                        f"{source}: models.{model_name}.deployments[{i}].provider: "
                        f"unknown provider {dep.provider!r} (known: {known})"
                    )
                spec = self.providers[dep.provider]
                passthrough = set(dep.endpoints) - {"chat"}
                if passthrough and provider.dialect != "openai":
                    raise ConfigError(
                        f"{source}: models.{model_name}.deployments[{i}].endpoints: "
                        f"{', '.join(sorted(passthrough))} need an OpenAI-dialect provider "
                        f"({dep.provider!r} speaks {provider.dialect})")
                preset = PRESETS.get(spec.preset or "")
                capabilities, rules = dep.resolve_rules(preset)
                deployments.append(
                    Deployment(
                        id=f"{dep.provider}/{dep.model}",
                        provider=provider,
                        upstream_model=dep.model,
                        price=dep.price.resolve(preset),
                        context_window=dep.context_window,
                        capabilities=capabilities,
                        weight=dep.weight,
                        rules=rules,
                        endpoints=frozenset(dep.endpoints),
                    )
                )
            ids = [d.id for d in deployments]
            if len(set(ids)) != len(ids):
                raise ConfigError(f"{source}: models.{model_name}.deployments: listed twice: {ids}")
            r = self.routing
            models[model_name] = ModelRoute(
                name=model_name,
                deployments=tuple(deployments),
                policy=model.policy or r.policy,
                value_of_time=r.value_of_time if model.value_of_time is None else model.value_of_time,
                expected_output_tokens=model.expected_output_tokens or r.expected_output_tokens,
                failover=_failover(r.failover, model.failover),
                created=model.created if model.created is not None else int(time.time()),
                fallback_models=tuple(model.fallback_models),
            )
        for model_name, model in self.models.items():
            unknown = [m for m in model.fallback_models if m not in self.models]
            if unknown:
                raise ConfigError(f"{source}: models.{model_name}.fallback_models: unknown "
                                  f"model(s) {', '.join(unknown)}")
        return Catalog(models=models, providers=providers)


def _failover(default: FailoverSettings, model: FailoverSettings | None) -> Failover:
    merged = default.model_dump()
    if model is not None:
        merged.update(model.model_dump(exclude_unset=True))
    return Failover(**merged)


def _resolve_provider(
    name: str, spec: ProviderSettings, env: Mapping[str, str], source: str
) -> Provider:
    preset = PRESETS.get(spec.preset) if spec.preset else None
    base_url = spec.base_url or (preset.base_url if preset else None)
    key_env = spec.api_key_env or (preset.api_key_env if preset else None)
    key_required = preset.key_required if (preset and spec.api_key_env is None) else True
    api_key = env.get(key_env) if key_env else None
    if key_env and not api_key and key_required:
        raise ConfigError(
            f"{source}: providers.{name}.api_key_env: environment variable {key_env} is not set "
            f"(provider {name!r} is used by a model)"
        )
    headers: list[tuple[str, str]] = list(spec.headers.items())
    for header, var in spec.headers_env.items():
        value = env.get(var)
        if not value:
            raise ConfigError(
                f"{source}: providers.{name}.headers_env.{header}: environment variable {var} "
                f"is not set (provider {name!r} is used by a model)"
            )
        headers.append((header, _Secret(value)))
    assert base_url is not None  # the validator demands preset or base_url
    return Provider(
        name=name,
        base_url=base_url.rstrip("/"),
        api_key=api_key or None,
        headers=tuple(headers),
        dialect=spec.dialect or (preset.dialect if preset else "openai"),
        max_connections=spec.max_connections,
        connect_timeout_s=spec.connect_timeout_s,
        max_event_bytes=spec.max_event_bytes,
        auth_header=preset.auth_header if preset else "authorization",
        query=tuple({**(preset.query if preset else {}), **spec.query}.items()),
        api_key_env=key_env,
    )


class _Secret(str):
    """A header value from the environment: sent as is, never shown by repr (logs, dumps)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<redacted>'"


# Names that reach this machine's loopback listener, and the hosts that mean "every interface".
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
_ANY_INTERFACE = frozenset({"0.0.0.0", "::", ""})


def _not_this_gateway(
    name: str, spec: ProviderSettings, base_url: str, server: ServerSettings, source: str
) -> None:
    """Refuse a provider that would send the gateway's requests back to the gateway."""
    parts = urlsplit(base_url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:  # not a port number: the provider fails on its own, not a loop
        return
    if server.port == 0 or port != server.port:
        return
    host, own = (parts.hostname or "").lower(), server.host.lower().strip("[]")
    same = (host == own or (own in _ANY_INTERFACE and host in _LOOPBACK | _ANY_INTERFACE)
            or (own in _LOOPBACK and host in _LOOPBACK))
    if same:
        origin = f" (preset {spec.preset}'s default)" if spec.base_url is None else ""
        raise ConfigError(
            f"{source}: providers.{name}.base_url: {base_url}{origin} points at this gateway "
            f"itself ({server.host}:{server.port}); set the provider's base_url to where it "
            "listens, or move the gateway with server.port"
        )


def parse_settings(data: object, *, source: str = "<config>", text: str | None = None) -> Settings:
    """Validate already-loaded YAML/dict data; `text` (the file's text) adds line numbers."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        loc, message = describe_validation_error(exc)
        every = tuple(f"{locate(source, text, where)}: {problem}"
                      for where, problem in describe_validation_errors(exc))
        raise ConfigError(f"{locate(source, text, loc)}: {message}", every) from None


def load_settings(path: str | os.PathLike[str]) -> Settings:
    """Read and validate one YAML config file."""
    data, text = read_yaml(path, ConfigError)
    return parse_settings(data, source=str(path), text=text)
