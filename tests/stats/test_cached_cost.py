"""The engine's own cost of an attempt prices cached prompt tokens at the cached rate, from the
provider's usage: /v1/router/stats' effective price and the Prometheus cost counter agree with
the usage the client got back."""

from __future__ import annotations

import httpx
import pytest

from tokenlane.sim import SimProviderSpec

from ..harness import MASTER_KEY, stack

LONG = [{"role": "user", "content": "Tell me everything. " * 50}]
AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


def _spec(name: str) -> SimProviderSpec:
    # usage_details: the simulator reports half the prompt as cached.
    return SimProviderSpec(name=name, ttft_s=0, tokens_per_s=1000, output_tokens=10,
                           time_scale=0, usage_details=True)


@pytest.mark.parametrize("stream", [False, True])
def test_observed_cost_prices_cached_tokens(stream: bool) -> None:
    # $ per million: input 2, output 8; "cache" bills cached prompt tokens at 0.5, "plain"
    # (no cached price) at the input price.
    prices = {"cache": (2.0, 8.0, 0.5), "plain": (2.0, 8.0)}
    with stack([_spec("cache"), _spec("plain")], {"m": ["cache", "plain"]},
               prices=prices) as s:
        client = s.openai()
        usages = {}
        for name in prices:
            route = {"provider": {"order": [name], "allow_fallbacks": False}}
            if stream:
                chunks = list(client.chat.completions.create(
                    model="m", messages=LONG, stream=True,
                    stream_options={"include_usage": True}, extra_body=route))
                usages[name] = chunks[-1].usage
            else:
                usages[name] = client.chat.completions.create(
                    model="m", messages=LONG, extra_body=route).usage
        report = httpx.get(f"{s.url}/v1/router/stats", headers=AUTH).json()
        metrics = httpx.get(f"{s.url}/metrics", headers=AUTH).text
    rows = {d["provider"]: d for d in report["models"]["m"]["deployments"]}
    for name, (input_, output, *cached_price) in prices.items():
        usage = usages[name]
        cached = usage.prompt_tokens_details.cached_tokens
        assert 0 < cached < usage.prompt_tokens  # the provider reported part cached
        rate = cached_price[0] if cached_price else input_
        cost = ((usage.prompt_tokens - cached) * input_ + cached * rate
                + usage.completion_tokens * output) / 1e6
        assert rows[name]["usd_per_m_output"] == pytest.approx(
            cost / usage.completion_tokens * 1e6)
        line = next(x for x in metrics.splitlines()
                    if x.startswith(f'tokenlane_cost_usd_total{{deployment="{name}/{name}-m"}}'))
        assert float(line.split()[-1]) == pytest.approx(cost)
    # The cached price makes the same usage cheaper than billing the whole prompt as input.
    assert rows["cache"]["usd_per_m_output"] < rows["plain"]["usd_per_m_output"]
