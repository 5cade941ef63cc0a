"""Hostile upstreams, through the gateway, with the official openai SDK as the client: an
event that is JSON but not a chat chunk never reaches a client. Before the first token it is a
bad answer served by the fallback; after it, the clean error event; counted either way."""

from __future__ import annotations

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tokenlane.sim.tokens import text_pieces

from .harness import MASTER_KEY, Stack
from .scripted import Scripted, chunk, pieces, scripted_then_sim

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
