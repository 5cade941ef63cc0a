"""`tokenlane check` lists every problem in one run, each with file:line: key; the command line
helps (--version, options before or after the command, help for every option, the dashboard's
address in the banner)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tokenlane.cli import _parser, main
from tokenlane.config import ConfigError, load_settings, parse_settings

from .test_cli import ROOT, free_port, wait_for_line

SEVERAL = """\
server:
  auth:
    master_keys_env: TL_CHECK_NOPE_KEYS
providers:
  a: {base_url: "http://127.0.0.1:9/v1", api_key_env: TL_CHECK_A_KEY}
  b: {base_url: "http://127.0.0.1:9/v1", api_key_env: TL_CHECK_B_KEY,
      headers_env: {X-Org: TL_CHECK_ORG}}
models:
  m:
    deployments:
      - {provider: a, model: x}
      - {provider: b, model: y}
      - {provider: c, model: z}
"""

INVALID = """\
providers:
  a: {base_url: "api.example.com/v1", colour: red}
models:
  m:
    deployments:
      - {provider: a}
routing: {polcy: price}
"""


def check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    path = tmp_path / "tokenlane.yaml"
    path.write_text(text)
    code = main(["check", "--config", str(path)])
    return code, capsys.readouterr().err.strip().splitlines()


def test_every_missing_variable_and_the_unknown_provider(tmp_path: Path, capsys) -> None:
    code, lines = check(tmp_path, SEVERAL, capsys)
    path = tmp_path / "tokenlane.yaml"
    assert code == 2
    assert lines == [
        (f"tokenlane: config error: {path}:5: providers.a.api_key_env: environment variable "
        "TL_CHECK_A_KEY is not set (provider 'a' is used by a model)"),
        (f"tokenlane: config error: {path}:6: providers.b.api_key_env: environment variable "
        "TL_CHECK_B_KEY is not set (provider 'b' is used by a model)"),
        (f"tokenlane: config error: {path}:7: providers.b.headers_env.X-Org: environment "
        "variable TL_CHECK_ORG is not set (provider 'b' is used by a model)"),
        (f"tokenlane: config error: {path}:13: models.m.deployments[2].provider: unknown "
        "provider 'c' (known: a, b)"),
        (f"tokenlane: config error: {path}:3: server.auth.master_keys_env: environment variable "
        "TL_CHECK_NOPE_KEYS is not set (set it, or disable auth explicitly with "
        "server.auth.enabled: false)"),
        "tokenlane: 5 problems",
    ]


def test_every_validation_error_unknown_keys_beside_missing_ones(tmp_path: Path,
                                                                   capsys) -> None:
    code, lines = check(tmp_path, INVALID, capsys)
    path = tmp_path / "tokenlane.yaml"
    assert code == 2
    assert lines == [
        (f"tokenlane: config error: {path}:2: providers.a.base_url: 'api.example.com/v1' is "
        "not an http:// or https:// URL with a host"),
        f"tokenlane: config error: {path}:2: providers.a.colour: unknown key",
        f"tokenlane: config error: {path}:6: models.m.deployments[0].model: Field required",
        f"tokenlane: config error: {path}:7: routing.polcy: unknown key",
        "tokenlane: 4 problems",
    ]


def test_a_key_given_twice_is_an_error(tmp_path: Path, capsys) -> None:
    text = ("providers:\n  a: {base_url: 'http://127.0.0.1:9/v1'}\n"
            "  a: {base_url: 'http://127.0.0.1:8/v1'}\n"
            "models: {m: {deployments: [{provider: a, model: x, colour: red}]}}\n")
    code, lines = check(tmp_path, text, capsys)
    path = tmp_path / "tokenlane.yaml"
    assert code == 2
    assert lines == [(f"tokenlane: config error: {path}:3: providers.a: given twice (first on "
                      "line 2); YAML would keep only the last"),
                     (f"tokenlane: config error: {path}:4: models.m.deployments[0].colour: "
                     "unknown key"),
                     "tokenlane: 2 problems"]
    with pytest.raises(ConfigError, match="given twice"):  # serve refuses it too
        load_settings(tmp_path / "tokenlane.yaml")


def test_check_without_config_checks_the_embedded_default(capsys, monkeypatch) -> None:
    for name in list(os.environ):
        if name.endswith("_API_KEY"):
            monkeypatch.delenv(name)
    assert main(["check"]) == 0
    assert "embedded demo.yaml" in capsys.readouterr().out


def test_price_is_optional_and_free() -> None:
    settings = parse_settings({"providers": {"local": {"base_url": "http://127.0.0.1:9/v1"}},
                               "models": {"m": {"deployments": [{"provider": "local",
                                                                 "model": "x"}]}}})
    [deployment] = settings.resolve({}).models["m"].deployments
    assert (deployment.price.input, deployment.price.output) == (0, 0)


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == "tokenlane 0.1.0"


def test_log_level_before_or_after_the_command() -> None:
    parser = _parser()
    assert parser.parse_args(["check"]).log_level == "info"
    assert parser.parse_args(["--log-level", "debug", "check"]).log_level == "debug"
    assert parser.parse_args(["check", "--log-level", "error"]).log_level == "error"
    assert parser.parse_args(["keys", "list", "--log-level", "warning"]).log_level == "warning"


def _commands(parser: argparse.ArgumentParser, path: str = "tokenlane"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                yield from _commands(command, f"{path} {name}")


def test_every_option_has_help_and_the_top_help_lists_every_command() -> None:
    parser = _parser()
    for path, command in _commands(parser):
        for action in command._actions:
            if not isinstance(action, argparse._SubParsersAction):
                assert action.help, f"{path}: {action.option_strings or action.dest} has no help"
    top = parser.format_help()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name in sub.choices:
        assert f"    {name} " in top, name


def test_serve_prints_where_the_dashboard_is(tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "serve.yaml"
    path.write_text(f"server: {{host: 127.0.0.1, port: {port}, auth: {{enabled: false}}}}\n"
                    "providers: {p: {base_url: 'http://127.0.0.1:9/v1'}}\n"
                    "models: {m: {deployments: [{provider: p, model: x}]}}\n"
                    "routing: {probes: {enabled: false}}\n")
    proc = subprocess.Popen([sys.executable, "-m", "tokenlane.cli", "serve", "--config",
                             str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        banner = "".join(wait_for_line(proc, "tokenlane: ready"))
        url = f"http://127.0.0.1:{port}/dashboard"
        assert f"dashboard: {url}" in banner
        page = httpx.get(url)
        assert page.status_code == 200 and 'id="models"' in page.text
    finally:
        proc.kill()
        proc.wait(timeout=10)
