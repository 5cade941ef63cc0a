"""What a request cost, from the provider's own `usage` (pure).

OpenAI's usage counts cached prompt tokens inside `prompt_tokens` (and in
`prompt_tokens_details.cached_tokens`) and reasoning tokens inside `completion_tokens` (and in
`completion_tokens_details.reasoning_tokens`). Prompt tokens written to a provider's prompt
cache are part of `prompt_tokens` too, counted in `prompt_tokens_details.cache_write_tokens`
(OpenRouter's name; the Anthropic dialect puts Anthropic's `cache_creation_input_tokens`
there). Cached tokens are billed at the deployment's `price.cached_input` when configured,
cache writes at `price.cache_write`, each else at the input price; reasoning tokens are output
tokens and billed as such. Both the spend ledger (tokenlane.keys) and the engine's own
`Observation.cost` (routing's price signal, the stats and the metrics) price a request with
this, so they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .types import Price

__all__ = ["Tokens", "cost_of", "tokens_of"]


@dataclass(frozen=True, slots=True)
class Tokens:
    prompt: int = 0
    completion: int = 0
    cached: int = 0  # part of `prompt`: read from the prompt cache
    reasoning: int = 0  # part of `completion`
    cache_write: int = 0  # part of `prompt`: written to the prompt cache

    @property
    def total(self) -> int:
        return self.prompt + self.completion


def tokens_of(usage: dict[str, Any] | None, prompt: int = 0, completion: int = 0) -> Tokens:
    """Token counts from an OpenAI usage object; `prompt`/`completion` (what the gateway
    counted) where the usage is missing or says nothing."""
    if not isinstance(usage, dict):
        return Tokens(prompt, completion)
    return Tokens(
        prompt=_count(usage.get("prompt_tokens"), prompt),
        completion=_count(usage.get("completion_tokens"), completion),
        cached=_count(_detail(usage, "prompt_tokens_details", "cached_tokens"), 0),
        cache_write=_count(_detail(usage, "prompt_tokens_details", "cache_write_tokens"), 0),
        reasoning=_count(_detail(usage, "completion_tokens_details", "reasoning_tokens"), 0),
    )


def cost_of(tokens: Tokens, price: Price) -> float:
    """USD for `tokens` at `price` (per million tokens)."""
    # Parts of the prompt: a usage claiming more than the whole is held to the whole.
    cached = min(tokens.cached, tokens.prompt)
    written = min(tokens.cache_write, tokens.prompt - cached)
    cached_rate = price.input if price.cached_input is None else price.cached_input
    write_rate = price.input if price.cache_write is None else price.cache_write
    return ((tokens.prompt - cached - written) * price.input + cached * cached_rate
            + written * write_rate + tokens.completion * price.output) / 1_000_000


def _detail(usage: dict[str, Any], group: str, name: str) -> Any:
    details = usage.get(group)
    return details.get(name) if isinstance(details, dict) else None


def _count(value: Any, default: int) -> int:
    # The dialects check usage counts are integers (not booleans); be as strict here.
    return value if type(value) is int and value >= 0 else default
