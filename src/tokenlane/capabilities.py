"""Capabilities and parameter hygiene: what a request uses, what a deployment accepts (pure).

Providers that speak "OpenAI-compatible" still differ in what they accept: Groq answers 400 to
`logprobs`, `logit_bias`, `top_logprobs`, `messages[].name` and `n > 1`; Cerebras's gpt-oss-120b
has no `json_object` mode; some want `max_completion_tokens`, others only know `max_tokens`. So
every request is read once for the *features* it uses (`features_used`), and each deployment is
judged against what it supports (`assess`):

- a deployment that supports everything the request uses serves it as sent;
- one that lacks a feature whose parameter can simply be left out (logprobs, logit_bias,
  reasoning effort, message names, ...) and whose rule is `drop` serves it without them (the
  decision record says what was dropped);
- otherwise the rule decides: `route_elsewhere` (default) puts it after every deployment that
  supports the request, `reject` (or the request's `require_parameters: true`, OpenRouter's
  field) excludes it outright.

A deployment whose capabilities are unknown (`None`: no preset and none configured) is assumed
to accept everything, as the gateway did before it knew about capabilities.

`rewrite` applies the deployment's rules to the outgoing body: the limit parameter the provider
wants (`max_tokens` ⇄ `max_completion_tokens`), an optional cap on it (Cerebras admits a request
on input tokens plus `max_completion_tokens`, so an inflated limit burns quota), and the dropped
parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # types.py imports this module's records
    from .types import Deployment

__all__ = [
    "ALL_FEATURES",
    "DROPPABLE",
    "LIMIT_PARAMS",
    "UNSUPPORTED_RULES",
    "Fit",
    "ParamRules",
    "Screening",
    "assess",
    "features_used",
    "prepare",
    "rewrite",
    "screen",
]

UnsupportedRule = Literal["drop", "route_elsewhere", "reject"]
UNSUPPORTED_RULES: tuple[str, ...] = ("drop", "route_elsewhere", "reject")
LimitParam = Literal["max_tokens", "max_completion_tokens"]
LIMIT_PARAMS: tuple[str, ...] = ("max_tokens", "max_completion_tokens")

# Feature -> the top-level body keys that carry it. `message_names` lives inside `messages`.
_PARAMS: dict[str, tuple[str, ...]] = {
    "tools": ("tools", "tool_choice", "parallel_tool_calls"),
    "tool_choice": ("tool_choice",),  # forcing a call: "required" or a named function
    "parallel_tool_calls": ("parallel_tool_calls",),
    "json_object": ("response_format",),
    "json_schema": ("response_format",),
    "logprobs": ("logprobs", "top_logprobs"),
    "logit_bias": ("logit_bias",),
    "n": ("n",),
    "vision": (),
    "reasoning": ("reasoning_effort", "reasoning"),
    "message_names": (),
    "seed": ("seed",),
}
ALL_FEATURES: frozenset[str] = frozenset(_PARAMS)
# Features a request still makes sense without: leaving the parameter out changes detail, not
# what is asked for. Tools, structured output, n and images are the request itself.
DROPPABLE: frozenset[str] = frozenset(
    {"logprobs", "logit_bias", "reasoning", "message_names", "seed", "parallel_tool_calls"})
_IMAGE_PARTS = frozenset({"image_url", "input_image", "image"})


@dataclass(frozen=True, slots=True)
class ParamRules:
    """How one deployment wants its parameters (presets fill it; config overrides)."""

    # The output-limit parameter the provider reads; None: send whichever the client sent.
    limit_param: LimitParam | None = None
    # What to do when the request uses a feature the deployment lacks (see the module doc).
    unsupported: UnsupportedRule = "route_elsewhere"
    # Upper bound on the output limit sent (also set when the client sets none).
    max_output_tokens: int | None = None
    # The upstream routes on its own (OpenRouter): the client's `provider` object goes to it.
    forward_provider: bool = False


DEFAULT_RULES = ParamRules()


@dataclass(frozen=True, slots=True)
class Fit:
    """How one deployment fits one request."""

    missing: frozenset[str] = frozenset()  # features used that the deployment lacks
    drop: frozenset[str] = frozenset()  # of those, the ones whose parameters are left out
    excluded: str | None = None  # why it must not serve this request at all
    demoted: str | None = None  # why it goes after the deployments that support the request


FITS = Fit()


def features_used(body: Mapping[str, Any]) -> frozenset[str]:
    """The features a chat-completions body uses (names from `ALL_FEATURES`)."""
    used: set[str] = set()
    get = body.get
    tools = get("tools")
    if isinstance(tools, list) and tools:
        used.add("tools")
    choice = get("tool_choice")
    if choice == "required" or isinstance(choice, dict):
        used.add("tool_choice")
    if get("parallel_tool_calls") is not None:
        used.add("parallel_tool_calls")
    fmt = get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        used.add(fmt["type"])
    if get("logprobs") is True or get("top_logprobs") is not None:
        used.add("logprobs")
    if get("logit_bias"):
        used.add("logit_bias")
    n = get("n")
    if isinstance(n, int) and not isinstance(n, bool) and n > 1:
        used.add("n")
    if get("reasoning_effort") is not None or get("reasoning") is not None:
        used.add("reasoning")
    if get("seed") is not None:
        used.add("seed")
    messages = get("messages")
    if isinstance(messages, list):
        for m in messages:
            if not isinstance(m, dict):
                continue
            if "name" in m:
                used.add("message_names")
            content = m.get("content")
            if isinstance(content, list) and any(
                    isinstance(p, dict) and p.get("type") in _IMAGE_PARTS for p in content):
                used.add("vision")
    return frozenset(used)


def assess(
    used: frozenset[str],
    capabilities: frozenset[str] | None,
    rules: ParamRules = DEFAULT_RULES,
    *,
    require_parameters: bool = False,
) -> Fit:
    """Whether a deployment with `capabilities` and `rules` may serve a request using `used`."""
    if capabilities is None or not used:
        return FITS
    missing = used - capabilities
    if not missing:
        return FITS
    names = " and ".join(sorted(missing))
    if require_parameters:
        return Fit(missing, excluded=f"does not support {names} (require_parameters)")
    drop = missing & DROPPABLE if rules.unsupported == "drop" else frozenset()
    rest = missing - drop
    if not rest:
        return Fit(missing, drop)
    names = " and ".join(sorted(rest))
    if rules.unsupported == "reject":
        return Fit(missing, drop, excluded=f"does not support {names}")
    return Fit(missing, drop, demoted=f"does not support {names}")


def rewrite(body: dict[str, Any], rules: ParamRules, drop: Iterable[str] = ()) -> None:
    """Apply a deployment's rules to an outgoing body, in place (the caller's own copy)."""
    limit = rules.limit_param
    if limit is not None:
        other = "max_tokens" if limit == "max_completion_tokens" else "max_completion_tokens"
        if other in body:
            value = body.pop(other)
            body.setdefault(limit, value)
    cap = rules.max_output_tokens
    if cap is not None:
        key = limit or ("max_completion_tokens" if "max_completion_tokens" in body
                        else "max_tokens")
        value = body.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value > cap:
            body[key] = cap
    for feature in drop:
        if feature == "message_names":
            body["messages"] = [_without_name(m) for m in body.get("messages", ())]
        for key in _PARAMS.get(feature, ()):
            body.pop(key, None)


def _without_name(message: Any) -> Any:
    if isinstance(message, dict) and "name" in message:
        return {k: v for k, v in message.items() if k != "name"}
    return message


@dataclass(frozen=True, slots=True)
class Screening:
    """One request against every deployment of its model: what the decision record shows."""

    excluded: dict[str, str] = field(default_factory=dict)  # deployment -> why not at all
    demoted: dict[str, str] = field(default_factory=dict)  # deployment -> why after the rest
    dropped: dict[str, frozenset[str]] = field(default_factory=dict)  # deployment -> left out
    used: frozenset[str] = frozenset()


NOTHING_SCREENED = Screening()


def screen(
    deployments: Sequence[Deployment], body: Mapping[str, Any], *,
    require_parameters: bool = False,
) -> Screening:
    """`assess` for each deployment. Reads the body only when some deployment's capabilities
    are known (a config without any pays nothing per request)."""
    if all(d.capabilities is None for d in deployments):
        return NOTHING_SCREENED
    used = features_used(body)
    if not used:
        return NOTHING_SCREENED
    excluded: dict[str, str] = {}
    demoted: dict[str, str] = {}
    dropped: dict[str, frozenset[str]] = {}
    for d in deployments:
        fit = assess(used, d.capabilities, d.rules, require_parameters=require_parameters)
        if fit.excluded is not None:
            excluded[d.id] = fit.excluded
        elif fit.demoted is not None:
            demoted[d.id] = fit.demoted
        if fit.drop and fit.excluded is None:
            dropped[d.id] = fit.drop
    return Screening(excluded, demoted, dropped, used)


def prepare(body: dict[str, Any], deployment: Deployment, options: Any = None) -> None:
    """The outgoing body for `deployment`, in place: its limit parameter and cap, the
    parameters its `drop` rule leaves out, and for an upstream that routes on its own the
    OpenRouter fields of the request's routing `options`."""
    caps, rules = deployment.capabilities, deployment.rules
    if caps is None and rules == DEFAULT_RULES:
        return
    if rules.forward_provider and options is not None and (forward := options.upstream_object()):
        body["provider"] = forward
    drop: frozenset[str] = frozenset()
    if caps is not None and rules.unsupported == "drop":
        drop = assess(features_used(body), caps, rules).drop
    rewrite(body, rules, drop)


def unsupported_param(used: Iterable[str]) -> str | None:
    """The body parameter to name in a 400 for features no deployment supports."""
    feature = min(used, default=None)
    if feature is None:
        return None
    return (_PARAMS.get(feature) or ("messages",))[0]
