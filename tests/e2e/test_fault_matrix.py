"""The fault matrix: a broken provider in front of a healthy one, the official openai SDK as
client. For every fault: what the client sees, that its text is exactly one provider's text
(or that plus one clean error), and how stats and circuit state moved."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import openai
import pytest

from tokenlane.clock import ManualClock
from tokenlane.sim import SimProviderSpec
from tokenlane.sim.tokens import text_pieces

from ..harness import MASTER_KEY, Stack, stack

N = 12  # tokens per healthy answer
MESSAGES = [{"role": "user", "content": "Tell me something."}]
GOOD_TEXT = "".join(text_pieces("good", N))
FAILOVER = {"ttft_timeout_s": 1.0, "stall_timeout_s": 1.0, "deadline_s": 20.0}
CIRCUIT = {"consecutive_failures": 2, "open_s": 30.0}


def provider(name: str, **kw: object) -> SimProviderSpec:
    base: dict[str, object] = {"name": name, "ttft_s": 0, "tokens_per_s": 1000, "output_tokens": N,
                                   "time_scale": 0}
    base.update(kw)
    return SimProviderSpec(**base)  # type: ignore[arg-type]


@contextmanager
def bad_then_good(
    clock: ManualClock | None = None, bad_url: str | None = None, **fault: object
) -> Iterator[Stack]:
    specs = [provider("bad", **fault), provider("good")]
    extra: dict[str, dict] = {"routing": {"circuit": CIRCUIT, "failover": FAILOVER}}
    if bad_url:
        extra["providers"] = {"bad": {"base_url": bad_url}}
    with stack(specs, {"m": ["bad", "good"]}, clock=clock, extra=extra,
               model_extra={"policy": "order"}) as s:
        yield s


def estimates(s: Stack) -> dict[str, dict]:
    report = httpx.get(f"{s.url}/v1/router/stats",
                       headers={"authorization": f"Bearer {MASTER_KEY}"}).json()
    return {d["provider"]: d for d in report["models"]["m"]["deployments"]}


def ask(s: Stack) -> openai.types.chat.ChatCompletion:
    return s.openai().chat.completions.create(model="m", messages=MESSAGES)


def stream_text(s: Stack) -> tuple[str, Exception | None]:
    text, error = [], None
    try:
        for chunk in s.openai().chat.completions.create(model="m", messages=MESSAGES,
                                                        stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                text.append(chunk.choices[0].delta.content)
    except openai.APIError as exc:
        error = exc
    return "".join(text), error


# Faults that strike before the first token: the client must never notice.
BEFORE_FIRST_TOKEN = {
    "500": {"error_rate": 1.0},
    "503": {"fault": "http_503"},
    "reset before headers": {"fault": "reset_before_headers"},
    "stall before first token": {"fault": "stall_before_first_token", "stall_s": 30, "time_scale": 1},
    "garbage before first token": {"fault": "garbage_sse", "fault_after_tokens": 0},
    "error event before first token": {"fault": "error_event", "fault_after_tokens": 0},
    "200 with unparsable body": {"fault": "bad_json_200"},
    "stream ends before output": {"fault": "truncate", "fault_after_tokens": 0},
}
OUTCOMES = {"500": "5xx", "503": "5xx", "stall before first token": "timeout"}


@pytest.mark.parametrize("fault", list(BEFORE_FIRST_TOKEN))
def test_faults_before_the_first_token_are_invisible(fault: str) -> None:
    with bad_then_good(**BEFORE_FIRST_TOKEN[fault]) as s:
        for stream in (False, True, False):
            if stream:
                text, error = stream_text(s)
                assert error is None
            else:
                text = ask(s).choices[0].message.content
            assert text == GOOD_TEXT
        bad = s.sim.counters("bad")
        # Two failures open the circuit: the third request never touched the bad provider.
        assert bad.requests == 2
        e = estimates(s)
        assert e["bad"]["circuit"] == "open" and e["bad"]["error_rate"] == 1.0
        assert e["good"]["circuit"] == "closed" and e["good"]["samples"] == 3
        metrics = httpx.get(f"{s.url}/metrics").text
        outcome = OUTCOMES.get(fault, "bad_response" if "reset" not in fault else "connect")
        assert f'deployment="bad/bad-m",model="m",outcome="{outcome}"}} 2.0' in metrics
        assert 'tokenlane_circuit_state{deployment="bad/bad-m"} 2.0' in metrics


def test_connection_refused_falls_back() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]  # nothing listens once this closes
    with bad_then_good(bad_url=f"http://127.0.0.1:{closed_port}/v1") as s:
        assert ask(s).choices[0].message.content == GOOD_TEXT
        assert estimates(s)["bad"]["error_rate"] == 1.0


def test_429_retry_after_opens_the_circuit_for_that_long() -> None:
    clock = ManualClock()
    with bad_then_good(clock=clock, rate_limit_rate=1.0, retry_after_s=40) as s:
        assert ask(s).choices[0].message.content == GOOD_TEXT
        assert ask(s).choices[0].message.content == GOOD_TEXT
        assert s.sim.counters("bad").requests == 1  # open for the Retry-After
        e = estimates(s)["bad"]
        assert e["circuit"] == "open" and e["rate_limit_rate"] == 1.0
        clock.advance(40)
        s.sim.update("bad", rate_limit_rate=0.0)
        raw = s.openai().chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
        assert raw.headers["x-tokenlane-deployment"] == "bad/bad-m"  # the half-open trial
        assert estimates(s)["bad"]["circuit"] == "closed"


def test_every_provider_rate_limited_is_a_429_with_retry_after() -> None:
    clock = ManualClock()
    specs = [provider(n, rate_limit_rate=1.0, retry_after_s=12) for n in ("a", "b")]
    with stack(specs, {"m": ["a", "b"]}, clock=clock) as s:
        with pytest.raises(openai.RateLimitError) as err:
            ask(s)
        assert err.value.response.headers["retry-after"] == "12"
        assert "a/a-m: 429 HTTP 429" in err.value.message
        # While we honour their Retry-After nobody is asked, and the client still hears
        # "rate limited, come back in N s", not "service unavailable".
        clock.advance(5)
        with pytest.raises(openai.RateLimitError) as again:
            ask(s)
        assert again.value.response.headers["retry-after"] == "7"
        assert "honouring its Retry-After" in again.value.message
        assert s.sim.counters("a").requests == s.sim.counters("b").requests == 1


def test_a_broken_provider_loses_traffic_and_wins_it_back() -> None:
    clock = ManualClock()
    with bad_then_good(clock=clock) as s:
        assert ask(s).choices[0].message.content == "".join(text_pieces("bad", N))
        s.sim.update("bad", fault="http_503")
        served = [ask(s).choices[0].message.content for _ in range(6)]
        assert served == [GOOD_TEXT] * 6
        assert s.sim.counters("bad").requests == 3  # 1 healthy + 2 failures, then open
        s.sim.update("bad", fault=None)
        clock.advance(CIRCUIT["open_s"])
        assert ask(s).choices[0].message.content == "".join(text_pieces("bad", N))
        assert estimates(s)["bad"]["circuit"] == "closed"


def test_a_flapping_provider_never_shows_an_error() -> None:
    with bad_then_good(fault="flap", flap_period=2) as s:
        texts = {ask(s).choices[0].message.content for _ in range(10)}
    assert texts <= {GOOD_TEXT, "".join(text_pieces("bad", N))}


# Faults that strike after the first token: never switch, never duplicate, one clean error.
AFTER_FIRST_TOKEN = {
    "reset after first chunk": {"fault": "reset_after_first_chunk", "fault_after_tokens": 3},
    "stall mid-stream": {"fault": "stall_mid_stream", "fault_after_tokens": 3, "stall_s": 30,
                             "time_scale": 1, "tokens_per_s": 1e6},
    "garbage line": {"fault": "garbage_sse", "fault_after_tokens": 3},
    "200 then error event": {"fault": "error_event", "fault_after_tokens": 3},
    "ends without finish or DONE": {"fault": "truncate", "fault_after_tokens": 3},
}


@pytest.mark.parametrize("fault", list(AFTER_FIRST_TOKEN))
def test_faults_after_the_first_token_end_the_stream_with_one_error(fault: str) -> None:
    with bad_then_good(**AFTER_FIRST_TOKEN[fault]) as s:
        text, error = stream_text(s)
        assert text == "".join(text_pieces("bad", N)[:3])  # exactly what bad sent, nothing more
        assert isinstance(error, openai.APIError)
        assert "mid-stream" in str(error) or "without a finish reason" in str(error)
        assert s.sim.counters("good").requests == 0  # no silent switch
        e = estimates(s)["bad"]
        assert e["error_rate"] == 1.0 and e["samples"] == 1
        # Non-streaming clients got nothing yet, so the gateway starts again elsewhere.
        assert ask(s).choices[0].message.content == GOOD_TEXT


def test_mid_stream_error_event_is_one_openai_error_and_then_the_end() -> None:
    with bad_then_good(fault="error_event", fault_after_tokens=2) as s:
        body = {"model": "m", "messages": MESSAGES, "stream": True}
        with httpx.stream("POST", f"{s.url}/v1/chat/completions", json=body,
                          headers={"authorization": f"Bearer {MASTER_KEY}"}) as r:
            events = [line for line in r.iter_lines() if line]
    assert events[-1].startswith('data: {"error":')
    assert '"code":"upstream_stream_broken"' in events[-1]
    assert "[DONE]" not in "".join(events)
    assert sum('"error"' in e for e in events) == 1


def test_a_trickle_is_demoted_while_it_is_still_streaming() -> None:
    specs = [provider("bad"), provider("good", tokens_per_s=200, time_scale=1)]
    with stack(specs, {"m": ["bad", "good"]},
               extra={"routing": {"exploration_share": 0.0}},
               model_extra={"policy": "throughput"}) as s:
        client = s.openai()
        for name in ("bad", "good"):  # both measured: bad looks far faster
            client.chat.completions.create(
                model="m", messages=MESSAGES,
                extra_body={"provider": {"order": [name], "allow_fallbacks": False}})
        assert chosen(client) == "bad"
        s.sim.update("bad", fault="trickle", time_scale=0.1, output_tokens=200)  # 10 tokens/s
        slow = client.chat.completions.create(
            model="m", messages=MESSAGES, stream=True,
            extra_body={"provider": {"order": ["bad"], "allow_fallbacks": False}})
        pieces = iter(slow)
        got = [next(pieces) for _ in range(12)]  # ~1 s into a 20 s answer
        assert got
        assert chosen(client) == "good"  # demoted before the trickle finished
        slow.close()


def chosen(client: openai.OpenAI) -> str:
    raw = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    return raw.headers["x-tokenlane-deployment"].split("/")[0]


def test_hedging_races_a_slow_first_token_and_records_both() -> None:
    specs = [provider("bad", fault="stall_before_first_token", stall_s=30, time_scale=1),
             provider("good")]
    with stack(specs, {"m": ["bad", "good"]},
               extra={"routing": {"hedge_budget": 1.0}},
               model_extra={"policy": "order",
                            "failover": {"hedge": True, "hedge_delay_s": 0.2,
                                         "ttft_timeout_s": 10}}) as s:
        raw = s.openai().chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
        assert raw.headers["x-tokenlane-deployment"] == "good/good-m"
        assert raw.parse().choices[0].message.content == GOOD_TEXT
        s.sim.wait_counters("bad", lambda c: c.disconnected == 1, timeout=10)  # loser cancelled
        metrics = httpx.get(f"{s.url}/metrics").text
        assert 'tokenlane_hedges_total{event="started"} 1.0' in metrics
        assert 'tokenlane_hedges_total{event="won"} 1.0' in metrics
        assert 'deployment="bad/bad-m",model="m",outcome="cancelled"} 1.0' in metrics
