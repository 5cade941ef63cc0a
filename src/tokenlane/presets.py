"""Well-known providers: base URL and the env var their docs tell users to keep the key in.

Checked against each provider's public docs (2026-11). Every field is overridable per provider
in config; a preset only fills what the config leaves out.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PRESETS", "Preset"]


@dataclass(frozen=True, slots=True)
class Preset:
    base_url: str
    api_key_env: str | None
    # Local servers run without auth unless started with a key; a missing env var is not an
    # error for them, the request simply carries no Authorization header.
    key_required: bool = True
    dialect: str = "openai"  # the API it speaks (providers.DIALECTS)


PRESETS: dict[str, Preset] = {
    "cerebras": Preset("https://api.cerebras.ai/v1", "CEREBRAS_API_KEY"),
    "groq": Preset("https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    "openai": Preset("https://api.openai.com/v1", "OPENAI_API_KEY"),
    "together": Preset("https://api.together.xyz/v1", "TOGETHER_API_KEY"),
    "fireworks": Preset("https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
    # DeepInfra serves its OpenAI-compatible API under /v1/openai, not /v1; its docs call the
    # key DEEPINFRA_TOKEN (docs.deepinfra.com/chat/overview).
    "deepinfra": Preset("https://api.deepinfra.com/v1/openai", "DEEPINFRA_TOKEN"),
    "openrouter": Preset("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    # Anthropic's Messages API (providers/anthropic.py sends the key as x-api-key).
    "anthropic": Preset("https://api.anthropic.com/v1", "ANTHROPIC_API_KEY", dialect="anthropic"),
    # vLLM's own default port, which is also the gateway's: config refuses a provider that
    # points at the gateway itself, so a local vLLM beside a default gateway sets base_url.
    "vllm": Preset("http://127.0.0.1:8000/v1", "VLLM_API_KEY", key_required=False),
    "llamacpp": Preset("http://127.0.0.1:8080/v1", "LLAMA_API_KEY", key_required=False),
    "ollama": Preset("http://127.0.0.1:11434/v1", None, key_required=False),
}
