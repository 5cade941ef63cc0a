"""Budgets through the real app: refused before anything goes upstream, never overspent by
concurrent requests (reservations), settled from the provider's usage."""

from __future__ import annotations

import asyncio

import openai
import pytest

from .support import HELLO, admin, as_key, as_key_async, create_key, keyed_stack, quick, spend

# Provider a: $1 / $2 per million tokens (the harness's first price). A HELLO request with
# max_tokens=10 reserves its most: 9 prompt tokens (the gateway's estimate; the provider
# counts 8) + 10 output tokens = $29e-6; it really costs 8 + 10 tokens = $28e-6.
RESERVATION = (9 * 1.0 + 10 * 2.0) / 1e6
COST = (8 * 1.0 + 10 * 2.0) / 1e6


@pytest.fixture
def gw(tmp_path):
    with keyed_stack([quick("a")], {"m": ["a"]}, str(tmp_path)) as s:
        yield s


def test_over_budget_is_refused_before_any_upstream_request(gw) -> None:
    key_id, secret = create_key(gw, budget_usd={"total": 2.5 * COST})
    client = as_key(gw, secret)
    for _ in range(2):
        client.chat.completions.create(model="m", messages=HELLO, max_tokens=10)
    before = gw.sim.counters("a").requests
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="m", messages=HELLO, max_tokens=10)
    assert gw.sim.counters("a").requests == before  # nothing went upstream
    error = err.value.body
    assert err.value.status_code == 429 and error["code"] == "budget_exceeded"
    assert error["type"] == "insufficient_quota" and "total budget" in error["message"]
    assert err.value.response.headers["x-should-retry"] == "false"
    assert secret not in err.value.response.text
    total = spend(gw, key_id=key_id)["total"]
    assert total["requests"] == 2 and total["cost_usd"] == pytest.approx(2 * COST)


def test_streamed_requests_are_budgeted_too(gw) -> None:
    _, secret = create_key(gw, budget_usd={"day": 1.5 * COST})
    client = as_key(gw, secret)
    chunks = list(client.chat.completions.create(model="m", messages=HELLO, max_tokens=10,
                                                 stream=True))
    assert chunks[-1].choices[0].finish_reason
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="m", messages=HELLO, max_tokens=10, stream=True)
    assert err.value.body["code"] == "budget_exceeded"
    assert int(err.value.response.headers["retry-after"]) <= 86400  # the day's end


async def test_concurrent_requests_never_overspend(gw) -> None:
    budget = 4.5 * RESERVATION
    key_id, secret = create_key(gw, budget_usd={"total": budget})
    client = as_key_async(gw, secret)

    async def one() -> str:
        try:
            await client.chat.completions.create(model="m", messages=HELLO, max_tokens=10)
            return "ok"
        except openai.RateLimitError as exc:
            return exc.body["code"]

    outcomes = await asyncio.gather(*(one() for _ in range(100)))
    admitted = outcomes.count("ok")
    assert set(outcomes) == {"ok", "budget_exceeded"}
    # At least what fits while all are in flight; never more than the budget covers.
    assert 4 <= admitted <= int(budget / COST)
    assert gw.sim.counters("a").requests == admitted
    total = spend(gw, key_id=key_id)["total"]
    assert total["requests"] == admitted
    assert total["cost_usd"] == pytest.approx(admitted * COST)
    assert total["cost_usd"] <= budget
    with admin(gw) as a:
        usage = a.get(f"/admin/keys/{key_id}").json()["usage"]
    assert usage["reserved_usd"] == 0  # every reservation settled
    assert usage["spent_usd"]["total"] == pytest.approx(total["cost_usd"])
