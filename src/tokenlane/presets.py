"""Well-known providers: where they live, how they authenticate, and what they accept.

Checked against each provider's public docs (2026-11/12). Every field is overridable in config
(per provider for the address and key, per deployment for capabilities and parameter rules); a
preset only fills what the config leaves out.

Capabilities are provider-wide defaults for the models this project routes (gpt-oss-120b and
peers); a deployment whose model differs sets its own `capabilities` in config. `None` means
"not known": the gateway sends such a deployment everything (see `tokenlane.capabilities`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .capabilities import ALL_FEATURES, DEFAULT_RULES, ParamRules

__all__ = ["PRESETS", "Preset"]


@dataclass(frozen=True, slots=True)
class Preset:
    base_url: str | None  # None: the account's own address, which config must give
    api_key_env: str | None
    # Local servers run without auth unless started with a key; a missing env var is not an
    # error for them, the request simply carries no Authorization header.
    key_required: bool = True
    capabilities: frozenset[str] | None = None
    rules: ParamRules = DEFAULT_RULES
    # The header the key goes in: "authorization" sends `Bearer <key>`; any other name (Azure's
    # `api-key`) sends the bare key.
    auth_header: str = "authorization"
    # Query parameters every request carries (Azure's `api-version`).
    query: dict[str, str] = field(default_factory=dict)
    dialect: str = "openai"  # the API it speaks (providers.DIALECTS)
    # What the provider bills prompt-cache reads and writes at, as shares of the input
    # price, for deployments whose config sets no cache price (None: the input price).
    cache_read_factor: float | None = None
    cache_write_factor: float | None = None


def _without(*features: str) -> frozenset[str]:
    return ALL_FEATURES - frozenset(features)


_COMPLETION_LIMIT = ParamRules(limit_param="max_completion_tokens")
_MAX_TOKENS = ParamRules(limit_param="max_tokens")

PRESETS: dict[str, Preset] = {
    # gpt-oss-120b on Cerebras: no json_object mode, no logit_bias, n or images;
    # `parallel_tool_calls: false` unsupported. Admission counts max_completion_tokens.
    "cerebras": Preset(
        "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY",
        capabilities=_without("json_object", "logit_bias", "n", "vision", "parallel_tool_calls"),
        rules=_COMPLETION_LIMIT),
    # Groq documents 400s for logprobs, logit_bias, top_logprobs, messages[].name and n != 1.
    "groq": Preset(
        "https://api.groq.com/openai/v1", "GROQ_API_KEY",
        capabilities=_without("logprobs", "logit_bias", "message_names", "n"),
        rules=_COMPLETION_LIMIT),
    # Reasoning models refuse max_tokens; max_completion_tokens works for every model.
    "openai": Preset("https://api.openai.com/v1", "OPENAI_API_KEY",
                     capabilities=ALL_FEATURES, rules=_COMPLETION_LIMIT),
    "together": Preset("https://api.together.xyz/v1", "TOGETHER_API_KEY",
                       capabilities=_without("vision"), rules=_MAX_TOKENS),
    "fireworks": Preset("https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY",
                        capabilities=_without("logit_bias", "vision"), rules=_MAX_TOKENS),
    # DeepInfra serves its OpenAI-compatible API under /v1/openai, not /v1; its docs call the
    # key DEEPINFRA_TOKEN (docs.deepinfra.com/chat/overview).
    "deepinfra": Preset("https://api.deepinfra.com/v1/openai", "DEEPINFRA_TOKEN",
                        capabilities=_without("logit_bias", "vision"), rules=_MAX_TOKENS),
    # OpenRouter routes on its own (the client's `provider` object goes to it): unknown here.
    "openrouter": Preset("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY",
                         rules=ParamRules(forward_provider=True)),
    # Anthropic's Messages API (providers/anthropic.py sends the key as x-api-key). Cache
    # reads bill at 0.1x the input price, 5-minute cache writes at 1.25x (its pricing page).
    "anthropic": Preset("https://api.anthropic.com/v1", "ANTHROPIC_API_KEY", dialect="anthropic",
                        cache_read_factor=0.1, cache_write_factor=1.25),
    # Gemini's OpenAI-compatible endpoint: no logprobs/logit_bias, no message names.
    "gemini": Preset(
        "https://generativelanguage.googleapis.com/v1beta/openai", "GEMINI_API_KEY",
        capabilities=_without("logprobs", "logit_bias", "message_names", "parallel_tool_calls"),
        rules=_MAX_TOKENS),
    # Azure OpenAI: the resource's own URL (https://<resource>.openai.azure.com/openai/
    # deployments/<deployment>), the key in an `api-key` header, and an api-version.
    "azure-openai": Preset(
        None, "AZURE_OPENAI_API_KEY", capabilities=ALL_FEATURES, rules=_COMPLETION_LIMIT,
        auth_header="api-key", query={"api-version": "2024-10-21"}),
    # vLLM's own default port, which is also the gateway's: config refuses a provider that
    # points at the gateway itself, so a local vLLM beside a default gateway sets base_url.
    "vllm": Preset("http://127.0.0.1:8000/v1", "VLLM_API_KEY", key_required=False),
    "llamacpp": Preset("http://127.0.0.1:8080/v1", "LLAMA_API_KEY", key_required=False),
    "ollama": Preset("http://127.0.0.1:11434/v1", None, key_required=False),
}
