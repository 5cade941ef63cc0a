"""Planning a reply: validation, timing, limits, injected failures, forced tool calls."""

from __future__ import annotations

import json
from random import Random
from typing import Any

import pytest

from tokenlane.sim import SimProviderSpec
from tokenlane.sim.plan import Completion, Failure, Reply, plan_reply

from .support import HELLO, WEATHER_TOOL


def spec(**fields: Any) -> SimProviderSpec:
    return SimProviderSpec(name="p", **fields)


def plan(body: Any, rng: Random | None = None, **fields: Any) -> Reply:
    return plan_reply(spec(**fields), body, rng or Random(0))


def completion(body: Any, **fields: Any) -> Completion:
    reply = plan(body, **fields)
    assert isinstance(reply, Completion), reply
    return reply


def test_timing_is_ttft_then_one_step_per_token_and_a_closing_step() -> None:
    reply = completion(
        {"model": "m", "messages": HELLO}, ttft_s=2, tokens_per_s=10, output_tokens=20
    )
    assert reply.delays[0] == 2
    assert reply.delays[1:] == (0.1,) * 20
    assert reply.total_delay == pytest.approx(4.0)


def test_ttft_grows_with_prompt_length_and_everything_scales() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x" * 3988}]}  # 1000 tokens
    reply = completion(body, ttft_s=0.5, ttft_per_1k_prompt_tokens_s=1.0, time_scale=0.5)
    assert reply.prompt_tokens == 1000
    assert reply.delays[0] == pytest.approx(0.75)
    assert reply.delays[1] == pytest.approx(0.5 / 100)


def test_zero_time_scale_means_no_delay_at_all() -> None:
    reply = completion({"model": "m", "messages": HELLO}, time_scale=0, jitter=0.5)
    assert set(reply.delays) == {0.0}


def test_jitter_stays_in_bounds_and_is_reproducible() -> None:
    body = {"model": "m", "messages": HELLO}
    first = plan_reply(spec(jitter=0.2, ttft_s=1.0, tokens_per_s=10), body, Random(7))
    again = plan_reply(spec(jitter=0.2, ttft_s=1.0, tokens_per_s=10), body, Random(7))
    assert isinstance(first, Completion) and isinstance(again, Completion)
    assert first.delays == again.delays
    assert 0.8 <= first.delays[0] <= 1.2
    assert all(0.08 <= d <= 0.12 for d in first.delays[1:])
    assert len(set(first.delays[1:])) > 1


def test_token_limit_truncates_with_finish_reason_length() -> None:
    body = {"model": "m", "messages": HELLO, "max_tokens": 5}
    reply = completion(body, output_tokens=64)
    assert (reply.completion_tokens, len(reply.pieces), reply.finish_reason) == (5, 5, "length")
    roomy = completion({**body, "max_tokens": 100}, output_tokens=64)
    assert (roomy.completion_tokens, roomy.finish_reason) == (64, "stop")


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    body = {"model": "m", "messages": HELLO, "max_tokens": 50, "max_completion_tokens": 3}
    assert completion(body).completion_tokens == 3


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], None),
        ({"messages": HELLO}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": HELLO, "max_tokens": 0}, "max_tokens"),
        ({"model": "m", "messages": HELLO, "max_tokens": "9"}, "max_tokens"),
        ({"model": "m", "messages": HELLO, "max_completion_tokens": True}, "max_completion_tokens"),
    ],
)
def test_malformed_requests_are_400s(body: Any, param: str | None) -> None:
    reply = plan(body)
    assert isinstance(reply, Failure)
    assert (reply.status, reply.type, reply.param) == (400, "invalid_request_error", param)


def test_unknown_model_is_404_model_not_found() -> None:
    reply = plan({"model": "other", "messages": HELLO}, models=["llama"])
    assert isinstance(reply, Failure)
    assert (reply.status, reply.param, reply.code) == (404, "model", "model_not_found")
    assert isinstance(plan({"model": "llama", "messages": HELLO}, models=["llama"]), Completion)


def test_failure_shares_follow_the_rates_and_the_seed() -> None:
    body = {"model": "m", "messages": HELLO}
    flaky = spec(error_rate=0.2, rate_limit_rate=0.3, retry_after_s=2.5, seed=42)
    rng = Random(flaky.seed)
    replies = [plan_reply(flaky, body, rng) for _ in range(2000)]
    statuses = [r.status if isinstance(r, Failure) else 200 for r in replies]
    assert 0.15 < statuses.count(500) / 2000 < 0.25
    assert 0.25 < statuses.count(429) / 2000 < 0.35
    rng_again = Random(flaky.seed)
    assert statuses == [
        r.status if isinstance(r, Failure) else 200
        for r in (plan_reply(flaky, body, rng_again) for _ in range(2000))
    ]
    limited = next(r for r in replies if isinstance(r, Failure) and r.status == 429)
    assert (limited.type, limited.code) == ("requests", "rate_limit_exceeded")
    assert dict(limited.headers) == {"retry-after": "2.5", "retry-after-ms": "2500"}


def test_forced_tool_call_arguments_follow_the_schema() -> None:
    body = {"model": "m", "messages": HELLO, "tools": [WEATHER_TOOL], "tool_choice": "required"}
    reply = completion(body)
    assert reply.tool_call is not None and reply.tool_call.name == "get_weather"
    assert json.loads(reply.tool_call.arguments) == {
        "city": "example",
        "unit": "celsius",
        "days": 1,
    }
    assert reply.finish_reason == "tool_calls"
    assert reply.completion_tokens == 1 + len(reply.pieces)
    assert "".join(reply.pieces) == reply.tool_call.arguments


def test_tool_choice_by_name_picks_that_function() -> None:
    other = {"type": "function", "function": {"name": "noop"}}
    choice = {"type": "function", "function": {"name": "get_weather"}}
    body = {"model": "m", "messages": HELLO, "tools": [other, WEATHER_TOOL], "tool_choice": choice}
    reply = completion(body)
    assert reply.tool_call is not None and reply.tool_call.name == "get_weather"
    missing = {**body, "tool_choice": {"type": "function", "function": {"name": "nope"}}}
    failure = plan(missing)
    assert isinstance(failure, Failure) and failure.param == "tool_choice"


@pytest.mark.parametrize("choice", [None, "auto", "none"])
def test_unforced_tools_get_a_text_answer(choice: str | None) -> None:
    body = {"model": "m", "messages": HELLO, "tools": [WEATHER_TOOL], "tool_choice": choice}
    reply = completion(body)
    assert reply.tool_call is None and reply.finish_reason == "stop"


def test_tool_call_cut_by_the_token_limit() -> None:
    body = {
        "model": "m",
        "messages": HELLO,
        "tools": [WEATHER_TOOL],
        "tool_choice": "required",
        "max_tokens": 3,
    }
    reply = completion(body)
    assert reply.completion_tokens == 3 and len(reply.pieces) == 2
    assert reply.finish_reason == "length"


def test_stream_flags() -> None:
    base = {"model": "m", "messages": HELLO}
    assert not completion(base).stream
    streamed = completion({**base, "stream": True, "stream_options": {"include_usage": True}})
    assert streamed.stream and streamed.include_usage
    # include_usage only means something on a stream.
    assert not completion({**base, "stream_options": {"include_usage": True}}).include_usage
