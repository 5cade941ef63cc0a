"""The `providers:` and `models:` sections: upstream APIs, their prices, deployments, models.

A provider names the env vars holding its secrets, read when `config` resolves the catalog;
here `headers` refuses names that carry credentials, since secrets never live in files.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from .capabilities import ALL_FEATURES, LimitParam, ParamRules, UnsupportedRule
from .config_base import _absolute_url, _Strict
from .config_routing import FailoverSettings, PolicyName
from .presets import PRESETS, Preset
from .types import Price

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
