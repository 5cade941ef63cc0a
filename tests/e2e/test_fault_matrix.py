"""The fault matrix: a broken provider in front of a healthy one, the official openai SDK as
client. For every fault: what the client sees, that its text is exactly one provider's text
(or that plus one clean error), and how stats and circuit state moved."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tokenlane.clock import ManualClock
from tokenlane.sim import SimProviderSpec
from tokenlane.sim.tokens import text_pieces

from ..harness import MASTER_KEY, Stack, stack

N = 12  # tokens per healthy answer
MESSAGES = [{"role": "user", "content": "Tell me something."}]
GOOD_TEXT = "".join(text_pieces("good", N))
BAD_TEXT = "".join(text_pieces("bad", N))
FAILOVER = {"ttft_timeout_s": 1.0, "stall_timeout_s": 1.0, "deadline_s": 20.0}
CIRCUIT = {"consecutive_failures": 2, "open_s": 30.0}
# Bad's circuit after each of its first failures: two in a row open it.
OPENS_AFTER_TWO = ["closed", "open"]


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


def outcomes(s: Stack, name: str) -> dict[str, float]:
    """Attempts on provider `name`'s deployment of m, counted by outcome class (/metrics)."""
    families = text_string_to_metric_families(scrape(s))
    return {sample.labels["outcome"]: sample.value
            for family in families if family.name == "tokenlane_requests"
            for sample in family.samples
            if sample.name == "tokenlane_requests_total"
            and sample.labels["deployment"] == f"{name}/{name}-m"}


def scrape(s: Stack) -> str:
    return httpx.get(f"{s.url}/metrics", headers={"authorization": f"Bearer {MASTER_KEY}"}).text


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


def served_by(text: str | None) -> str:
    """Which provider wrote `text`, all of it (KeyError for anything else, a mix included)."""
    return {BAD_TEXT: "bad", GOOD_TEXT: "good"}[text or ""]


# Faults that strike before the first token: the client must never notice.
BEFORE_FIRST_TOKEN = {  # fault: (bad provider's spec, outcome class the gateway counts)
    "500": ({"error_rate": 1.0}, "5xx"),
    "503": ({"fault": "http_503"}, "5xx"),
    "reset before headers": ({"fault": "reset_before_headers"}, "connect"),
    "stall before first token": (
        {"fault": "stall_before_first_token", "stall_s": 30, "time_scale": 1}, "timeout"),
    "garbage before first token": (
        {"fault": "garbage_sse", "fault_after_tokens": 0}, "bad_response"),
    "error event before first token": (
        {"fault": "error_event", "fault_after_tokens": 0}, "bad_response"),
    "200 with unparsable body": ({"fault": "bad_json_200"}, "bad_response"),
    "stream ends before output": ({"fault": "truncate", "fault_after_tokens": 0}, "bad_response"),
}


@pytest.mark.parametrize("fault", list(BEFORE_FIRST_TOKEN))
def test_faults_before_the_first_token_are_invisible(fault: str) -> None:
    spec, outcome = BEFORE_FIRST_TOKEN[fault]
    with bad_then_good(**spec) as s:
        circuit = []
        for stream in (False, True, False):
            if stream:
                text, error = stream_text(s)
                assert error is None
            else:
                text = ask(s).choices[0].message.content
            assert text == GOOD_TEXT
            circuit.append(estimates(s)["bad"]["circuit"])
        # Two failures open the circuit: the third request never touched the bad provider.
        assert circuit == [*OPENS_AFTER_TWO, "open"]
        assert s.sim.counters("bad").requests == 2
        e = estimates(s)
        assert e["bad"]["error_rate"] == 1.0 and e["bad"]["samples"] == 2
        assert e["good"]["circuit"] == "closed" and e["good"]["samples"] == 3
        assert e["good"]["error_rate"] == 0.0
        assert outcomes(s, "bad") == {outcome: 2.0}
        assert outcomes(s, "good") == {"ok": 3.0}
        metrics = scrape(s)
        assert 'tokenlane_circuit_state{deployment="bad/bad-m"} 2.0' in metrics
        assert 'tokenlane_circuit_state{deployment="good/good-m"} 0.0' in metrics


def test_connection_refused_falls_back() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]  # nothing listens once this closes
    with bad_then_good(bad_url=f"http://127.0.0.1:{closed_port}/v1") as s:
        circuit = []
        for _ in range(3):
            assert ask(s).choices[0].message.content == GOOD_TEXT
            circuit.append(estimates(s)["bad"]["circuit"])
        assert circuit == [*OPENS_AFTER_TWO, "open"]
        assert outcomes(s, "bad") == {"connect": 2.0}  # the open circuit spared the third
        assert outcomes(s, "good") == {"ok": 3.0}
        assert s.sim.counters("bad").requests == 0  # the refusing address was the one tried
        e = estimates(s)
        assert e["bad"]["error_rate"] == 1.0 and e["good"]["error_rate"] == 0.0


def test_429_retry_after_opens_the_circuit_for_that_long() -> None:
    clock = ManualClock()
    with bad_then_good(clock=clock, rate_limit_rate=1.0, retry_after_s=40) as s:
        assert ask(s).choices[0].message.content == GOOD_TEXT
        # One 429 is enough (not the configured two failures): it said how long to stay away.
        assert estimates(s)["bad"]["circuit"] == "open"
        assert ask(s).choices[0].message.content == GOOD_TEXT
        assert s.sim.counters("bad").requests == 1  # open for the Retry-After
        e = estimates(s)["bad"]
        assert e["circuit"] == "open" and e["rate_limit_rate"] == 1.0 and e["error_rate"] == 1.0
        assert outcomes(s, "bad") == {"429": 1.0}
        clock.advance(39)
        assert estimates(s)["bad"]["circuit"] == "open"
        clock.advance(1)
        assert estimates(s)["bad"]["circuit"] == "half_open"
        s.sim.update("bad", rate_limit_rate=0.0)
        raw = s.openai().chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
        assert raw.headers["x-tokenlane-deployment"] == "bad/bad-m"  # the half-open trial
        assert raw.parse().choices[0].message.content == BAD_TEXT
        e = estimates(s)["bad"]
        # Recovered: the circuit closed and the outage no longer counts against it.
        assert e["circuit"] == "closed" and not e["rate_limit_rate"] and not e["error_rate"]
        assert outcomes(s, "bad") == {"429": 1.0, "ok": 1.0}


def test_every_provider_rate_limited_is_a_429_with_retry_after() -> None:
    clock = ManualClock()
    specs = [provider(n, rate_limit_rate=1.0, retry_after_s=12) for n in ("a", "b")]
    with stack(specs, {"m": ["a", "b"]}, clock=clock) as s:
        with pytest.raises(openai.RateLimitError) as err:
            ask(s)
        assert err.value.response.headers["retry-after"] == "12"
        assert "a/a-m: 429 HTTP 429" in err.value.message
        assert {e["circuit"] for e in estimates(s).values()} == {"open"}
        # While we honour their Retry-After nobody is asked, and the client still hears
        # "rate limited, come back in N s", not "service unavailable".
        clock.advance(5)
        with pytest.raises(openai.RateLimitError) as again:
            ask(s)
        assert again.value.response.headers["retry-after"] == "7"
        assert "honouring its Retry-After" in again.value.message
        assert s.sim.counters("a").requests == s.sim.counters("b").requests == 1
        assert outcomes(s, "a") == outcomes(s, "b") == {"429": 1.0}


def test_a_broken_provider_loses_traffic_and_wins_it_back() -> None:
    clock = ManualClock()
    with bad_then_good(clock=clock) as s:
        assert ask(s).choices[0].message.content == BAD_TEXT
        s.sim.update("bad", fault="http_503")
        served = [ask(s).choices[0].message.content for _ in range(6)]
        assert served == [GOOD_TEXT] * 6
        assert s.sim.counters("bad").requests == 3  # 1 healthy + 2 failures, then open
        assert estimates(s)["bad"]["circuit"] == "open"
        s.sim.update("bad", fault=None)
        clock.advance(CIRCUIT["open_s"])
        assert ask(s).choices[0].message.content == BAD_TEXT
        assert estimates(s)["bad"]["circuit"] == "closed"
        assert outcomes(s, "bad") == {"ok": 2.0, "5xx": 2.0}


# A flapper answers `flap_period` requests, fails as many with 503, and so on. Each row: who
# served the next request, and bad's circuit and error rate after it.
FLAP_PERIOD = 2
FLAP_SCRIPT = [
    ("bad", "closed", 0.0),
    ("bad", "closed", 0.0),
    ("good", "closed", 1 / 3),  # bad's first 503: one failure does not open the circuit
    ("good", "open", 2 / 4),  # the second in a row does
    ("good", "open", 2 / 4),  # bad is not asked while its circuit is open
    "cool-down",
    ("bad", "closed", None),  # the half-open trial succeeds: the outage is forgotten
    ("bad", "closed", 0.0),
    ("good", "closed", 1 / 2),  # and it flaps again
    ("good", "open", 2 / 3),
    ("good", "open", 2 / 3),
]


def test_a_flapping_provider_never_shows_an_error() -> None:
    clock = ManualClock()
    with bad_then_good(clock=clock, fault="flap", flap_period=FLAP_PERIOD) as s:
        for step in FLAP_SCRIPT:
            if step == "cool-down":
                assert estimates(s)["bad"]["circuit"] == "open"
                clock.advance(CIRCUIT["open_s"])
                assert estimates(s)["bad"]["circuit"] == "half_open"
                continue
            who, circuit, error_rate = step
            assert served_by(ask(s).choices[0].message.content) == who
            e = estimates(s)["bad"]
            assert (e["circuit"], e["error_rate"]) == (circuit, pytest.approx(error_rate))
        assert s.sim.counters("bad").requests == 8  # never while its circuit was open
        assert outcomes(s, "bad") == {"ok": 4.0, "5xx": 4.0}
        assert outcomes(s, "good") == {"ok": 6.0}


# Faults that strike after the first token: never switch, never duplicate, one clean error.
AFTER_FIRST_TOKEN = {  # fault: (bad provider's spec, outcome class the gateway counts)
    "reset after first chunk": (
        {"fault": "reset_after_first_chunk", "fault_after_tokens": 3}, "bad_response"),
    "stall mid-stream": ({"fault": "stall_mid_stream", "fault_after_tokens": 3, "stall_s": 30,
                          "time_scale": 1, "tokens_per_s": 1e6}, "stall"),
    "garbage line": ({"fault": "garbage_sse", "fault_after_tokens": 3}, "bad_response"),
    "200 then error event": ({"fault": "error_event", "fault_after_tokens": 3}, "bad_response"),
    "ends without finish or DONE": (
        {"fault": "truncate", "fault_after_tokens": 3}, "bad_response"),
}


@pytest.mark.parametrize("fault", list(AFTER_FIRST_TOKEN))
def test_faults_after_the_first_token_end_the_stream_with_one_error(fault: str) -> None:
    spec, outcome = AFTER_FIRST_TOKEN[fault]
    with bad_then_good(**spec) as s:
        text, error = stream_text(s)
        assert text == "".join(text_pieces("bad", N)[:3])  # exactly what bad sent, nothing more
        assert isinstance(error, openai.APIError)
        assert "mid-stream" in str(error) or "without a finish reason" in str(error)
        assert s.sim.counters("good").requests == 0  # no silent switch
        e = estimates(s)["bad"]
        assert e["error_rate"] == 1.0 and e["samples"] == 1
        assert e["circuit"] == OPENS_AFTER_TWO[0]
        assert outcomes(s, "bad") == {outcome: 1.0}
        # Non-streaming clients got nothing yet, so the gateway starts again elsewhere.
        assert ask(s).choices[0].message.content == GOOD_TEXT
        assert s.sim.counters("bad").requests == 2  # the same break, the second failure
        e = estimates(s)
        assert e["bad"]["circuit"] == OPENS_AFTER_TWO[1] and e["bad"]["error_rate"] == 1.0
        assert e["good"]["circuit"] == "closed" and e["good"]["error_rate"] == 0.0
        assert outcomes(s, "bad") == {outcome: 2.0}
        # Open: the next stream goes straight to good, whole.
        assert stream_text(s) == (GOOD_TEXT, None)
        assert s.sim.counters("bad").requests == 2
        assert outcomes(s, "good") == {"ok": 2.0}


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


class HeldClock(ManualClock):
    """A lockstep ManualClock the test can hold: while held, every simulated sleep waits for
    one `step()`, so a trickling stream moves one token per step and stays in flight between
    steps, however fast or slow the machine (the gateway never waits for its client)."""

    def __init__(self) -> None:
        super().__init__(lockstep=True)
        self.held = False
        self._steps = threading.Semaphore(0)

    def step(self) -> None:
        self._steps.release()

    async def sleep(self, seconds: float) -> None:
        if self.held and not await asyncio.to_thread(self._steps.acquire, timeout=10):
            raise TimeoutError("the test never stepped the held clock")
        await super().sleep(seconds)


def test_a_trickle_at_one_token_per_second_is_demoted_while_it_is_still_streaming() -> None:
    clock = HeldClock()
    # Simulated seconds cost no wall time: bad decodes at 1000 tokens/s, good at 200. (A TTFT
    # keeps the lockstep exact: the second token waits for the gateway to stamp the first.)
    specs = [provider("bad", ttft_s=0.01, time_scale=1),
             provider("good", ttft_s=0.01, tokens_per_s=200, time_scale=1)]
    with stack(specs, {"m": ["bad", "good"]}, clock=clock,
               extra={"routing": {"exploration_share": 0.0}},
               model_extra={"policy": "throughput"}) as s:
        client = s.openai(timeout=20)
        for name in ("bad", "good"):  # both measured: bad looks far faster
            client.chat.completions.create(
                model="m", messages=MESSAGES,
                extra_body={"provider": {"order": [name], "allow_fallbacks": False}})
        e = estimates(s)
        # Near, not exact: the lockstep clock lets the simulator advance once anything has read
        # the clock, so on a loaded machine a token can be stamped one step late (seen: 220).
        assert e["bad"]["decode_tps_p50"] == pytest.approx(1000, rel=0.2)
        assert e["good"]["decode_tps_p50"] == pytest.approx(200, rel=0.2)
        # 1 token per simulated second; the first comes at once (the SDK returns only once the
        # gateway sends headers, and the gateway sends them with the first token).
        s.sim.update("bad", fault="trickle", ttft_s=0)
        s.sim.update("good", time_scale=0)  # answers without sleeping, so the hold spares it
        clock.held = True
        with client.chat.completions.with_streaming_response.create(
                model="m", messages=MESSAGES, stream=True) as response:
            assert response.headers["x-tokenlane-deployment"] == "bad/bad-m"  # still the pick
            pieces = (c.choices[0].delta.content for c in response.parse()
                      if c.choices and c.choices[0].delta.content)
            got = [next(pieces)]
            for _ in range(9):  # nine more tokens in nine simulated seconds
                clock.step()
                got.append(next(pieces))
            assert "".join(got) == "".join(text_pieces("bad", N)[:10])
            live = estimates(s)["bad"]
            assert live["in_flight"] == 1 and live["live_decode_tps"] == pytest.approx(1.0)
            # Demoted before the trickle finished. (Were bad picked, that request would wait on
            # the held clock: the short timeout turns that into a failure here.)
            routed = route(client.with_options(timeout=5))
            assert routed["chosen"] == "good/good-m" and routed["why"] == "policy"
            for _ in range(N - 10):
                clock.step()
                got.append(next(pieces))
            clock.step()  # the closing chunk (finish reason), then [DONE]
            assert list(pieces) == []
        clock.held = False
        assert "".join(got) == BAD_TEXT  # all of it, from bad alone
        e = estimates(s)["bad"]
        # The finished trickle is in the stats: 11 tokens after the first in 11 s.
        assert e["decode_tps_p50"] == pytest.approx(1.0) and e["in_flight"] == 0
        # Slow is not broken: no failure counted, the circuit stays closed.
        assert e["circuit"] == "closed" and e["error_rate"] == 0.0
        assert outcomes(s, "bad") == {"ok": 2.0}
        s.sim.wait_counters("bad", lambda c: c.completed == 2 and c.errors == 0, timeout=5)


def route(client: openai.OpenAI) -> dict[str, str]:
    """How the gateway routed one request (`x-tokenlane-route`: the planner's pick, and why)."""
    raw = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    return dict(part.split("=", 1) for part in raw.headers["x-tokenlane-route"].split("; "))


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
        metrics = scrape(s)
        assert 'tokenlane_hedges_total{event="started"} 1.0' in metrics
        assert 'tokenlane_hedges_total{event="won"} 1.0' in metrics
        assert outcomes(s, "bad") == {"cancelled": 1.0}
        # A lost race is no failure: bad's circuit and error rate are untouched.
        e = estimates(s)["bad"]
        assert e["circuit"] == "closed" and not e["error_rate"]
