"""What a simulated provider is: the typed, validated knobs of one fake upstream.

A spec is frozen: changing a provider at run time (`Simulator.update`) swaps in a new,
re-validated spec, so a request that already started keeps the numbers it started with.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..capabilities import ALL_FEATURES
from .faults import FAULTS

__all__ = ["SimProviderSpec", "SimSettings"]

# Names become the first URL path segment, so keep them to RFC 3986 "unreserved" characters.
# A leading underscore is reserved for the simulator's own control routes (`/_sim/...`).
_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~-]*$"


class SimProviderSpec(BaseModel):
    """One simulated OpenAI-compatible provider, served under `/{name}/v1`.

    Timing model (before `time_scale` and `jitter`): the first token arrives after
    `ttft_s + ttft_per_1k_prompt_tokens_s * prompt_tokens / 1000`; every further token, and
    the closing step that decides `finish_reason`, takes `1 / tokens_per_s`. A request that
    produces n tokens therefore takes exactly `ttft + n / tokens_per_s`, and a client that
    measures time to first token and tokens per second afterwards reads back these numbers.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME_PATTERN, max_length=64)
    # Upstream model ids served; None serves any model id asked for.
    models: list[str] | None = None
    ttft_s: float = Field(default=0.2, ge=0)
    ttft_per_1k_prompt_tokens_s: float = Field(default=0.0, ge=0)
    tokens_per_s: float = Field(default=100.0, gt=0)
    # Relative spread: each delay is multiplied by a uniform draw in [1 - jitter, 1 + jitter].
    jitter: float = Field(default=0.0, ge=0, lt=1)
    output_tokens: int = Field(default=64, ge=1)
    # How the provider counts a prompt: 4 characters a token is English prose; code, JSON
    # and most other scripts come nearer 1 (for testing what relies on a prompt estimate).
    prompt_chars_per_token: float = Field(default=4.0, gt=0)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    rate_limit_rate: float = Field(default=0.0, ge=0, le=1)
    # Sent as given in `Retry-After`: it is advice to the client, not a delay the sim performs,
    # so `time_scale` does not touch it.
    retry_after_s: float = Field(default=1.0, ge=0)
    api_key: str | None = Field(default=None, repr=False)
    time_scale: float = Field(default=1.0, ge=0)
    seed: int = 0
    # A failure mode from `faults.FAULTS` (None: healthy), and the knobs some modes read.
    fault: str | None = None
    # Content tokens sent before a mid-stream fault strikes (see `faults`).
    fault_after_tokens: int = Field(default=1, ge=0)
    # How long a stall lasts, before `time_scale` like every delay.
    stall_s: float = Field(default=3600.0, ge=0)
    # `flap`: this many requests served as usual, then this many answered 503, and so on.
    flap_period: int = Field(default=3, ge=1)
    # Report usage with OpenAI's detail objects too: half the prompt as `cached_tokens`, half
    # the completion as `reasoning_tokens` (for checking they reach the client intact).
    usage_details: bool = False
    # Prompt tokens reported as written to the prompt cache (at most the prompt): OpenRouter's
    # `prompt_tokens_details.cache_write_tokens`, and on the Anthropic route its
    # `cache_creation_input_tokens`, for checking cache writes are priced.
    cache_write_tokens: int = Field(default=0, ge=0)
    # What real providers differ in (see tokenlane.capabilities and providers.headroom):
    # features answered with a 400 naming the parameter, as Groq documents for logprobs,
    # logit_bias, messages[].name and n > 1.
    rejects: list[str] = []
    # What a 429 says: "requests" (OpenAI's RPM message), or Cerebras's two kinds, "quota"
    # (a window used up) and "capacity" (its queue full right now).
    rate_limit_kind: Literal["requests", "quota", "capacity"] = "requests"
    # Per-minute limits, enforced (a request over them is a quota 429) and reported in
    # x-ratelimit-* headers: "cerebras" style (-minute families, reset in seconds) or "openai"
    # (no suffix, reset as a duration). Tokens are admitted as prompt + output limit.
    rate_limit_headers: Literal["cerebras", "openai"] | None = None
    requests_per_minute: int | None = Field(default=None, gt=0)
    tokens_per_minute: int | None = Field(default=None, gt=0)
    # Cerebras's `time_info` in every reply, `queue_s` of it spent queued.
    time_info: bool = False
    queue_s: float = Field(default=0.0, ge=0)
    # Share of requests with tools and tool_choice "auto" (or none) answered with a call.
    auto_tool_rate: float = Field(default=0.5, ge=0, le=1)

    @field_validator("rejects")
    @classmethod
    def _known_features(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - ALL_FEATURES)
        if unknown:
            raise ValueError(f"unknown features {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(ALL_FEATURES))})")
        return value

    @field_validator("models")
    @classmethod
    def _models_not_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("give at least one model id, or leave 'models' out to serve any")
        return value

    @field_validator("fault")
    @classmethod
    def _known_fault(cls, value: str | None) -> str | None:
        if value is not None and value not in FAULTS:
            known = ", ".join(sorted(FAULTS)) or "none yet"
            raise ValueError(f"unknown fault {value!r} (known: {known})")
        return value

    @model_validator(mode="after")
    def _rates_fit(self) -> SimProviderSpec:
        if self.error_rate + self.rate_limit_rate > 1:
            raise ValueError("error_rate + rate_limit_rate must not exceed 1")
        return self


class SimSettings(BaseModel):
    """The `sim:` section of a config file: where to listen and which providers to fake."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8001, ge=0, le=65535)
    providers: list[SimProviderSpec] = Field(min_length=1)

    @field_validator("providers")
    @classmethod
    def _unique_names(cls, value: list[SimProviderSpec]) -> list[SimProviderSpec]:
        seen: set[str] = set()
        for spec in value:
            if spec.name in seen:
                raise ValueError(f"provider name {spec.name!r} is used twice")
            seen.add(spec.name)
        return value
