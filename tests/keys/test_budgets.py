"""Budgets through the real app: refused before anything goes upstream, never overspent by
concurrent requests (reservations), settled from the provider's usage."""

from __future__ import annotations

import asyncio

import openai
import pytest

from .support import (
    HELLO,
    admin,
    as_key,
    as_key_async,
    create_key,
    keyed_stack,
    quick,
    requests,
    reservation,
    spend,
)

# Provider a: $1 / $2 per million tokens (the harness's first price). A HELLO request with
# max_tokens=10 reserves its most (an upper bound of its prompt, 10 output tokens); it really
# costs what the provider counts: 8 + 10 tokens = $28e-6.
RESERVATION = reservation(HELLO, 10)
COST = (8 * 1.0 + 10 * 2.0) / 1e6


@pytest.fixture
def gw(tmp_path):
    with keyed_stack([quick("a")], {"m": ["a"]}, str(tmp_path)) as s:
        yield s


def test_over_budget_is_refused_before_any_upstream_request(gw) -> None:
    # Room for two requests' cost and a third's reservation, not for a third's cost too.
    key_id, secret = create_key(gw, budget_usd={"total": RESERVATION + 1.5 * COST})
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
    _, secret = create_key(gw, budget_usd={"day": RESERVATION + 0.5 * COST})
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


async def test_requests_without_max_tokens_never_overspend_either(tmp_path) -> None:
    """A provider that writes long answers unless told otherwise and counts a token per
    character (4x the gateway's prompt estimate): the reservations still bound every cost,
    so 100 concurrent requests, half of them without max_tokens, half streamed, never spend
    more than the budget."""
    wordy = quick("a", output_tokens=3000, prompt_chars_per_token=1)
    reserve, price = 40, (10.0, 2.0)
    prompt = [{"role": "user", "content": "Count the words of this: " + "lorem ipsum " * 40}]
    with keyed_stack([wordy], {"m": ["a"]}, str(tmp_path), prices={"a": price},
                     keys={"reserve_output_tokens": reserve}) as s:
        budget = 4.5 * reservation(prompt, reserve, price)
        key_id, secret = create_key(s, budget_usd={"total": budget})
        client = as_key_async(s, secret)

        async def one(i: int) -> str:
            limit = {} if i % 2 else {"max_tokens": 30}
            try:
                if i % 4 < 2:
                    await client.chat.completions.create(model="m", messages=prompt, **limit)
                else:
                    stream = await client.chat.completions.create(
                        model="m", messages=prompt, stream=True, **limit)
                    async for _ in stream:
                        pass
                return "ok"
            except openai.RateLimitError as exc:
                return exc.body["code"]

        outcomes = await asyncio.gather(*(one(i) for i in range(100)))
        admitted = outcomes.count("ok")
        upstream = s.sim.counters("a").requests
        total = spend(s, key_id=key_id)["total"]
        rows = requests(s, key_id=key_id)
        with admin(s) as a:
            usage = a.get(f"/admin/keys/{key_id}").json()["usage"]
    assert set(outcomes) == {"ok", "budget_exceeded"}
    assert admitted >= 4 and upstream == admitted == total["requests"] == len(rows)
    assert total["cost_usd"] <= budget
    # The provider counted far more than the gateway's estimate of the prompt (~130 tokens)...
    assert all(r["prompt_tokens"] > 400 for r in rows)
    # ...and the answers without max_tokens were held to what was reserved for them.
    assert all(r["completion_tokens"] <= reserve for r in rows)
    assert any(r["completion_tokens"] == reserve for r in rows)
    assert usage["reserved_usd"] == 0
    assert usage["spent_usd"]["total"] == pytest.approx(total["cost_usd"])
