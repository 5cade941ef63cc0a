"""Pricing prompt-cache writes (pure): `cache_write_tokens` at the deployment's
`price.cache_write`, Anthropic's preset defaulting to its 1.25x (and reads to 0.1x)."""

from __future__ import annotations

import pytest

from tokenlane.config import PriceSettings
from tokenlane.presets import PRESETS
from tokenlane.pricing import Tokens, cost_of, tokens_of
from tokenlane.types import Price

USAGE = {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200,
         "prompt_tokens_details": {"cached_tokens": 600, "cache_write_tokens": 300}}


def test_cache_writes_are_read_from_the_usage() -> None:
    assert tokens_of(USAGE) == Tokens(prompt=1000, completion=200, cached=600, cache_write=300)
    assert tokens_of({"prompt_tokens": 5, "prompt_tokens_details": {
        "cache_write_tokens": True}}).cache_write == 0  # not a count


def test_cache_writes_are_priced_at_the_cache_write_price() -> None:
    price = Price(input=2.0, output=8.0, cached_input=0.5, cache_write=2.5)
    fresh = 1000 - 600 - 300
    assert cost_of(tokens_of(USAGE), price) == pytest.approx(
        (fresh * 2.0 + 600 * 0.5 + 300 * 2.5 + 200 * 8.0) / 1e6)
    # No cache-write price: written tokens are input tokens, billed once, never for free.
    assert cost_of(tokens_of(USAGE), Price(2.0, 8.0, 0.5)) == pytest.approx(
        ((1000 - 600) * 2.0 + 600 * 0.5 + 200 * 8.0) / 1e6)


def test_a_usage_claiming_more_than_the_prompt_is_held_to_it() -> None:
    price = Price(input=1.0, output=0.0, cached_input=0.0, cache_write=10.0)
    tokens = Tokens(prompt=100, cached=80, cache_write=50)
    # Only the 20 tokens beside the cached 80 can have been written.
    assert cost_of(tokens, price) == pytest.approx(20 * 10.0 / 1e6)


def test_anthropic_preset_defaults_cache_prices_to_its_multipliers() -> None:
    anthropic = PRESETS["anthropic"]
    assert PriceSettings(input=3.0, output=15.0).resolve(anthropic) == Price(
        3.0, 15.0, cached_input=pytest.approx(0.3), cache_write=pytest.approx(3.75))
    # A configured price wins over the preset's share.
    assert PriceSettings(input=3.0, output=15.0, cached_input=1.0, cache_write=4.0).resolve(
        anthropic) == Price(3.0, 15.0, 1.0, 4.0)
    # Other providers bill cache traffic as input unless the config says otherwise.
    assert PriceSettings(input=3.0, output=15.0).resolve(PRESETS["openai"]) == Price(3.0, 15.0)
    assert PriceSettings(input=3.0, output=15.0).resolve(None) == Price(3.0, 15.0)
