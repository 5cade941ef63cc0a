"""The access log (`tokenlane.access`): one line per request on every route, with its status;
`logging.format: json` lines parse; no secret in any line (the request log: test_request_log)."""

from __future__ import annotations

import json
import logging

import httpx
import openai
import pytest

from tokenlane.logformat import JsonFormatter

from .harness import MASTER_KEY, SIM_KEY
from .keys.support import as_key, create_key, keyed_stack, quick

HELLO = [{"role": "user", "content": "hello"}]


def _access_lines(caplog: pytest.LogCaptureFixture) -> dict[str, logging.LogRecord]:
    lines: dict[str, logging.LogRecord] = {}
    for record in caplog.records:
        if record.name == "tokenlane.access":
            rid = record.fields["request_id"]  # type: ignore[attr-defined]
            assert rid not in lines, f"two access lines for {rid}"
            lines[rid] = record
    return lines


def test_every_route_gets_one_access_line_with_its_status(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO)
    sent: dict[str, int] = {}  # request id -> the status the client saw
    with keyed_stack([quick("a")], {"m": ["a"]}, str(tmp_path)) as s:
        key_id, secret = create_key(s, name="team")
        client = s.openai()

        def tag(name: str) -> dict[str, str]:
            return {"x-request-id": name}

        raw = client.chat.completions.with_raw_response.create(
            model="m", messages=HELLO, extra_headers=tag("chat"))
        sent["chat"] = raw.status_code
        with client.chat.completions.with_streaming_response.create(
                model="m", messages=HELLO, stream=True, extra_headers=tag("chat-stream")) as r:
            list(r.iter_lines())
            sent["chat-stream"] = r.status_code
        raw = as_key(s, secret).chat.completions.with_raw_response.create(
            model="m", messages=HELLO, extra_headers=tag("by-key"))
        sent["by-key"] = raw.status_code
        raw = client.responses.with_raw_response.create(
            model="m", input="hello", extra_headers=tag("responses"))
        sent["responses"] = raw.status_code
        sent["models"] = client.models.with_raw_response.list(
            extra_headers=tag("models")).status_code
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{s.url}/v1", api_key="wrong", max_retries=0
                          ).models.list(extra_headers=tag("bad-key"))
        sent["bad-key"] = 401
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="nope", messages=HELLO,
                                           extra_headers=tag("no-model"))
        sent["no-model"] = 404
        auth = {"authorization": f"Bearer {MASTER_KEY}"}
        with httpx.Client(base_url=s.url, headers=auth, timeout=30) as h:
            for rid, method, path, body in [
                ("messages", "POST", "/v1/messages",
                 {"model": "m", "max_tokens": 10, "messages": HELLO}),
                ("embeddings", "POST", "/v1/embeddings", {"model": "m", "input": "x"}),
                ("completions", "POST", "/v1/completions", {"model": "m", "prompt": "x"}),
                ("stats", "GET", "/v1/router/stats", None),
                ("metrics", "GET", "/metrics", None),
                ("admin", "GET", "/admin/keys", None),
                ("dashboard", "GET", "/dashboard", None),
                ("healthz", "GET", f"/healthz?key={MASTER_KEY}", None),
            ]:
                r = h.request(method, path, json=body, headers={"x-request-id": rid})
                sent[rid] = r.status_code
    lines = _access_lines(caplog)
    assert set(sent) <= set(lines)
    for rid, status in sent.items():
        fields = lines[rid].fields  # type: ignore[attr-defined]
        assert fields["status"] == status, (rid, fields)
        assert fields["duration_ms"] >= 0 and fields["client"].startswith("127.0.0.1:")
        assert "?" not in fields["path"]
    assert sent["chat"] == 200 and sent["models"] == 200 and sent["healthz"] == 200
    assert lines["by-key"].fields["key_id"] == key_id  # type: ignore[attr-defined]
    assert lines["chat"].fields["key_id"] == "master"  # type: ignore[attr-defined]
    assert lines["bad-key"].fields["key_id"] is None  # type: ignore[attr-defined]
    formatter = JsonFormatter()
    for record in caplog.records:  # every line of the run, as `format: json` writes it
        line = formatter.format(record)
        assert json.loads(line)["logger"] == record.name
        if not record.name.startswith("tokenlane"):
            continue  # the test's own httpx client logs the URL it was given, query and all
        for secret_text in (MASTER_KEY, SIM_KEY, secret):
            assert secret_text not in line and secret_text not in record.getMessage()


def test_access_false_writes_no_access_lines(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO)
    with keyed_stack([quick("a")], {"m": ["a"]}, str(tmp_path),
                     extra={"logging": {"access": False}}) as s:
        s.openai().chat.completions.create(model="m", messages=HELLO)
    assert not [r for r in caplog.records if r.name == "tokenlane.access"]
