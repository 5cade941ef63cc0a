"""Capabilities and parameter hygiene (tokenlane.capabilities), on the documented quirks."""

from __future__ import annotations

from tokenlane.capabilities import ParamRules, assess, features_used, prepare, screen
from tokenlane.presets import PRESETS
from tokenlane.types import Deployment, Price, Provider

MESSAGES = [{"role": "user", "content": "hi"}]


def deployment(name: str, preset: str | None, rules: ParamRules | None = None) -> Deployment:
    p = PRESETS[preset] if preset else None
    return Deployment(id=f"{name}/m", provider=Provider(name, "http://127.0.0.1:1", None),
                      upstream_model="m", price=Price(1, 1),
                      capabilities=p.capabilities if p else None,
                      rules=rules or (p.rules if p else ParamRules()))


def test_features_read_from_the_body() -> None:
    body = {
        "messages": [{"role": "user", "name": "ann", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]}],
        "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required",
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
        "logprobs": True, "top_logprobs": 2, "logit_bias": {"42": 1}, "n": 2,
        "reasoning_effort": "low", "seed": 1,
    }
    assert features_used(body) == {"tools", "tool_choice", "json_schema", "logprobs",
                                   "logit_bias", "n", "reasoning", "seed", "message_names",
                                   "vision"}
    plain = {"messages": MESSAGES, "tool_choice": "auto", "n": 1, "logprobs": False,
             "response_format": {"type": "text"}}
    assert features_used(plain) == frozenset()


def test_groq_documented_400s_route_elsewhere_by_default() -> None:
    groq = PRESETS["groq"]
    for feature in ("logprobs", "logit_bias", "message_names", "n"):
        fit = assess(frozenset({feature}), groq.capabilities, groq.rules)
        assert fit.excluded is None and fit.demoted == f"does not support {feature}"
    assert assess(frozenset({"tools", "json_schema"}), groq.capabilities, groq.rules).demoted is None


def test_rules_drop_reject_and_require_parameters() -> None:
    caps = PRESETS["groq"].capabilities
    used = frozenset({"logprobs", "n"})
    drop = assess(used, caps, ParamRules(unsupported="drop"))
    assert drop.drop == {"logprobs"} and drop.demoted == "does not support n"  # n is the ask
    assert assess(frozenset({"logprobs"}), caps, ParamRules(unsupported="drop")).demoted is None
    assert assess(used, caps, ParamRules(unsupported="reject")).excluded == (
        "does not support logprobs and n")
    assert "require_parameters" in (assess(frozenset({"logprobs"}), caps,
                                           ParamRules(unsupported="drop"),
                                           require_parameters=True).excluded or "")
    assert assess(used, None).excluded is None and assess(used, None).demoted is None


def test_screen_reads_nothing_when_no_capabilities_are_known() -> None:
    body = {"messages": MESSAGES, "logprobs": True}
    assert screen([deployment("a", None), deployment("b", "vllm")], body).used == frozenset()
    s = screen([deployment("cerebras", "cerebras"), deployment("groq", "groq")], body,
               require_parameters=True)
    assert s.used == {"logprobs"} and list(s.excluded) == ["groq/m"] and not s.demoted


def test_prepare_renames_the_limit_caps_it_and_drops() -> None:
    cerebras = deployment("cerebras", "cerebras",
                          ParamRules(limit_param="max_completion_tokens", max_output_tokens=100))
    body = {"messages": MESSAGES, "max_tokens": 500}
    prepare(body, cerebras)
    assert body == {"messages": MESSAGES, "max_completion_tokens": 100}
    body = {"messages": MESSAGES, "max_tokens": 50}
    prepare(body, cerebras)
    assert body == {"messages": MESSAGES, "max_completion_tokens": 50}  # never inflated
    body = {"messages": MESSAGES}
    prepare(body, cerebras)
    assert body["max_completion_tokens"] == 100  # admission counts it: bounded when unset
    together = deployment("together", "together")
    body = {"messages": MESSAGES, "max_completion_tokens": 7}
    prepare(body, together)
    assert body == {"messages": MESSAGES, "max_tokens": 7}
    groq = deployment("groq", "groq", ParamRules(unsupported="drop"))
    named = [{"role": "user", "name": "ann", "content": "hi"}]
    body = {"messages": named, "logprobs": True, "top_logprobs": 3, "logit_bias": {"1": 2}}
    prepare(body, groq)
    assert body == {"messages": [{"role": "user", "content": "hi"}]}
    assert named[0]["name"] == "ann"  # the client's own messages untouched
    untouched = {"messages": MESSAGES, "max_tokens": 5, "logprobs": True}
    prepare(untouched, deployment("local", "vllm"))
    assert untouched == {"messages": MESSAGES, "max_tokens": 5, "logprobs": True}
