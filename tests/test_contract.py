"""Self-tests of tests/contract.py: hand-written bodies the OpenAI spec must accept or reject.

Every test except the spec-location ones skips when the spec is absent (a user's clone).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest

from tests import contract
from tests.contract import (
    validate,
    validate_chat_chunk,
    validate_chat_completion,
    validate_error,
    validate_model,
    validate_model_list,
)

CREATED = 1_735_689_600

CHAT_COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-abc123",
    "object": "chat.completion",
    "created": CREATED,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello! How can I help you today?",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 9,
        "completion_tokens": 9,
        "total_tokens": 18,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_44709d6fcb",
}

TOOL_CALL_COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-tool1",
    "object": "chat.completion",
    "created": CREATED,
    "model": "gpt-4o",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "call_abc123",
                        "type": "function",
                        "function": {
                            "name": "get_current_weather",
                            "arguments": '{"location": "Boston, MA"}',
                        },
                    }
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99},
}

LOGPROBS = {
    "content": [
        {
            "token": "Hi",
            "logprob": -0.31,
            "bytes": [72, 105],
            "top_logprobs": [{"token": "Hi", "logprob": -0.31, "bytes": [72, 105]}],
        }
    ],
    "refusal": None,
}


def _chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-abc123",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": choices,
        **extra,
    }


ROLE_CHUNK = _chunk(
    [{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None},
      "logprobs": None, "finish_reason": None}],
    usage=None,
)
CONTENT_CHUNK = _chunk(
    [{"index": 0, "delta": {"content": "Hello"}, "logprobs": None, "finish_reason": None}],
    usage=None,
)
FINISH_CHUNK = _chunk(
    [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}], usage=None
)
USAGE_CHUNK = _chunk(
    [], usage={"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
)
TOOL_CALL_CHUNKS = [
    _chunk([{"index": 0, "finish_reason": None, "delta": {
        "role": "assistant", "content": None,
        "tool_calls": [{"index": 0, "id": "call_abc123", "type": "function",
                        "function": {"name": "get_current_weather", "arguments": ""}}]}}]),
    _chunk([{"index": 0, "finish_reason": None, "delta": {
        "tool_calls": [{"index": 0, "function": {"arguments": '{"location":'}}]}}]),
    _chunk([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]),
]

ERROR = {
    "error": {
        "message": "The model `gpt-9` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }
}

MODEL = {"id": "gpt-4o-mini", "object": "model", "created": 1_721_172_741, "owned_by": "system"}
MODEL_LIST = {
    "object": "list",
    "data": [
        MODEL,
        {"id": "local/llama", "object": "model", "created": 0, "owned_by": "tokenlane"},
    ],
}


def _with(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `obj` with dotted `path` set to `value` (deleted if `value` is `...`)."""
    out = copy.deepcopy(obj)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node: Any = out
    for p in parents:
        node = node[p]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return out


# ---------------------------------------------------------------------------------------
# Locating the spec (these run, and must pass, even without the spec)


def test_spec_path_honours_env_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "openapi.yaml"
    monkeypatch.setenv(contract.SPEC_ENV_VAR, str(fake))
    assert contract.spec_path() is None
    fake.write_text("openapi: 3.1.0\n")
    assert contract.spec_path() == fake


def test_missing_spec_skips(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(contract.SPEC_ENV_VAR, str(tmp_path / "nope.yaml"))
    for call in (contract.load_spec, lambda: validate_error(ERROR)):
        with pytest.raises(pytest.skip.Exception, match="spec not found"):
            call()


def test_default_location_is_sibling_shared_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(contract.SPEC_ENV_VAR, raising=False)
    root = Path(contract.__file__).resolve().parent.parent
    expected = root.parent / "shared" / "openai-openapi" / "openapi.yaml"
    assert contract.spec_path() == (expected if expected.is_file() else None)


# ---------------------------------------------------------------------------------------
# Loading


def test_spec_loads_once_and_fast() -> None:
    start = time.perf_counter()
    spec = contract.load_spec()
    first = time.perf_counter() - start
    start = time.perf_counter()
    assert contract.load_spec() is spec  # cached
    assert time.perf_counter() - start < 0.05
    assert spec["openapi"].startswith("3.1")
    names = contract.schema_names()
    for name in ("CreateChatCompletionResponse", "CreateChatCompletionStreamResponse",
                 "ErrorResponse", "ListModelsResponse", "Model"):
        assert name in names
    # Generous bound: ~1-1.7 s with libyaml (CSafeLoader); ~3.7 s with the pure-Python loader.
    assert first < 15, f"spec load took {first:.1f}s"


def test_unknown_schema_name_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="did you mean.*CreateChatCompletionResponse"):
        validate("ChatCompletionResponse", {})


# ---------------------------------------------------------------------------------------
# Known-good bodies


def test_good_chat_completion() -> None:
    validate_chat_completion(CHAT_COMPLETION)


def test_good_chat_completion_minimal() -> None:
    minimal = _with(_with(CHAT_COMPLETION, "usage", ...), "service_tier", ...)
    minimal = _with(_with(minimal, "system_fingerprint", ...), "choices.0.message.annotations", ...)
    validate_chat_completion(minimal)


def test_good_chat_completion_with_logprobs_and_refusal() -> None:
    body = _with(CHAT_COMPLETION, "choices.0.logprobs", LOGPROBS)
    body = _with(body, "choices.0.message.refusal", "I can't help with that.")
    validate_chat_completion(_with(body, "choices.0.message.content", None))


def test_good_tool_call_completion() -> None:
    validate_chat_completion(TOOL_CALL_COMPLETION)


def test_good_extra_fields_are_allowed() -> None:
    # The spec sets no additionalProperties: false anywhere; provider extensions pass.
    validate_chat_completion(_with(CHAT_COMPLETION, "choices.0.message.reasoning_content", "hm"))


@pytest.mark.parametrize(
    "chunk",
    [ROLE_CHUNK, CONTENT_CHUNK, FINISH_CHUNK, USAGE_CHUNK, *TOOL_CALL_CHUNKS],
    ids=["role", "content", "finish", "usage", "tool-start", "tool-args", "tool-finish"],
)
def test_good_stream_chunks(chunk: dict[str, Any]) -> None:
    validate_chat_chunk(chunk)


def test_good_stream_chunk_with_logprobs() -> None:
    validate_chat_chunk(_with(CONTENT_CHUNK, "choices.0.logprobs", LOGPROBS))


def test_good_error() -> None:
    validate_error(ERROR)
    validate_error(_with(_with(ERROR, "error.code", None), "error.param", "messages"))


def test_good_models() -> None:
    validate_model(MODEL)
    validate_model_list(MODEL_LIST)
    validate_model_list({"object": "list", "data": []})


# ---------------------------------------------------------------------------------------
# Known-bad bodies: each must raise AssertionError naming the offending place


@pytest.mark.parametrize(
    ("path", "value", "expect"),
    [
        ("choices", ..., "'choices' is a required property"),
        ("object", "chat.completion.chunk", r"\$\.object: 'chat.completion.chunk' is not one of"),
        ("choices.0.finish_reason", "done", r"\$\.choices\[0\]\.finish_reason: 'done'"),
        ("choices.0.finish_reason", None, r"\$\.choices\[0\]\.finish_reason: None"),
        ("choices.0.logprobs", ..., "'logprobs' is a required property"),
        ("choices.0.message.refusal", ..., "'refusal' is a required property"),
        ("choices.0.message.content", ..., "'content' is a required property"),
        ("choices.0.message.role", "user", r"message\.role: 'user' is not one of"),
        ("created", 1_735_689_600.5, r"\$\.created: 1735689600\.5 is not of type 'integer'"),
        ("id", None, r"\$\.id: None is not of type 'string'"),
        ("usage", None, r"\$\.usage: None is not of type 'object'"),
        ("usage.total_tokens", ..., "'total_tokens' is a required property"),
        ("usage.completion_tokens_details", None, "completion_tokens_details: None"),
        ("system_fingerprint", None, r"\$\.system_fingerprint: None"),
    ],
    ids=lambda v: v if isinstance(v, str) else repr(v),
)
def test_bad_chat_completion(path: str, value: Any, expect: str) -> None:
    with pytest.raises(AssertionError, match=expect):
        validate_chat_completion(_with(CHAT_COMPLETION, path, value))


@pytest.mark.parametrize(
    ("path", "value", "expect"),
    [
        ("choices.0.message.tool_calls.0.id", None, r"tool_calls\[0\]"),
        ("choices.0.message.tool_calls.0.type", "fn", r"tool_calls\[0\]"),
        ("choices.0.message.tool_calls.0.function.arguments", {"location": "Boston"},
         r"tool_calls\[0\]"),
        ("choices.0.message.tool_calls", None, r"message\.tool_calls: None"),
    ],
    ids=["null-id", "bad-type", "arguments-not-string", "null-tool_calls"],
)
def test_bad_tool_call_completion(path: str, value: Any, expect: str) -> None:
    with pytest.raises(AssertionError, match=expect):
        validate_chat_completion(_with(TOOL_CALL_COMPLETION, path, value))


@pytest.mark.parametrize(
    ("chunk", "path", "value", "expect"),
    [
        (CONTENT_CHUNK, "object", "chat.completion", r"\$\.object: 'chat.completion' is not"),
        (CONTENT_CHUNK, "choices", ..., "'choices' is a required property"),
        (CONTENT_CHUNK, "choices.0.finish_reason", ..., "'finish_reason' is a required"),
        (CONTENT_CHUNK, "choices.0.finish_reason", "eos", r"finish_reason: 'eos'"),
        (CONTENT_CHUNK, "choices.0.delta", ..., "'delta' is a required property"),
        (CONTENT_CHUNK, "choices.0.delta.role", "bot", r"delta\.role"),
        (USAGE_CHUNK, "usage.prompt_tokens", ..., "'prompt_tokens' is a required property"),
        (TOOL_CALL_CHUNKS[1], "choices.0.delta.tool_calls.0.index", ...,
         "'index' is a required property"),
    ],
    ids=["wrong-object", "no-choices", "no-finish_reason", "bad-finish_reason", "no-delta",
         "bad-role", "usage-incomplete", "tool-chunk-no-index"],
)
def test_bad_stream_chunk(chunk: dict[str, Any], path: str, value: Any, expect: str) -> None:
    with pytest.raises(AssertionError, match=expect):
        validate_chat_chunk(_with(chunk, path, value))


@pytest.mark.parametrize(
    ("path", "value", "expect"),
    [
        ("error.message", ..., "'message' is a required property"),
        ("error.param", ..., "'param' is a required property"),
        ("error.code", ..., "'code' is a required property"),
        ("error.code", 429, r"\$\.error\.code: 429"),
        ("error.type", None, r"\$\.error\.type: None is not of type 'string'"),
        ("error", "boom", r"\$\.error: 'boom' is not of type 'object'"),
    ],
    ids=["no-message", "no-param", "no-code", "int-code", "null-type", "string-error"],
)
def test_bad_error(path: str, value: Any, expect: str) -> None:
    with pytest.raises(AssertionError, match=expect):
        validate_error(_with(ERROR, path, value))


def test_bad_error_bare_object() -> None:
    # The inner object alone is not an ErrorResponse.
    with pytest.raises(AssertionError, match="'error' is a required property"):
        validate_error(ERROR["error"])


@pytest.mark.parametrize(
    ("obj", "expect"),
    [
        (_with(MODEL_LIST, "object", "models"), r"\$\.object: 'models' is not one of"),
        (_with(MODEL_LIST, "data", ...), "'data' is a required property"),
        (_with(MODEL_LIST, "data.0.owned_by", ...), r"\$\.data\[0\]: 'owned_by' is a required"),
        (_with(MODEL_LIST, "data.1.created", None), r"\$\.data\[1\]\.created: None"),
    ],
    ids=["wrong-object", "no-data", "no-owned_by", "null-created"],
)
def test_bad_model_list(obj: dict[str, Any], expect: str) -> None:
    with pytest.raises(AssertionError, match=expect):
        validate_model_list(obj)


def test_bad_model() -> None:
    with pytest.raises(AssertionError, match=r"\$\.object: 'models' is not one of"):
        validate_model(_with(MODEL, "object", "models"))
    with pytest.raises(AssertionError, match="'created' is a required property"):
        validate_model(_with(MODEL, "created", ...))


def test_message_is_readable() -> None:
    bad = _with(CHAT_COMPLETION, "choices.0.finish_reason", "done")
    bad["object"] = "completion"
    with pytest.raises(AssertionError) as info:
        validate_chat_completion(bad)
    text = str(info.value)
    assert text.startswith("response does not match OpenAI schema CreateChatCompletionResponse")
    assert "(2 violations)" in text
    assert "$.choices[0].finish_reason: 'done' is not one of" in text
    assert "$.object: 'completion' is not one of ['chat.completion']" in text


# ---------------------------------------------------------------------------------------
# The spec's own OpenAPI 3.0 leftovers, and how they are read


def test_nullable_true_admits_null_only_where_declared() -> None:
    # Stream chunk: finish_reason / logprobs / usage carry `nullable: true` -> null is fine
    # (covered by the good chunks above). A non-nullable neighbour still rejects null:
    with pytest.raises(AssertionError, match=r"delta\.tool_calls: None"):
        validate_chat_chunk(_with(CONTENT_CHUNK, "choices.0.delta.tool_calls", None))
    # and a nullable field still checks its non-null values:
    with pytest.raises(AssertionError, match="'prompt_tokens' is a required property"):
        validate_chat_chunk(_with(CONTENT_CHUNK, "usage", {}))


def test_to_2020_12_rewrite() -> None:
    rewrite = contract._to_2020_12
    assert rewrite({"type": "string", "nullable": True}) == {
        "anyOf": [{"type": "string"}, {"type": "null"}]
    }
    assert rewrite({"type": "string", "nullable": False}) == {"type": "string"}
    # A property *named* nullable is a schema, not the keyword:
    props = {"properties": {"nullable": {"type": "boolean"}}}
    assert rewrite(props) == props
    assert rewrite({"type": "number", "minimum": 0, "exclusiveMinimum": True}) == {
        "type": "number", "exclusiveMinimum": 0
    }
    assert rewrite({"type": "number", "minimum": 0, "exclusiveMinimum": False}) == {
        "type": "number", "minimum": 0
    }
