"""The start-up banner tells the truth about the configured auth variable."""

from __future__ import annotations

import pytest

from tokenlane.cli import _banner
from tokenlane.config import parse_settings

MODELS = {"m": {"deployments": [{"provider": "p", "model": "x",
                                 "price": {"input": 1, "output": 1}}]}}


@pytest.mark.parametrize(("auth", "shown"), [
    ({"master_keys_env": "MY_GATEWAY_KEYS"}, "Authorization: Bearer $MY_GATEWAY_KEYS"),
    ({}, "Authorization: Bearer $TOKENLANE_MASTER_KEYS"),
    ({"enabled": False}, "no auth"),
])
def test_banner_names_the_configured_key_variable(capsys, auth, shown) -> None:
    settings = parse_settings({"server": {"auth": auth},
                               "providers": {"p": {"base_url": "http://127.0.0.1:9/v1"}},
                               "models": MODELS})
    _banner(settings, "x.yaml")
    out = capsys.readouterr().out
    assert shown in out
    if auth.get("master_keys_env"):
        assert "TOKENLANE_MASTER_KEYS" not in out


@pytest.mark.parametrize(("telemetry", "shown"), [
    ({}, None),
    ({"otel": True, "endpoint": "http://collector:4318/v1/traces"},
     "tracing: OpenTelemetry, OTLP to http://collector:4318/v1/traces"),
    ({"otel": True, "exporter": "console"}, "tracing: OpenTelemetry, printed to stdout"),
])
def test_banner_says_where_spans_go(capsys, telemetry, shown) -> None:
    settings = parse_settings({"server": {"auth": {"enabled": False}},
                               "providers": {"p": {"base_url": "http://127.0.0.1:9/v1"}},
                               "models": MODELS, "telemetry": telemetry})
    _banner(settings, "x.yaml")
    out = capsys.readouterr().out
    if shown is None:
        assert "tracing" not in out
    else:
        assert shown in out
