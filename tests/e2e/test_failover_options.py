"""Failure handling a client can steer or see: per-request overrides (in the body's `provider`
object and in the `x-tokenlane-provider` header), one deadline and one attempt budget for a
whole non-streamed request, and what the client gets back when upstreams fail. Simulated
providers on loopback, the official openai SDK as client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai
import pytest

from tokenlane.sim import SimProviderSpec
from tokenlane.sim.tokens import text_pieces

from ..harness import Stack, stack

N = 6
MESSAGES = [{"role": "user", "content": "Tell me something."}]
# Real seconds: the stall a deadline or TTFT timeout has to cut short.
STALL = {"fault": "stall_before_first_token", "stall_s": 30, "time_scale": 1}
STALL_MID = {"fault": "stall_mid_stream", "fault_after_tokens": 2, "stall_s": 30,
             "time_scale": 1, "tokens_per_s": 1e6}
# Generous model defaults, so only a request's own override can make a test finish in time.
SLOW_DEFAULTS = {"ttft_timeout_s": 20.0, "stall_timeout_s": 20.0, "deadline_s": 60.0}
CLIENT_TIMEOUT = 3.0  # an override that is ignored shows up as a client timeout


def provider(name: str, **kw: Any) -> SimProviderSpec:
    base: dict[str, Any] = {"name": name, "ttft_s": 0, "tokens_per_s": 1000, "output_tokens": N,
                            "time_scale": 0}
    base.update(kw)
    return SimProviderSpec(**base)


def text(name: str) -> str:
    return "".join(text_pieces(name, N))


@contextmanager
def providers(*specs: SimProviderSpec, **failover: Any) -> Iterator[Stack]:
    names = [s.name for s in specs]
    with stack(specs, {"m": names},
               extra={"routing": {"failover": SLOW_DEFAULTS}},
               model_extra={"policy": "order", "failover": failover}) as s:
        yield s


def create(s: Stack, way: str, options: dict[str, Any], **kw: Any) -> Any:
    """A chat completion with routing options given `way`: in the body or in the header."""
    if way == "body":
        kw["extra_body"] = {"provider": options}
    else:
        kw["extra_headers"] = {"x-tokenlane-provider": json.dumps(options)}
    client = s.openai(timeout=CLIENT_TIMEOUT)
    return client.chat.completions.create(model="m", messages=MESSAGES, **kw)


def attempts(err: openai.APIStatusError) -> list[tuple[str, str, int | None]]:
    body = err.body
    assert isinstance(body, dict)
    return [(a["deployment"], a["outcome"], a["status"]) for a in body["attempts"]]


WAYS = ["body", "header"]


# -- per-request overrides --------------------------------------------------------------------


@pytest.mark.parametrize("way", WAYS)
def test_deadline_s_ends_a_request_whose_only_deployment_stalls(way: str) -> None:
    with providers(provider("a", **STALL)) as s:
        with pytest.raises(openai.InternalServerError) as err:
            create(s, way, {"deadline_s": 0.3})
        assert err.value.status_code == 503
        assert attempts(err.value) == [("a/a-m", "timeout", None)]


@pytest.mark.parametrize("way", WAYS)
def test_max_attempts_caps_the_deployments_tried(way: str) -> None:
    specs = [provider(n, fault="http_503") for n in ("a", "b", "c")]
    with providers(*specs) as s:
        with pytest.raises(openai.InternalServerError) as err:
            create(s, way, {"max_attempts": 2})
        assert attempts(err.value) == [("a/a-m", "5xx", 503), ("b/b-m", "5xx", 503)]
        assert s.sim.counters("c").requests == 0


@pytest.mark.parametrize("way", WAYS)
def test_ttft_timeout_s_abandons_a_slow_first_token_for_the_next(way: str) -> None:
    with providers(provider("a", **STALL), provider("b")) as s:
        got = create(s, way, {"ttft_timeout_s": 0.2})
        assert got.choices[0].message.content == text("b")
        assert s.sim.counters("a").requests == 1


@pytest.mark.parametrize("way", WAYS)
def test_allow_fallbacks_false_shows_the_first_deployments_failure(way: str) -> None:
    with providers(provider("a", fault="http_503"), provider("b")) as s:
        with pytest.raises(openai.InternalServerError) as err:
            create(s, way, {"allow_fallbacks": False})
        assert attempts(err.value) == [("a/a-m", "5xx", 503)]
        assert s.sim.counters("b").requests == 0


# -- one deadline and one attempt budget for a whole non-streamed request ----------------------


def test_a_non_streamed_request_keeps_one_deadline_across_mid_stream_breaks() -> None:
    with providers(*(provider(n, **STALL_MID) for n in ("a", "b", "c"))) as s:
        with pytest.raises(openai.InternalServerError) as err:
            create(s, "body", {"deadline_s": 0.5})
        assert err.value.status_code == 503
        # The request's deadline, not a stall of the deployment (its stall_timeout is 20 s).
        assert attempts(err.value) == [("a/a-m", "deadline", None)]
        assert s.sim.counters("b").requests == s.sim.counters("c").requests == 0


def test_a_non_streamed_request_counts_every_attempt_and_reports_them_all() -> None:
    broken = provider("b", fault="reset_after_first_chunk", fault_after_tokens=2)
    with providers(provider("a", fault="http_503"), broken, provider("c")) as s:
        with pytest.raises(openai.InternalServerError) as err:
            create(s, "body", {"max_attempts": 2})
        assert err.value.status_code == 503
        assert [(d, o) for d, o, _ in attempts(err.value)] == [("a/a-m", "5xx"),
                                                               ("b/b-m", "bad_response")]
        assert s.sim.counters("c").requests == 0
        # With attempts to spare, the request starts again elsewhere and succeeds.
        assert create(s, "body", {}).choices[0].message.content == text("c")


# -- what the client gets back -----------------------------------------------------------------


def test_a_retry_after_longer_than_the_time_left_falls_back_at_once() -> None:
    limited = provider("a", rate_limit_rate=1.0, retry_after_s=30)
    with providers(limited, provider("b"), retry_same=1, deadline_s=2.0) as s:
        got = create(s, "body", {})
        assert got.choices[0].message.content == text("b")
        assert s.sim.counters("a").requests == 1


def test_a_same_deployment_retry_skips_an_open_circuit() -> None:
    failing = provider("a", fault="http_503")
    with stack([failing, provider("b")], {"m": ["a", "b"]},
               extra={"routing": {"circuit": {"consecutive_failures": 1, "open_s": 30}}},
               model_extra={"policy": "order",
                            "failover": {"retry_same": 2, "deadline_s": 60}}) as s:
        got = s.openai(timeout=CLIENT_TIMEOUT).chat.completions.create(
            model="m", messages=MESSAGES)
        assert got.choices[0].message.content == text("b")
        assert s.sim.counters("a").requests == 1


def test_upstream_usage_reaches_a_non_streamed_client_whole() -> None:
    with providers(provider("a", usage_details=True)) as s:
        got = create(s, "body", {})
    usage = got.usage
    assert usage is not None and usage.completion_tokens == N
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == N // 2
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == usage.prompt_tokens // 2


def test_an_upstream_4xx_after_failures_carries_every_attempt() -> None:
    picky = provider("b", models=["something-else"])  # 404 model_not_found for b-m
    with providers(provider("a", fault="http_503"), picky) as s:
        with pytest.raises(openai.NotFoundError) as err:
            create(s, "body", {})
        assert err.value.response.headers["x-tokenlane-deployment"] == "b/b-m"
        assert err.value.code == "model_not_found"  # the upstream's own error, unchanged
        assert attempts(err.value) == [("a/a-m", "5xx", 503), ("b/b-m", "4xx", 404)]
