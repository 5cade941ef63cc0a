"""The decision header parser, against what the engine itself writes."""

from __future__ import annotations

import random

import pytest

from tokenlane import RouteCandidate, RouteInfo, parse_route_header
from tokenlane.config import parse_settings
from tokenlane.request import chat_request_from_body
from tokenlane.routing.engine import Engine

HEADER = ("policy=balanced; chosen=blaze/llama-3.3-70b; why=policy; "
          "candidates=blaze/llama-3.3-70b ttft=0.312 tps=1790 usd=0.000160 n=42,"
          "swift/llama-3.3-70b-versatile ttft=0.150 tps=500 usd=0.000100 n=0")


def test_parses_the_documented_example() -> None:
    route = parse_route_header(HEADER)
    assert (route.policy, route.chosen, route.why) == ("balanced", "blaze/llama-3.3-70b", "policy")
    assert route.provider == "blaze"
    assert route.candidates == (
        RouteCandidate("blaze/llama-3.3-70b", ttft_s=0.312, decode_tps=1790.0, cost_usd=0.00016,
                       samples=42),
        RouteCandidate("swift/llama-3.3-70b-versatile", ttft_s=0.15, decode_tps=500.0,
                       cost_usd=0.0001, samples=0),
    )


def test_round_trips_the_engines_own_header() -> None:
    settings = parse_settings({
        "providers": {p: {"base_url": f"http://127.0.0.1:9/{p}/v1"} for p in ("a", "b", "c")},
        "models": {"m": {"deployments": [
            {"provider": p, "model": "ollama:8b" if p == "c" else "x",
             "price": {"input": 1, "output": 2}} for p in ("a", "b", "c")]}},
    })
    engine = Engine(settings.resolve({}), rng=random.Random(1))
    decision = engine.plan(chat_request_from_body(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
    route = parse_route_header(decision.header())
    full = RouteInfo.from_dict(decision.to_dict())
    assert (route.policy, route.chosen, route.why) == (full.policy, full.chosen, full.why)
    assert [c.deployment for c in route.candidates] == [c.deployment for c in full.candidates]
    assert "c/ollama:8b" in [c.deployment for c in route.candidates]
    for short, long in zip(route.candidates, full.candidates, strict=True):
        assert short.ttft_s == pytest.approx(long.ttft_s, abs=1e-3)
        assert short.samples == long.samples
        assert short.score is None and long.score is not None
    assert RouteInfo.from_dict(full.to_dict()) == full


def test_unknown_fields_are_kept_not_fatal() -> None:
    route = parse_route_header("policy=price; chosen=a/x; why=only; region=eu; "
                               "candidates=a/x ttft=0.1 tps=9 usd=0.0 n=1 p90=0.3")
    assert route.extra == {"region": "eu"}
    assert route.candidates[0].extra == {"p90": "0.3"}
    assert parse_route_header("policy=order; chosen=a/x; why=order; candidates=").candidates == ()


@pytest.mark.parametrize("value", ["", "hello", "chosen=a/x", "policy=x; chosen=a/x; junk",
                                   "policy=x; chosen=a/x; candidates=a/x ttft=fast n=1",
                                   "policy=x; chosen=a/x; candidates=a/x ttft"])
def test_malformed_is_a_value_error(value: str) -> None:
    with pytest.raises(ValueError):
        parse_route_header(value)
