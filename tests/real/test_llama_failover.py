"""Failover between two real llama.cpp servers when one is killed mid-run."""

from __future__ import annotations

import openai
import pytest

from .servers import MODEL, real_stack

MESSAGES = [{"role": "user", "content": "Tell me a long story about a lighthouse keeper."}]
FIRST_ALPHA = {"provider": {"order": ["alpha", "beta"]}}


def test_a_killed_server_breaks_its_stream_and_the_next_request_fails_over() -> None:
    with real_stack() as real:
        client = real.openai()
        warm = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=MESSAGES, max_tokens=4, extra_body=FIRST_ALPHA)
        assert warm.headers["x-tokenlane-deployment"] == "alpha/smollm2"

        # Kill alpha while its stream is running: the client sees the stream break (an
        # error, never tokens silently continued from beta).
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=MESSAGES, max_tokens=400, stream=True, temperature=0,
            extra_body=FIRST_ALPHA)
        assert raw.headers["x-tokenlane-deployment"] == "alpha/smollm2"
        stream = raw.parse()
        received = 0
        with pytest.raises(openai.APIError):
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    received += 1
                    if received == 3:
                        real.servers["alpha"].kill()
                assert received < 400, "alpha kept streaming after it was killed"
        assert received >= 3

        # Before any token: alpha refuses connections now, so beta answers the same request.
        after = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=MESSAGES, max_tokens=8, extra_body=FIRST_ALPHA)
        assert after.headers["x-tokenlane-deployment"] == "beta/smollm2"
        assert after.parse().choices[0].message.content
