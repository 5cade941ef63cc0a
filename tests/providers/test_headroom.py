"""Rate-limit headers, 429 kinds and time_info (providers.headroom), and the headroom board."""

from __future__ import annotations

from tokenlane.capacity import HeadroomBoard
from tokenlane.clock import ManualClock
from tokenlane.providers.headroom import (
    Limit,
    classify_429,
    parse_duration,
    parse_rate_limits,
    parse_time_info,
    retry_after_429,
)

CEREBRAS = {
    "x-ratelimit-limit-requests-day": "14400", "x-ratelimit-remaining-requests-day": "14370",
    "x-ratelimit-reset-requests-day": "33011.38",
    "x-ratelimit-limit-tokens-minute": "60000", "x-ratelimit-remaining-tokens-minute": "59100",
    "x-ratelimit-reset-tokens-minute": "11.38",
    "x-ratelimit-limit-requests-hour": "900", "x-ratelimit-remaining-requests-hour": "899",
    "x-ratelimit-reset-requests-hour": "2411.4", "content-type": "application/json",
}
GROQ = {
    "x-ratelimit-limit-requests": "14400", "x-ratelimit-limit-tokens": "18000",
    "x-ratelimit-remaining-requests": "14370", "x-ratelimit-remaining-tokens": "17997",
    "x-ratelimit-reset-requests": "2m59.56s", "x-ratelimit-reset-tokens": "7.66s",
}


def test_durations() -> None:
    assert parse_duration("2m59.56s") == 179.56
    assert parse_duration("7.66s") == 7.66 and parse_duration("250ms") == 0.25
    assert parse_duration("1h2m") == 3720 and parse_duration("11.38") == 11.38
    assert parse_duration("soon") is None and parse_duration("5x") is None
    assert parse_duration("-1") is None


def test_both_header_styles() -> None:
    assert parse_rate_limits(CEREBRAS) == (
        Limit("requests", "day", 14400, 14370, 33011.38),
        Limit("requests", "hour", 900, 899, 2411.4),
        Limit("tokens", "minute", 60000, 59100, 11.38),
    )
    assert parse_rate_limits(list(GROQ.items())) == (
        Limit("requests", "", 14400, 14370, 179.56), Limit("tokens", "", 18000, 17997, 7.66))
    assert parse_rate_limits({"x-ratelimit-remaining-tokens-week": "1",
                              "x-ratelimit-bogus": "1"}) == ()


def test_cerebras_429_kinds() -> None:
    quota = {"message": "Tokens per minute limit exceeded - too many tokens processed.",
             "type": "too_many_tokens_error", "param": "quota", "code": "token_quota_exceeded"}
    queue = {"message": "We're experiencing high traffic right now! Please try again soon.",
             "type": "too_many_requests_error", "param": "queue", "code": "queue_exceeded"}
    assert classify_429(quota) == "quota" and classify_429({"error": quota}) == "quota"
    assert classify_429(queue) == "capacity" and classify_429(None) == "quota"
    spent = [Limit("tokens", "minute", 60000, 0, 11.5), Limit("requests", "day", 10, 5, 900)]
    assert retry_after_429("quota", None, spent) == 11.5  # the exhausted window's reset
    assert retry_after_429("quota", 30, spent) == 30
    assert retry_after_429("capacity", 30, spent) == 1.0  # fail over now, back soon


def test_time_info() -> None:
    info = parse_time_info({"time_info": {"queue_time": 0.0004, "prompt_time": 0.002,
                                          "completion_time": 0.05, "total_time": 0.06,
                                          "created": 1}})
    assert info is not None and (info.queue_s, info.total_s) == (0.0004, 0.06)
    assert parse_time_info({"usage": {}}) is None
    assert parse_time_info({"time_info": {"queue_time": "x"}}) is None


def test_board_routes_away_before_the_429_and_back_after_the_reset() -> None:
    clock = ManualClock()
    board = HeadroomBoard(clock)
    board.observe("c/m", parse_rate_limits({"x-ratelimit-remaining-tokens-minute": "500",
                                            "x-ratelimit-reset-tokens-minute": "10"}))
    assert board.why_not("c/m", 400) is None
    why = board.why_not("c/m", 1200)
    assert why is not None and "tokens/minute 500 left, needs 1200" in why
    assert board.no_room(["c/m", "other/m"], 1200) == {"c/m": why}
    clock.advance(10)
    assert board.why_not("c/m", 1200) is None  # the window reset: full until told otherwise
    board.exhausted("c/m", 5)
    assert "no headroom" in (board.why_not("c/m", 1) or "")
    clock.advance(5)
    assert board.why_not("c/m", 1) is None
    board.unavailable("c/m", "model unavailable upstream (404)", 300)
    assert (board.why_not("c/m", 1) or "").startswith("model unavailable upstream (404)")
    board.available("c/m")
    assert board.why_not("c/m", 1) is None
