"""Hostile upstreams, through the gateway, with the official openai SDK as the client: an
event that is JSON but not a chat chunk never reaches a client. Before the first token it is a
bad answer served by the fallback; after it, the clean error event; counted either way."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import openai
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tokenlane.sim.tokens import text_pieces

from .contract import validate_error
from .harness import MASTER_KEY, Stack, stack
from .loopback import http_app, serve
from .scripted import GOOD, Scripted, chunk, endless, pieces, scripted_then_sim

MESSAGES = [{"role": "user", "content": "Hi"}]
GOOD_TEXT = "".join(text_pieces("good", 8))
ROLE = chunk({"role": "assistant", "content": ""})
DONE = b"data: [DONE]\n\n"

NOT_A_CHUNK = {
    "no choices": b'data: {"hello": "world"}\n\n',
    "content is a number": chunk({"content": 12345}),
    "usage counts are words": chunk(
        {"content": "x"}, usage={"prompt_tokens": "five", "completion_tokens": 1,
                                 "total_tokens": 6}),
    "role is a number": chunk({"role": 7, "content": "x"}),
    "tool call name is a list": chunk(
        {"tool_calls": [{"index": 0, "id": "c", "type": "function",
                         "function": {"name": ["f"], "arguments": ""}}]}),
    "tool call arguments are an object": chunk(
        {"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": {"a": 1}}}]}),
    "finish reason is a number": chunk({"content": "x"}, finish=3),  # type: ignore[arg-type]
    "id is an object": chunk({"content": "x"}, id={"a": 1}),
    "usage counts are booleans": chunk(
        {"content": "x"}, usage={"prompt_tokens": True, "completion_tokens": 1,
                                 "total_tokens": 2}),
}


def bad_answers(s: Stack) -> float:
    families = text_string_to_metric_families(
        httpx.get(f"{s.url}/metrics", headers={"authorization": f"Bearer {MASTER_KEY}"}).text)
    return sum(sample.value for family in families if family.name == "tokenlane_requests"
               for sample in family.samples
               if sample.name == "tokenlane_requests_total"
               and sample.labels["deployment"] == "bad/bad-m"
               and sample.labels["outcome"] == "bad_response")


@pytest.fixture(params=list(NOT_A_CHUNK))
def event(request: pytest.FixtureRequest) -> bytes:
    return NOT_A_CHUNK[request.param]


def test_before_the_first_token_the_fallback_serves(event: bytes) -> None:
    upstream = Scripted(pieces(ROLE, event, chunk({"content": "late"}, finish="stop"), DONE))
    with scripted_then_sim(upstream) as s:
        reply = s.openai().chat.completions.create(model="m", messages=MESSAGES)
        assert reply.choices[0].message.content == GOOD_TEXT
        text = "".join(c.choices[0].delta.content or "" for c in s.openai().chat.completions
                       .create(model="m", messages=MESSAGES, stream=True) if c.choices)
        assert text == GOOD_TEXT
        assert upstream.requests == 2
        assert bad_answers(s) == 2


def test_after_the_first_token_the_stream_ends_with_one_error_event(event: bytes) -> None:
    upstream = Scripted(pieces(ROLE, chunk({"content": "Hello"}), event,
                               chunk({"content": " world"}, finish="stop"), DONE))
    with scripted_then_sim(upstream) as s:
        seen: list[str] = []
        stream = s.openai().chat.completions.create(model="m", messages=MESSAGES, stream=True)
        with pytest.raises(openai.APIError, match="failed mid-stream"):
            for c in stream:
                # Every chunk the client gets is well-formed: the SDK's own types hold.
                assert c.choices is not None
                seen.extend(ch.delta.content for ch in c.choices if ch.delta.content)
        assert seen == ["Hello"]
        # Not streamed to the client: nothing was sent, so the fallback answers in full.
        reply = s.openai().chat.completions.create(model="m", messages=MESSAGES)
        assert reply.choices[0].message.content == GOOD_TEXT
        assert bad_answers(s) == 2


HUGE_HEAD = (ROLE, b'data: {"choices":[{"index":0,"delta":{"content":"')
FILLER = b"x" * 16384
HUGE_EVENTS = {
    "a 5 MB event": pieces(*HUGE_HEAD, *[FILLER] * 320, b'"}}]}\n\n', DONE),
    "an event that never ends": endless(HUGE_HEAD, FILLER, limit=200_000_000),
}


@pytest.mark.parametrize("kind", list(HUGE_EVENTS))
def test_a_huge_event_is_a_bad_answer_and_blocks_nobody(kind: str) -> None:
    """While one upstream sends an event of megabytes, another request's latency must not
    move: the decoder is linear and stops at `max_event_bytes` (a bad answer, so the
    fallback serves)."""
    upstream = Scripted(HUGE_EVENTS[kind])
    failover = {"routing": {"failover": {"ttft_timeout_s": 5.0}}}
    with scripted_then_sim(upstream, extra=failover) as s:
        result: dict[str, object] = {}

        def hostile() -> None:
            result["reply"] = s.openai().chat.completions.create(model="m", messages=MESSAGES)

        worker = threading.Thread(target=hostile)
        latencies = []
        with httpx.Client(base_url=s.url) as probe:
            probe.get("/healthz")  # connected before the clock starts
            worker.start()
            for _ in range(500):  # bounded: at most 500 probes
                start = time.perf_counter()
                assert probe.get("/healthz").status_code == 200
                latencies.append(time.perf_counter() - start)
                if not worker.is_alive():
                    break
        worker.join(timeout=30)
        reply = result["reply"]
        assert reply.choices[0].message.content == GOOD_TEXT  # type: ignore[attr-defined]
        # The quadratic decoder held the loop for seconds at a time; a linear one answers
        # every probe at once (the bound leaves room for a busy machine's scheduling).
        assert max(latencies) < 1.0, sorted(latencies)[-5:]
        assert sorted(latencies)[len(latencies) // 2] < 0.05, sorted(latencies)[-5:]
        assert bad_answers(s) == 1


def test_the_event_cap_is_configured_per_provider() -> None:
    big = chunk({"content": "y" * 8000}, finish="stop")
    upstream = Scripted(pieces(ROLE, big, DONE))
    with scripted_then_sim(upstream) as s:  # the default cap (1 MiB) lets 8 kB through
        assert s.openai().chat.completions.create(
            model="m", messages=MESSAGES).choices[0].message.content == "y" * 8000
    capped = {"providers": {"bad": {"max_event_bytes": 4096}}}
    with serve(upstream.app) as url:
        capped["providers"]["bad"]["base_url"] = f"{url}/v1"
        with stack([GOOD], {"m": ["bad", "good"]}, extra=capped,
                   model_extra={"policy": "order"}) as s:
            assert s.openai().chat.completions.create(
                model="m", messages=MESSAGES).choices[0].message.content == GOOD_TEXT
            assert bad_answers(s) == 1


def _refusing(error: dict[str, object]):
    """An upstream answering every request 400 with `error` as its error object."""

    async def answer(scope: dict[str, object], body: bytes, send: Any) -> None:
        data = b'{"error": ' + error_json(error) + b"}"
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": data})

    return http_app(answer)


def _passed_back(error: dict[str, object]) -> Any:
    """The body a client gets through the gateway from an upstream refusing with `error`."""
    with serve(_refusing(error)) as url:
        extra = {"providers": {"bad": {"base_url": f"{url}/v1"}}}
        with stack([GOOD], {"m": ["bad"]}, extra=extra) as s, \
                pytest.raises(openai.BadRequestError) as err:
            s.openai().chat.completions.create(model="m", messages=MESSAGES)
    return err.value.response.json()


def error_json(error: dict[str, object]) -> bytes:
    # Written by hand: orjson, like the gateway, refuses to write what nests this deep.
    parts = [b'"%s": %s' % (k.encode(), v if isinstance(v, bytes) else orjson.dumps(v))
             for k, v in error.items()]
    return b"{" + b", ".join(parts) + b"}"


DEEP = b"[" * 300 + b"]" * 300


@pytest.mark.parametrize("field", ["param", "code", "type", "message"])
def test_an_upstream_4xx_with_a_deeply_nested_field_is_passed_back_as_text_or_null(
        field: str) -> None:
    error: dict[str, object] = {"message": "bad value", "type": "invalid_request_error",
                                "param": "temperature", "code": "invalid_value", field: DEEP}
    body = _passed_back(error)
    validate_error(body)
    got = body["error"]
    kept = {k: v for k, v in error.items() if k != field}
    assert {k: got[k] for k in kept} == kept  # the rest is the upstream's, unchanged
    # Only a string (or null) is copied; anything else is not the spec's type.
    assert got[field] == {"message": "upstream returned HTTP 400",
                          "type": "invalid_request_error"}.get(field)


def test_an_upstream_4xx_param_too_long_is_cut() -> None:
    error: dict[str, object] = {"message": "bad", "type": "invalid_request_error",
                                "param": "p" * 100_000, "code": None}
    param = _passed_back(error)["error"]["param"]
    assert param.startswith("ppp") and len(param) <= 256
