"""Check response bodies against OpenAI's official OpenAPI spec (components.schemas).

The spec is not part of this repository. It is looked up at

    $OPENAI_OPENAPI_SPEC                                  (if the variable is set), else
    <repo root>/../shared/openai-openapi/openapi.yaml     (repo root = parent of tests/)

and every entry point here (`load_spec`, `validate`, `validate_*`) calls `pytest.skip` when it
is not there, so a plain clone runs the suite with these checks skipped instead of failing.

    from tests.contract import validate_chat_completion
    validate_chat_completion(resp.json())      # AssertionError naming the bad field, or None

The spec is parsed once per process (about 1.2 s with libyaml's CSafeLoader; ~87k lines) and
one validator is built per schema name; nothing is written to disk.

How the spec is read (OpenAPI 3.1 schemas are JSON Schema 2020-12 plus annotations):

* `$ref: '#/components/schemas/X'` is resolved with `referencing`, the whole spec document
  being registered as one 2020-12 resource (the spec declares no `jsonSchemaDialect`).
* `discriminator`, `example`, `x-*` (`x-stainless-const`, `x-oaiMeta`, ...), `deprecated`,
  `default`, `title` are annotations: ignored.
* `format` is asserted for the formats jsonschema knows without extra packages (`date`,
  `date-time`, `email`, ...). `unixtime` is an OpenAI-only name and is not checked beyond its
  `type: integer`; `uri` is not checked (needs rfc3987, not installed).
* Two OpenAPI **3.0** leftovers in this 3.1 document are given their 3.0 meaning instead of
  being silently dropped, since read literally as 2020-12 they would contradict the spec's
  intent and OpenAI's own traffic:

  - `nullable: true` (109 places under components, e.g. the stream chunk's `choices[].finish_reason`,
    `choices[].logprobs` and top-level `usage`). 2020-12 has no such keyword, so
    `finish_reason: null` -- which OpenAI sends in every chunk but the last -- would fail
    `type: string` + `enum`. Each such schema `S` is rewritten to `anyOf: [S, {type: null}]`.
    `nullable: false` is dropped (it is the default). Nothing else is relaxed.
  - boolean `exclusiveMinimum`/`exclusiveMaximum: true` next to `minimum`/`maximum`
    (fine-tuning hyperparameters only) become the numeric 2020-12 form; `false` is dropped.

Quirks of the spec itself that a server must live with (not weakened here):

* No schema sets `additionalProperties: false`: extra keys (e.g. `reasoning_content`) pass.
* `Model` has no `type: object`, so a non-object (a string, a list) passes `Model` on its own;
  `required` only bites on objects.
* Nullability is explicit and easy to get wrong: in a non-stream `chat.completion`, `usage`,
  `system_fingerprint`, `message.tool_calls`, `message.function_call`,
  `message.annotations` and `usage.*_tokens_details` may be absent but must NOT be `null`;
  `choices[].logprobs`, `message.content` and `message.refusal` must be present and may be
  `null`; `choices[].finish_reason` must be a string from the enum (never `null`).
* In a stream chunk, `choices[].finish_reason` is required and may be `null`; `usage` and
  `choices[].logprobs` may be `null` or absent; `delta.tool_calls` and `system_fingerprint`
  may be absent but not `null`; a usage-only final chunk with `choices: []` is valid.
* `Error.param` and `Error.code` are required but nullable; `code` must be a string or null
  (an integer code such as `429` fails). `Error.type` must be a string.
* `integer` follows JSON Schema: `1.0` counts as an integer, `True` does not.
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "SPEC_ENV_VAR",
    "load_spec",
    "schema_names",
    "spec_path",
    "validate",
    "validate_chat_chunk",
    "validate_chat_completion",
    "validate_error",
    "validate_model",
    "validate_model_list",
]

SPEC_ENV_VAR = "OPENAI_OPENAPI_SPEC"
_REPO_ROOT = Path(__file__).resolve().parent.parent
_DEFAULT_SPEC = _REPO_ROOT.parent / "shared" / "openai-openapi" / "openapi.yaml"
# Base URI under which the whole spec document is registered; refs inside it ("#/...")
# resolve against it.
_SPEC_URI = "urn:openai-openapi"
_MAX_ERRORS = 8  # errors listed in one AssertionError
_MAX_MESSAGE = 300  # characters kept of one validator message (they repr the instance)


# --------------------------------------------------------------------------------------
# Finding and loading the spec


def _configured_path() -> Path:
    env = os.environ.get(SPEC_ENV_VAR)
    return Path(env).expanduser() if env else _DEFAULT_SPEC


def spec_path() -> Path | None:
    """The spec file to use, or None when it does not exist (e.g. in a user's clone)."""
    path = _configured_path()
    return path if path.is_file() else None


def _require_spec_path() -> Path:
    path = spec_path()
    if path is None:
        where = _configured_path()
        how = f"${SPEC_ENV_VAR}" if os.environ.get(SPEC_ENV_VAR) else "default location"
        pytest.skip(f"OpenAI OpenAPI spec not found at {where} ({how})")
    return path


def load_spec() -> dict[str, Any]:
    """The parsed spec, exactly as in the file. Cached per path; skips the test if absent."""
    return _load(_require_spec_path().resolve())


@functools.cache
def _load(path: Path) -> dict[str, Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open("rb") as f:
        spec = yaml.load(f, Loader=loader)
    if not isinstance(spec, dict) or not isinstance(
        spec.get("components", {}).get("schemas"), dict
    ):
        raise TypeError(f"{path}: not an OpenAPI document with components.schemas")
    return spec


def schema_names() -> list[str]:
    """Every name under components.schemas (skips the test if the spec is absent)."""
    return sorted(load_spec()["components"]["schemas"])


# --------------------------------------------------------------------------------------
# OpenAPI 3.0 leftovers -> JSON Schema 2020-12 (see module docstring)


def _to_2020_12(node: Any) -> Any:
    """A copy of `node` with `nullable` and boolean exclusive bounds in 2020-12 form.

    Only dicts whose `nullable` value is a boolean are touched, so a *property named*
    "nullable" (whose value is a schema dict) is left alone.
    """
    if isinstance(node, list):
        return [_to_2020_12(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_2020_12(v) for k, v in node.items()}
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), bool) and out.pop(bound) and limit in out:
            out[bound] = out.pop(limit)
    nullable = out.get("nullable")
    if isinstance(nullable, bool):
        del out["nullable"]
        if nullable:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def _registry(path: Path) -> Any:
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    spec = _load(path)
    # Schemas are only reached through components (every $ref inside components points at
    # #/components/schemas/...), so the rest of the document (paths, ...) is left out.
    document = {"components": _to_2020_12(spec["components"])}
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    return Registry().with_resource(_SPEC_URI, resource)


@functools.cache
def _validator(path: Path, schema_name: str) -> Any:
    from jsonschema import Draft202012Validator

    schemas = _load(path)["components"]["schemas"]
    if schema_name not in schemas:
        close = difflib.get_close_matches(schema_name, list(schemas), n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"no schema {schema_name!r} in components.schemas of {path}{hint}")
    schema = {"$ref": f"{_SPEC_URI}#/components/schemas/{schema_name}"}
    return Draft202012Validator(
        schema,
        registry=_registry(path),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


# --------------------------------------------------------------------------------------
# Validation


def _json_path(parts: Iterable[Any]) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 4] + " ..."


def _alternatives(error: Any) -> list[Any]:
    """The errors worth showing under an anyOf/oneOf failure.

    Branches that fail only because the instance is of another kind altogether (the
    `{type: null}` half of a nullable field; the `custom` half of a tool call whose "type"
    is `function`) are dropped when some branch got further, so what is left says what is
    actually wrong. If every branch is off target, all are shown.
    """
    branches: dict[Any, list[Any]] = {}
    for sub in error.context:
        key = sub.relative_schema_path[0] if sub.relative_schema_path else None
        branches.setdefault(key, []).append(sub)

    def off_target(errs: list[Any]) -> bool:
        return any(
            (e.validator == "type" and not e.relative_path)
            or (e.validator in ("enum", "const") and list(e.relative_path) == ["type"])
            for e in errs
        )

    kept = [errs for errs in branches.values() if not off_target(errs)]
    return [e for errs in (kept or branches.values()) for e in errs]


def _describe(error: Any, depth: int = 0) -> list[str]:
    lines = [f"{_json_path(error.absolute_path)}: {_clip(error.message)}"]
    if error.context and depth < 3:
        for sub in _alternatives(error)[:_MAX_ERRORS]:
            lines += ["    " + line for line in _describe(sub, depth + 1)]
    return lines


def validate(schema_name: str, instance: object) -> None:
    """Assert that `instance` (a decoded JSON value) is valid against
    components.schemas[schema_name]; skip the test if the spec is absent.

    Raises AssertionError listing each violation as `<path in instance>: <message>`, e.g.
    `$.choices[0].finish_reason: 'done' is not one of ['stop', ...]`. An unknown schema name
    is a KeyError (a bug in the test, not in the response).
    """
    path = _require_spec_path().resolve()
    validator = _validator(path, schema_name)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    lines = ["\n    ".join(_describe(e)) for e in errors[:_MAX_ERRORS]]
    if len(errors) > _MAX_ERRORS:
        lines.append(f"... and {len(errors) - _MAX_ERRORS} more")
    count = f"{len(errors)} violation" + ("s" if len(errors) != 1 else "")
    raise AssertionError(
        f"response does not match OpenAI schema {schema_name} ({count}):\n  - "
        + "\n  - ".join(lines)
    )


def validate_chat_completion(obj: object) -> None:
    """A non-streaming `POST /v1/chat/completions` response body."""
    validate("CreateChatCompletionResponse", obj)


def validate_chat_chunk(obj: object) -> None:
    """One decoded `data:` payload of a streaming chat completion (not the `[DONE]` line)."""
    validate("CreateChatCompletionStreamResponse", obj)


def validate_error(obj: object) -> None:
    """An error response body: `{"error": {"message", "type", "param", "code"}}`."""
    validate("ErrorResponse", obj)


def validate_model_list(obj: object) -> None:
    """A `GET /v1/models` response body."""
    validate("ListModelsResponse", obj)


def validate_model(obj: object) -> None:
    """A `GET /v1/models/{model}` response body (or one entry of the list)."""
    validate("Model", obj)
