"""The gateway in front of two real llama.cpp servers, through the official openai SDK.

Greedy decoding (temperature 0) makes each answer repeatable, so what one request says can be
checked against another: `stop` cuts the same text where the stop string first appears.
"""

from __future__ import annotations

import httpx
import openai
import pytest

from ..contract import validate_chat_chunk, validate_chat_completion
from .servers import CONTEXT, MODEL, RealStack, real_stack

MESSAGES = [{"role": "user", "content": "List five colours, separated by commas."}]
GREEDY = {"temperature": 0, "seed": 1}


@pytest.fixture(scope="module")
def real() -> RealStack:
    with real_stack() as s:
        yield s


def test_non_streaming_answer_and_usage(real: RealStack) -> None:
    raw = real.openai().chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES, max_tokens=12, **GREEDY)
    reply = raw.parse()
    assert raw.headers["x-tokenlane-deployment"] in {"alpha/smollm2", "beta/smollm2"}
    assert reply.choices[0].message.content
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage is not None and reply.usage.prompt_tokens > 0
    assert 0 < reply.usage.completion_tokens <= 12
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    validate_chat_completion(raw.http_response.json())


def test_streaming_answer_and_usage(real: RealStack) -> None:
    stream = real.openai().chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=12, stream=True,
        stream_options={"include_usage": True}, **GREEDY)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = [c.usage for c in chunks if c.usage is not None]
    assert text and len(usage) == 1 and 0 < usage[0].completion_tokens <= 12
    for chunk in chunks:
        validate_chat_chunk(chunk.model_dump(exclude_unset=True))
    # The same greedy answer as without streaming.
    whole = real.openai().chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=12, **GREEDY)
    assert whole.choices[0].message.content == text


def test_stop_cuts_where_the_stop_string_appears(real: RealStack) -> None:
    client = real.openai()
    full = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=24, **GREEDY).choices[0].message.content
    assert full and len(full) > 4
    stop = full[len(full) // 2:len(full) // 2 + 2]  # two characters from the middle
    cut = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=24, stop=[stop], **GREEDY)
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == full[:full.index(stop)]


def test_context_overflow_400_comes_back_unchanged(real: RealStack) -> None:
    long = [{"role": "user", "content": "word " * (CONTEXT * 3)}]
    direct = httpx.post(f"{real.servers['alpha'].url}/v1/chat/completions",
                        json={"messages": long, "max_tokens": 4}, timeout=60)
    assert direct.status_code == 400
    with pytest.raises(openai.BadRequestError) as err:
        real.openai().chat.completions.create(model=MODEL, messages=long, max_tokens=4)
    assert err.value.status_code == 400
    assert err.value.body["message"] == direct.json()["error"]["message"]


def test_stats_show_real_ttft_and_decode_speed(real: RealStack) -> None:
    client = real.openai()
    for name in real.servers:  # each server measured at least twice
        for _ in range(2):
            client.chat.completions.create(
                model=MODEL, messages=MESSAGES, max_tokens=16, **GREEDY,
                extra_body={"provider": {"order": [name], "allow_fallbacks": False}})
    stats = httpx.get(f"{real.url}/v1/router/stats",
                      headers={"authorization": f"Bearer {client.api_key}"}).json()
    rows = {d["deployment"]: d for d in stats["models"][MODEL]["deployments"]}
    for name in real.servers:
        row = rows[f"{name}/smollm2"]
        assert row["samples"] >= 2
        # Real numbers from a real server: a first token after some milliseconds, not zero,
        # and a decode speed a 135M model on a CPU core gives (well under 10k tokens/s).
        assert 0.001 < row["ttft_p50_s"] < 60
        assert 1 < row["decode_tps_p50"] < 10_000
