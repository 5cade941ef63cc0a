"""Per-request routing options as a client sends them: the official openai SDK's `extra_body`
(and the `x-tokenlane-provider` header) against the real gateway. A bad value is a 400 whose
`param` is the option's path as the client wrote it and whose message says what is wrong."""

from __future__ import annotations

import json

import openai
import pytest

from tokenlane.sim import SimProviderSpec

from ..harness import stack

MESSAGES = [{"role": "user", "content": "Hello"}]


@pytest.fixture(scope="module")
def client():
    specs = [SimProviderSpec(name=n, ttft_s=0, tokens_per_s=10_000, output_tokens=3)
             for n in ("a", "b")]
    with stack(specs, {"m": ["a", "b"]}) as s:
        yield s.openai()


def rejected(client: openai.OpenAI, options: object, *, via: str = "body") -> dict:
    kwargs: dict = ({"extra_body": {"provider": options}} if via == "body" else
                    {"extra_headers": {"x-tokenlane-provider": json.dumps(options)}})
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="m", messages=MESSAGES, **kwargs)
    assert err.value.status_code == 400
    error = err.value.response.json()["error"]
    assert error["code"] == "invalid_routing_option"
    return error


@pytest.mark.parametrize(("options", "param", "says"), [
    ({"preferred_max_latency": {"p50": -1}}, "provider.preferred_max_latency.p50",
     "greater than 0"),
    ({"preferred_max_latency": -1}, "provider.preferred_max_latency", "greater than 0"),
    ({"preferred_max_latency": "fast"}, "provider.preferred_max_latency",
     "a number of seconds (p50) or an object {p50, p75, p90, p99}"),
    ({"preferred_min_throughput": [100]}, "provider.preferred_min_throughput",
     "a number of tokens/s (p50) or an object {p50, p75, p90, p99}"),
    ({"preferred_min_throughput": {"p60": 5}}, "provider.preferred_min_throughput.p60",
     "unknown field"),
    ({"preferred_min_throughput": {"p90": "fast"}}, "provider.preferred_min_throughput.p90",
     "valid number"),
    ({"allow_fallbacks": "yes"}, "provider.allow_fallbacks", "should be true or false"),
    ({"allow_fallbacks": 1}, "provider.allow_fallbacks", "should be true or false"),
    ({"hedge": "true"}, "provider.hedge", "should be true or false"),
    ({"max_attempts": "3"}, "provider.max_attempts", "valid integer"),
    ({"value_of_time": "10"}, "provider.value_of_time", "valid number"),
])
def test_bad_values_name_the_option_and_say_what_is_wrong(
    client: openai.OpenAI, options: dict, param: str, says: str
) -> None:
    error = rejected(client, options)
    assert error["param"] == param
    assert says in error["message"] and param in error["message"]


def test_the_header_is_held_to_the_same_rules(client: openai.OpenAI) -> None:
    error = rejected(client, {"preferred_max_latency": {"p90": 0}}, via="header")
    assert error["param"] == "provider.preferred_max_latency.p90"


@pytest.mark.parametrize("options", [
    {"preferred_max_latency": 2, "preferred_min_throughput": 50.5, "allow_fallbacks": False},
    {"preferred_max_latency": {"p90": 0.5, "p99": 1}, "preferred_min_throughput": {"p50": 10}},
    {"hedge": True, "max_attempts": 2, "value_of_time": 0},
])
def test_good_values_are_accepted(client: openai.OpenAI, options: dict) -> None:
    reply = client.chat.completions.create(model="m", messages=MESSAGES,
                                           extra_body={"provider": options})
    assert reply.choices[0].message.content
