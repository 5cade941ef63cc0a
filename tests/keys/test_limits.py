"""The pure parts of the keys room: token buckets, budget periods, pricing from usage."""

from __future__ import annotations

import calendar

import pytest

from tokenlane.keys.buckets import TokenBucket, format_reset
from tokenlane.keys.budgets import BudgetBook, period_end, period_start
from tokenlane.keys.secrets import hash_secret, key_id_of, new_secret, secret_matches
from tokenlane.pricing import Tokens, cost_of, tokens_of
from tokenlane.types import Price

NOON = calendar.timegm((2026, 3, 31, 12, 0, 0))


def test_bucket_takes_until_empty_and_refills_per_minute() -> None:
    bucket = TokenBucket(6, now=0.0)
    for _ in range(6):
        assert bucket.can_take(1, 0.0)
        bucket.take(1, 0.0)
    assert not bucket.can_take(1, 0.0)
    assert bucket.available_in(1, 0.0) == pytest.approx(10.0)
    assert not bucket.can_take(1, 9.99)
    assert bucket.can_take(1, 10.0)
    assert bucket.full_in(10.0) == pytest.approx(50.0)
    assert bucket.remaining(1000.0) == 6  # never above capacity


def test_bucket_debt_and_refund() -> None:
    bucket = TokenBucket(1000, now=0.0)
    assert bucket.can_take(5000, 0.0)  # more than capacity passes a full bucket
    bucket.take(1200, 0.0)
    assert not bucket.can_take(1, 0.0) and bucket.remaining(0.0) == 0
    bucket.give(1200 - 300, 0.0)  # reserved 1200, used 300
    assert bucket.remaining(0.0) == 700


def test_reset_format_is_openais() -> None:
    assert [format_reset(s) for s in (0.02, 1, 59.6, 360, 3723)] == [
        "20ms", "1s", "1m0s", "6m0s", "1h2m3s"]


def test_periods_are_utc_days_and_months() -> None:
    assert period_start("day", NOON) == calendar.timegm((2026, 3, 31, 0, 0, 0))
    assert period_start("month", NOON) == calendar.timegm((2026, 3, 1, 0, 0, 0))
    assert period_end("month", NOON) == calendar.timegm((2026, 4, 1, 0, 0, 0))
    assert period_end("month", calendar.timegm((2026, 12, 5, 0, 0, 0))) == calendar.timegm(
        (2027, 1, 1, 0, 0, 0))
    assert period_start("total", NOON) == 0 and period_end("total", NOON) is None


def test_budget_counts_reservations_and_rolls_over_at_midnight() -> None:
    book = BudgetBook()
    book.load("k", {"day": 0.5, "month": 0.9, "total": 2.0}, NOON)
    limits = {"day": 1.0, "month": 10.0}
    assert book.overrun("k", limits, 0.4, NOON) is None
    book.reserve("k", 0.4, NOON)
    over = book.overrun("k", limits, 0.2, NOON)  # 0.5 + 0.4 + 0.2 > 1
    assert over is not None and over.period == "day" and over.reserved == pytest.approx(0.4)
    book.settle("k", 0.4, 0.1, NOON)  # reserved 0.4, cost 0.1
    assert book.spent("k", NOON) == pytest.approx({"day": 0.6, "month": 1.0, "total": 2.1})
    assert book.reserved("k") == 0
    tomorrow = NOON + 86400
    assert book.spent("k", tomorrow) == pytest.approx({"day": 0.0, "month": 0.0, "total": 2.1})


def test_pricing_from_usage_with_cached_and_reasoning_tokens() -> None:
    usage = {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200,
             "prompt_tokens_details": {"cached_tokens": 600},
             "completion_tokens_details": {"reasoning_tokens": 150}}
    tokens = tokens_of(usage)
    assert tokens == Tokens(prompt=1000, completion=200, cached=600, reasoning=150)
    price = Price(input=2.0, output=8.0, cached_input=0.5)
    assert cost_of(tokens, price) == pytest.approx((400 * 2.0 + 600 * 0.5 + 200 * 8.0) / 1e6)
    # No cached price configured: cached tokens are billed as input, never for free.
    assert cost_of(tokens, Price(2.0, 8.0)) == pytest.approx((1000 * 2.0 + 200 * 8.0) / 1e6)


def test_pricing_falls_back_to_counted_tokens() -> None:
    assert tokens_of(None, prompt=12, completion=3) == Tokens(12, 3)
    assert tokens_of({"prompt_tokens": True, "completion_tokens": -1}, 12, 3) == Tokens(12, 3)


def test_secrets_are_checked_by_hash() -> None:
    secret = new_secret("0123456789ab")
    assert key_id_of(secret) == "0123456789ab"
    assert secret_matches(secret, hash_secret(secret))
    assert not secret_matches(secret + "x", hash_secret(secret))
    assert hash_secret(secret) != secret and secret not in hash_secret(secret)
    for other in ("sk-0123", "tlk-short-abc", "tlk-0123456789ab-", ""):
        assert key_id_of(other) is None
