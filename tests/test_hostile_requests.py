"""Hostile clients: whatever arrives, the answer is an OpenAI-shaped error with the right status
(never a 500, never a traceback), and the chat route takes JSON only."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tokenlane.sim import SimProviderSpec

from .contract import validate_error
from .harness import MASTER_KEY, stack

FAST = SimProviderSpec(name="fast", ttft_s=0, tokens_per_s=1000, output_tokens=4, time_scale=0)
AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
JSON = {**AUTH, "content-type": "application/json"}


@pytest.fixture(scope="module")
def gw():
    with stack([FAST], {"m": ["fast"]}) as s:
        yield s


def nested(depth: int) -> Any:
    value: Any = "deep"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def post(gw: Any, body: bytes, headers: dict[str, str] = JSON) -> httpx.Response:
    return httpx.post(f"{gw.url}/v1/chat/completions", content=body, headers=headers)


@pytest.mark.parametrize("field", ["messages", "tools", "response_format", "provider"])
def test_deep_nesting_is_a_400_naming_the_field(gw, field: str) -> None:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    if field == "messages":
        body["messages"] = [{"role": "user", "content": [nested(300)]}]
    else:
        body[field] = nested(300)
    r = post(gw, _dumps(body))
    assert r.status_code == 400, r.text
    validate_error(r.json())
    assert r.json()["error"]["param"] == field
    assert "nested" in r.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_deep_nesting_in_the_routing_options_header_is_a_400_naming_it(gw, path: str) -> None:
    """The header's JSON gets the body's depth check before its options are read."""
    options = _dumps({"order": nested(300)}).decode()
    body = {"model": "m", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(f"{gw.url}{path}", content=_dumps(body),
                   headers={**JSON, "x-tokenlane-provider": options})
    assert r.status_code == 400, r.text
    if path == "/v1/chat/completions":
        validate_error(r.json())
        assert r.json()["error"]["param"] == "x-tokenlane-provider"
    assert "'x-tokenlane-provider' is nested more than 128 levels deep" in r.text
    shallow = _dumps({"order": ["fast/fast-m"], "max_attempts": 1}).decode()
    r = httpx.post(f"{gw.url}{path}", content=_dumps(body),
                   headers={**JSON, "x-tokenlane-provider": shallow})
    assert r.status_code == 200, r.text


def test_nesting_past_the_json_parser_limit_is_a_400(gw) -> None:
    r = post(gw, b'{"model": "m", "messages": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    assert r.status_code == 400
    validate_error(r.json())


def test_reasonable_nesting_is_served(gw) -> None:
    schema = nested(40)
    r = post(gw, _dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                         "response_format": {"type": "json_schema", "json_schema": schema}}))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/jsonx"])
def test_chat_wants_a_json_content_type(gw, content_type: str | None) -> None:
    """With auth off a web page could POST text/plain cross-site without a preflight: only
    application/json is read."""
    headers = dict(AUTH)
    if content_type is not None:
        headers["content-type"] = content_type
    r = post(gw, b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}', headers)
    assert r.status_code == 415, r.text
    validate_error(r.json())
    assert r.json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON; charset=utf-8"])
def test_json_content_types_are_read(gw, content_type: str) -> None:
    r = post(gw, b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}',
             {**AUTH, "content-type": content_type})
    assert r.status_code == 200, r.text


def _dumps(body: Any) -> bytes:
    # The standard library's encoder: orjson refuses to write what is nested this deep.
    import json
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    try:
        return json.dumps(body).encode()
    finally:
        sys.setrecursionlimit(limit)


def test_metrics_follow_auth() -> None:
    """/metrics names deployments and shows spend and circuit states: no key, no metrics."""
    with stack([FAST], {"m": ["fast"]}) as s:
        r = httpx.get(f"{s.url}/metrics")
        assert r.status_code == 401
        validate_error(r.json())
        r = httpx.get(f"{s.url}/metrics", headers=AUTH)
        assert r.status_code == 200 and "tokenlane_requests" in r.text
    public = {"server": {"auth": {"enabled": True, "master_keys_env": "TL_TEST_KEYS"},
                         "metrics": {"public": True}}}
    with stack([FAST], {"m": ["fast"]}, extra=public) as s:
        assert httpx.get(f"{s.url}/metrics").status_code == 200
        assert httpx.get(f"{s.url}/v1/models").status_code == 401  # the rest stays closed
