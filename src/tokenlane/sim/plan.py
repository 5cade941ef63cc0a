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

from ..capabilities import features_used
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
    "rate_limited",
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
            return rate_limited(spec.rate_limit_kind, model, spec.retry_after_s)
    if function is None:
        function = _auto_function(spec, body, rng)

    if function is None:
        tool_call = None
        words = _json_answer(spec, body)
        whole = spec.output_tokens if words is None else len(words)
        n = whole if limit is None else min(whole, limit)
        pieces = tuple(text_pieces(spec.name, n) if words is None else words[:n])
        finish_reason = "length" if n < whole else "stop"
        pieces, stopped = _stopped(pieces, body.get("stop"))
        if stopped:
            n, finish_reason = len(pieces), "stop"
    else:
        arguments = orjson.dumps(example_arguments(function.get("parameters"))).decode()
        fragments = split_arguments(arguments)
        # One token names the function, one per fragment carries the arguments.
        n = 1 + len(fragments) if limit is None else min(1 + len(fragments), limit)
        pieces = tuple(fragments[: n - 1])
        tool_call = ToolCall(name=function["name"], arguments="".join(pieces))
        finish_reason = "length" if n - 1 < len(fragments) else "tool_calls"

    prompt_tokens = estimate_prompt_tokens(body, spec.prompt_chars_per_token)
    stream = body.get("stream") is True
    options = body.get("stream_options")
    delays = _delays(spec, prompt_tokens, n, rng)
    choices = body.get("n")
    return Completion(
        model=model,
        stream=stream,
        include_usage=stream and isinstance(options, dict) and options.get("include_usage") is True,
        pieces=pieces,
        tool_call=tool_call,
        finish_reason=finish_reason,
        prompt_tokens=prompt_tokens,
        completion_tokens=n,
        delays=delays,
        usage_details=spec.usage_details,
        cache_write_tokens=min(spec.cache_write_tokens, prompt_tokens),
        n=choices if isinstance(choices, int) and not isinstance(choices, bool)
        and 1 <= choices <= 8 else 1,
        logprobs=body.get("logprobs") is True,
        time_info=_time_info(spec, delays) if spec.time_info else None,
    )


def _json_answer(spec: SimProviderSpec, body: dict[str, Any]) -> list[str] | None:
    """Valid JSON, token by token, when `response_format` asks for it (else None)."""
    fmt = body.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_schema":
        schema = fmt.get("json_schema")
        schema = schema.get("schema") if isinstance(schema, dict) else None
        return split_arguments(orjson.dumps(example_arguments(schema)).decode())
    if kind == "json_object":
        text = "".join(text_pieces(spec.name, spec.output_tokens)).strip()
        return split_arguments(orjson.dumps({"answer": text}).decode())
    return None


def _stopped(pieces: tuple[str, ...], stop: Any) -> tuple[tuple[str, ...], bool]:
    """The pieces up to the first `stop` string (excluded), as OpenAI cuts them."""
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    stops = [s for s in stops if isinstance(s, str) and s]
    if not stops:
        return pieces, False
    text = "".join(pieces)
    cut = min((i for s in stops if (i := text.find(s)) >= 0), default=-1)
    if cut < 0:
        return pieces, False
    out: list[str] = []
    used = 0
    for piece in pieces:
        if used + len(piece) >= cut:
            if cut > used:
                out.append(piece[:cut - used])
            break
        out.append(piece)
        used += len(piece)
    return tuple(out), True


def _auto_function(spec: SimProviderSpec, body: dict[str, Any], rng: Random
                   ) -> dict[str, Any] | None:
    """With tools and `tool_choice` "auto" (or none), a call `auto_tool_rate` of the time."""
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools or body.get("tool_choice", "auto") != "auto":
        return None
    functions = [t["function"] for t in tools if isinstance(t, dict)
                 and isinstance(t.get("function"), dict)
                 and isinstance(t["function"].get("name"), str)]
    if not functions or rng.random() >= spec.auto_tool_rate:
        return None
    return functions[0]


def _time_info(spec: SimProviderSpec, delays: tuple[float, ...]
               ) -> tuple[float, float, float, float]:
    """Cerebras's breakdown of this reply's time: queue, prompt, completion, total."""
    queue = spec.queue_s * spec.time_scale
    prompt = max(delays[0] - queue, 0.0)
    completion = sum(delays[1:])
    return (queue, prompt, completion, queue + prompt + completion)


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
    if spec.rejects:
        refused = sorted(features_used(body) & set(spec.rejects))
        if refused:
            return _unsupported(refused[0])
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


# The parameter a feature is named by in a refusal, in Groq's documented wording.
_REFUSED = {"message_names": "'messages.0' : for 'role:user' the following must be satisfied"
                             "[('messages.0.name' : property 'name' is unsupported)]",
            "n": "'n' : number must be at most 1"}


def _unsupported(feature: str) -> Failure:
    message = _REFUSED.get(feature, f"`{feature}` is not supported with this model")
    return invalid(message, param=None if feature in _REFUSED else feature)


def rate_limited(kind: str, model: str, retry_after_s: float,
                 headers: tuple[tuple[str, str], ...] = ()) -> Failure:
    """A 429 of `kind`: OpenAI's RPM message, or Cerebras's quota or capacity error."""
    seconds = format(retry_after_s, "f").rstrip("0").rstrip(".") or "0"
    retry = (("retry-after", seconds), ("retry-after-ms", str(round(retry_after_s * 1000))))
    if kind == "quota":
        return Failure(429, "Tokens per minute limit exceeded - too many tokens processed.",
                       "too_many_tokens_error", param="quota", code="token_quota_exceeded",
                       headers=(retry if retry_after_s else ()) + headers)
    if kind == "capacity":
        return Failure(429, "We're experiencing high traffic right now! Please try again soon.",
                       "too_many_requests_error", param="queue", code="queue_exceeded",
                       headers=retry + headers)
    return _rate_limited(model, retry_after_s)


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
