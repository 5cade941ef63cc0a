"""Decide a simulated provider's whole reply before sending a byte of it.

`plan_reply(spec, body, rng)` is pure: the parsed request body and the provider's spec in,
a `Failure` or a `Completion` out (or, under a fault, a `Broken` reply or a `Completion`
carrying a `StreamFault`), with every token and every delay already fixed. Drawing all
random numbers up front, in request arrival order, keeps a seeded provider reproducible even
when many streams interleave, and leaves the I/O layer nothing to do but sleep and send.
"""

from __future__ import annotations

from collections.abc import Iterable
from random import Random
from typing import Any

import orjson

from .faults import FAULTS
from .replies import Broken, Completion, Failure, Reply, StreamFault, ToolCall
from .spec import SimProviderSpec
from .tokens import estimate_prompt_tokens, example_arguments, split_arguments, text_pieces

__all__ = [
    "BAD_JSON",
    "Broken",
    "Completion",
    "Failure",
    "Reply",
    "StreamFault",
    "ToolCall",
    "invalid",
    "plan_reply",
    "unauthorized",
    "unknown_provider",
]


def plan_reply(spec: SimProviderSpec, body: Any, rng: Random, seq: int = 0) -> Reply:
    """The reply `spec`'s provider gives to the chat-completions request `body`.

    Checks run in the order a real provider's would: request shape, model, then the injected
    500s and 429s (a rejected request consumes no randomness), then generation. The spec's
    `fault`, if any, rewrites the result last; `seq` (this request's number among those the
    provider planned since its fault was set) is for faults that follow a schedule.
    """
    reply = _plan(spec, body, rng)
    if spec.fault is not None:
        reply = FAULTS[spec.fault](reply, spec, rng, seq)
    return reply


def _plan(spec: SimProviderSpec, body: Any, rng: Random) -> Reply:
    request = _parse_request(spec, body)
    if isinstance(request, Failure):
        return request
    model, limit, function = request

    if spec.error_rate or spec.rate_limit_rate:
        draw = rng.random()
        if draw < spec.error_rate:
            return _server_error()
        if draw < spec.error_rate + spec.rate_limit_rate:
            return _rate_limited(model, spec.retry_after_s)

    if function is None:
        tool_call = None
        n = spec.output_tokens if limit is None else min(spec.output_tokens, limit)
        pieces = tuple(text_pieces(spec.name, n))
        finish_reason = "length" if n < spec.output_tokens else "stop"
    else:
        arguments = orjson.dumps(example_arguments(function.get("parameters"))).decode()
        fragments = split_arguments(arguments)
        # One token names the function, one per fragment carries the arguments.
        n = 1 + len(fragments) if limit is None else min(1 + len(fragments), limit)
        pieces = tuple(fragments[: n - 1])
        tool_call = ToolCall(name=function["name"], arguments="".join(pieces))
        finish_reason = "length" if n - 1 < len(fragments) else "tool_calls"

    prompt_tokens = estimate_prompt_tokens(body)
    stream = body.get("stream") is True
    options = body.get("stream_options")
    return Completion(
        model=model,
        stream=stream,
        include_usage=stream and isinstance(options, dict) and options.get("include_usage") is True,
        pieces=pieces,
        tool_call=tool_call,
        finish_reason=finish_reason,
        prompt_tokens=prompt_tokens,
        completion_tokens=n,
        delays=_delays(spec, prompt_tokens, n, rng),
        usage_details=spec.usage_details,
    )


def _delays(spec: SimProviderSpec, prompt_tokens: int, n: int, rng: Random) -> tuple[float, ...]:
    scale = spec.time_scale
    ttft = (spec.ttft_s + spec.ttft_per_1k_prompt_tokens_s * prompt_tokens / 1000) * scale
    step = scale / spec.tokens_per_s
    # n tokens and the closing step: n waits of `step` after the first token's `ttft`.
    if not spec.jitter or not scale:
        return (ttft,) + (step,) * n
    spread = spec.jitter
    return tuple(base * (1 + spread * (2 * rng.random() - 1)) for base in (ttft, *((step,) * n)))


def _parse_request(
    spec: SimProviderSpec, body: Any
) -> tuple[str, int | None, dict[str, Any] | None] | Failure:
    """(model, token limit, forced function) from a request, or why it is rejected."""
    if not isinstance(body, dict):
        return invalid("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return invalid("you must provide a model parameter", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list):
        return invalid(
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    if not messages:
        return invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            param="messages",
            code="empty_array",
        )
    if spec.models is not None and model not in spec.models:
        return Failure(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            "invalid_request_error",
            param="model",
            code="model_not_found",
        )
    limit = _token_limit(body)
    if isinstance(limit, Failure):
        return limit
    function = _forced_function(body)
    if isinstance(function, Failure):
        return function
    return model, limit, function


def _token_limit(body: dict[str, Any]) -> int | Failure | None:
    # `max_completion_tokens` replaced `max_tokens`; when both are sent the newer one wins.
    for param in ("max_completion_tokens", "max_tokens"):
        value = body.get(param)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            return invalid(f"Invalid type for '{param}': expected an integer.", param=param)
        if value < 1:
            return invalid(
                f"Invalid '{param}': integer below minimum value. "
                f"Expected a value >= 1, but got {value} instead.",
                param=param,
                code="integer_below_min_value",
            )
        return value
    return None


def _forced_function(body: dict[str, Any]) -> dict[str, Any] | Failure | None:
    """The function definition `tool_choice` forces a call to, if it forces one."""
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not isinstance(tools, list) or (choice != "required" and not isinstance(choice, dict)):
        return None  # no tools, or "auto" / "none" / absent: answer in text
    functions: list[dict[str, Any]] = [
        tool["function"]
        for tool in tools
        if isinstance(tool, dict)
        and tool.get("type") == "function"
        and isinstance(tool.get("function"), dict)
        and isinstance(tool["function"].get("name"), str)
    ]
    if choice == "required":
        return functions[0] if functions else None
    named = choice.get("function") if choice.get("type") == "function" else None
    wanted = named.get("name") if isinstance(named, dict) else None
    if not isinstance(wanted, str):
        return None  # other shapes (e.g. "allowed_tools") leave the model free: text
    for function in functions:
        if function["name"] == wanted:
            return function
    return invalid(
        f"Invalid value for 'tool_choice': no function named '{wanted}' in 'tools'.",
        param="tool_choice",
    )


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> Failure:
    """A 400 `invalid_request_error`."""
    return Failure(400, message, "invalid_request_error", param=param, code=code)


def unknown_provider(name: str, known: Iterable[str]) -> Failure:
    served = ", ".join(known) or "none"
    return Failure(
        404,
        f"Unknown simulated provider {name!r} (this simulator serves: {served}).",
        "invalid_request_error",
        code="unknown_provider",
    )


def unauthorized(authorization: bytes) -> Failure:
    """401 for a wrong key, echoing it masked as OpenAI does (`sk-proj-****abcd`): the gateway
    must not pass even that on (see providers/redact.py)."""
    given = authorization.decode("latin-1").removeprefix("Bearer ").strip()
    shown = f"{given[:7]}{'*' * max(len(given) - 11, 3)}{given[-4:]}" if len(given) > 11 else ""
    return Failure(
        401,
        f"Incorrect API key provided: {shown or '(none)'}. "
        "Send it as 'Authorization: Bearer <key>'.",
        "invalid_request_error",
        code="invalid_api_key",
    )
BAD_JSON = invalid("We could not parse the JSON body of your request. The body must be valid JSON.")


def _server_error() -> Failure:
    return Failure(
        500,
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
    )


def _rate_limited(model: str, retry_after_s: float) -> Failure:
    seconds = format(retry_after_s, "f").rstrip("0").rstrip(".") or "0"
    return Failure(
        429,
        f"Rate limit reached for {model} on requests per min (RPM). "
        f"Please try again in {seconds}s.",
        "requests",
        code="rate_limit_exceeded",
        # Both spellings: OpenAI's SDK prefers the millisecond one when present.
        headers=(("retry-after", seconds), ("retry-after-ms", str(round(retry_after_s * 1000)))),
    )
