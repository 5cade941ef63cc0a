"""Cache writes reported by an Anthropic upstream are priced: the simulated Anthropic provider
reports `cache_creation_input_tokens` (and cache reads), the `anthropic` preset prices them at
Anthropic's 1.25x (reads 0.1x) of the configured input price, and the cost metric and the
ledger row both carry that cost. The client is the official anthropic SDK."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from tokenlane.sim import SimProviderSpec

from ..harness import MASTER_KEY, SIM_KEY
from ..keys.support import requests
from .support import anthropic_stack

WRITTEN = 40
# usage_details: half the prompt reported as read from the cache.
CLAUDE = SimProviderSpec(name="claude", ttft_s=0, tokens_per_s=1000, output_tokens=10,
                         time_scale=0, api_key=SIM_KEY, usage_details=True,
                         cache_write_tokens=WRITTEN)
LONG = [{"role": "user", "content": "Remember all of this. " * 40}]
INPUT, OUTPUT = 3.0, 15.0  # $ per million; no cache prices configured: the preset's apply


def _cost(usage: Any) -> float:
    return (usage.input_tokens * INPUT + usage.cache_read_input_tokens * INPUT * 0.1
            + usage.cache_creation_input_tokens * INPUT * 1.25
            + usage.output_tokens * OUTPUT) / 1e6


def _metric(s: Any) -> float:
    text = httpx.get(f"{s.url}/metrics", headers={"authorization": f"Bearer {MASTER_KEY}"}).text
    line = next(x for x in text.splitlines()
                if x.startswith('tokenlane_cost_usd_total{deployment="claude/claude-m"}'))
    return float(line.split()[-1])


def test_cache_writes_are_priced_in_metrics_and_the_ledger(tmp_path) -> None:
    # The anthropic preset (its address replaced by the simulator's) brings the cache prices.
    with anthropic_stack([CLAUDE], {"m": ["claude"]}, prices={"claude": (INPUT, OUTPUT)},
                         claude={"preset": "anthropic"},
                         extra={"keys": {"enabled": True, "data_dir": str(tmp_path)}}) as s:
        client = anthropic.Anthropic(base_url=s.url, auth_token=MASTER_KEY, max_retries=0)
        whole = client.messages.create(model="m", max_tokens=100, messages=LONG).usage
        after_one = _metric(s)
        with client.messages.stream(model="m", max_tokens=100, messages=LONG) as stream:
            streamed = stream.get_final_message().usage
        total = _metric(s)
        rows = requests(s)[::-1]  # oldest first
    for usage in (whole, streamed):
        assert usage.cache_creation_input_tokens == WRITTEN
        assert usage.cache_read_input_tokens > 0 and usage.input_tokens > 0
    assert after_one == pytest.approx(_cost(whole))
    assert total == pytest.approx(_cost(whole) + _cost(streamed))
    assert [r["cost"] for r in rows] == pytest.approx([_cost(whole), _cost(streamed)])
    assert [r["cache_write_tokens"] for r in rows] == [WRITTEN, WRITTEN]
    assert [r["cached_tokens"] for r in rows] == [whole.cache_read_input_tokens,
                                                  streamed.cache_read_input_tokens]
    # The writes cost more than the same tokens at the input price would have.
    plain = _cost(whole) - WRITTEN * INPUT * 0.25 / 1e6
    assert rows[0]["cost"] > plain > 0

