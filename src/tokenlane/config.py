"""Configuration: typed, frozen, validated once at start.

A YAML file becomes a `Settings` (pydantic, unknown keys rejected), then `resolve()` checks the
cross-references (a deployment naming an unknown provider, a provider whose key env var is unset)
and produces the runtime `Catalog`. Every failure is a `ConfigError` whose message names the file,
the key path and, when known, the line: one readable line, no traceback.

Secrets never live in files: a provider names the env var that holds its key (`api_key_env`),
and any other secret header the env var that holds its value (`headers_env`); `headers` refuses
names that carry credentials.

The sections' models live in config_server, config_providers and config_routing (over
config_base); this module holds the root `Settings`, its resolution into the `Catalog` and
the loaders, and re-exports the section models so callers import from `tokenlane.config` alone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, PlainValidator, ValidationError, model_validator

from .config_base import _Strict
from .config_providers import DeploymentSettings, ModelSettings, PriceSettings, ProviderSettings
from .config_routing import CircuitConfig, FailoverSettings, RoutingSettings
from .config_server import (
    AuthSettings,
    KeysSettings,
    LoggingSettings,
    MetricsSettings,
    ServerSettings,
    StateSettings,
    TelemetrySettings,
)
from .presets import PRESETS
from .types import Catalog, Deployment, Failover, ModelRoute, Provider
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
    "PriceSettings",
    "ProviderSettings",
    "RoutingSettings",
    "ServerSettings",
    "Settings",
    "StateSettings",
    "TelemetrySettings",
    "load_settings",
    "parse_settings",
]


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
