"""rpm and tpm limits under concurrency, on a frozen clock: exact, with OpenAI's headers."""

from __future__ import annotations

import asyncio

import openai
import pytest

from tokenlane.clock import ManualClock

from .support import HELLO, as_key, as_key_async, create_key, keyed_stack, quick


@pytest.fixture
def clocked(tmp_path):
    clock = ManualClock()
    with keyed_stack([quick("a")], {"m": ["a"]}, str(tmp_path), clock=clock) as s:
        yield s, clock


async def _burst(client: openai.AsyncOpenAI, n: int, **kwargs) -> list[object]:
    async def one() -> object:
        try:
            return await client.chat.completions.with_raw_response.create(
                model="m", messages=HELLO, max_tokens=10, **kwargs)
        except openai.RateLimitError as exc:
            return exc

    return await asyncio.gather(*(one() for _ in range(n)))


def _split(results: list[object]) -> tuple[list, list[openai.RateLimitError]]:
    """(served, refused)"""
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    return [r for r in results if not isinstance(r, openai.RateLimitError)], refused


async def test_rpm_is_exact_under_concurrency(clocked) -> None:
    s, clock = clocked
    _, secret = create_key(s, rpm=5)
    served, refused = _split(await _burst(as_key_async(s, secret), 40))
    assert len(served) == 5 and len(refused) == 35
    assert s.sim.counters("a").requests == 5
    for exc in refused:
        assert exc.body["code"] == "rate_limit_exceeded" and exc.body["type"] == "requests"
        headers = exc.response.headers
        assert headers["x-ratelimit-limit-requests"] == "5"
        assert headers["x-ratelimit-remaining-requests"] == "0"
        assert headers["x-ratelimit-reset-requests"] == "1m0s"
        assert headers["retry-after"] == "12"  # one request back every 60/5 s
    remaining = sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in served)
    assert remaining == [0, 1, 2, 3, 4]
    clock.advance(12)  # exactly one request's worth refills
    served, _ = _split(await _burst(as_key_async(s, secret), 3))
    assert len(served) == 1


async def test_tpm_holds_and_settles_from_usage(clocked) -> None:
    s, _ = clocked
    # Each request reserves 9 + 10 tokens and really uses 8 + 10 (the provider's count).
    _, secret = create_key(s, tpm=100)
    served, refused = _split(await _burst(as_key_async(s, secret), 20))
    assert len(served) == 5  # 5 x 19 reserved of 100; a sixth does not fit
    assert {e.body["type"] for e in refused} == {"tokens"}
    assert refused[0].response.headers["x-ratelimit-limit-tokens"] == "100"
    # Settled from usage: 5 x 18 used, so 10 tokens left, not 5.
    response = await as_key_async(s, secret).chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "Hi"}], max_tokens=1)
    assert response.headers["x-ratelimit-remaining-tokens"] == str(100 - 5 * 18 - (4 + 1))


def test_unlimited_key_gets_no_rate_headers(clocked) -> None:
    s, _ = clocked
    _, secret = create_key(s)
    raw = as_key(s, secret).chat.completions.with_raw_response.create(model="m", messages=HELLO)
    assert not [h for h in raw.headers if h.startswith("x-ratelimit")]
