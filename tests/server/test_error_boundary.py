"""The last-resort error boundary: a bug becomes an OpenAI-shaped 500 and one log line."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from tokenlane.server.middleware import RequestContextMiddleware
from tokenlane.tracebacks import one_line

from ..contract import validate_error


async def broken_app(scope: Any, receive: Any, send: Any) -> None:
    {}["missing"]  # a bug, on purpose


async def test_bug_is_a_500_in_openai_shape_and_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    transport = httpx.ASGITransport(RequestContextMiddleware(broken_app))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        r = await http.get("/v1/models", headers={"x-request-id": "req-1"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "req-1"
    validate_error(r.json())
    assert "Traceback" not in r.text and "missing" not in r.text
    [record] = [rec for rec in caplog.records if rec.name == "tokenlane.server"]
    assert record.exc_info is None and "\n" not in record.getMessage()
    assert "req-1" in record.getMessage()
    assert "KeyError('missing') at tests/server/test_error_boundary.py:" in record.getMessage()


def test_one_line_names_the_innermost_frame_and_cuts_long_messages() -> None:
    def inner() -> None:
        raise ValueError("x" * 1000)

    try:
        inner()
    except ValueError as exc:
        line = one_line(exc)
    assert line.endswith("in inner") and "test_error_boundary.py:" in line
    assert len(line) < 300 and "\n" not in line
    assert one_line(RuntimeError("never raised")) == "RuntimeError('never raised')"
