"""Tracing off costs nothing: without `telemetry.otel` no OpenTelemetry SDK module is
imported and no tracer exists; without the extra installed, turning it on is a config error
that says what to install. Each case runs in a fresh interpreter, since this one has the SDK
imported already."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tokenlane.config import ConfigError, parse_settings

BUILD = textwrap.dedent("""
    import sys
    from tokenlane.config import parse_settings
    from tokenlane.server import create_app
    data = {"server": {"auth": {"enabled": False}},
            "providers": {"up": {"base_url": "http://127.0.0.1:9/v1"}},
            "models": {"m": {"deployments": [{"provider": "up", "model": "m"}]}},
            "telemetry": {"otel": OTEL}}
""")
# Makes the SDK and the exporter look uninstalled, as in an install without the extra.
NO_EXTRA = textwrap.dedent("""
    import importlib.abc
    class NoExtra(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.startswith(("opentelemetry.sdk", "opentelemetry.exporter")):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None
    sys.meta_path.insert(0, NoExtra())
""")


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, timeout=120)


def test_off_imports_no_sdk_and_builds_no_tracer() -> None:
    done = run(BUILD.replace("OTEL", "False") + textwrap.dedent("""
        app = create_app(parse_settings(data), env={})
        assert app.state.telemetry is None and app.state.engine.tracer is None
        ours = [m for m in sys.modules if m.startswith("tokenlane.telemetry.")]
        sdk = [m for m in sys.modules if m.startswith(("opentelemetry.sdk",
                                                      "opentelemetry.exporter"))]
        print(ours, sdk)
    """))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "[]"]


def test_on_imports_the_sdk() -> None:
    # The same probe finds what it looks for when tracing is on.
    done = run(BUILD.replace("OTEL", "True") + textwrap.dedent("""
        app = create_app(parse_settings(data), env={})
        assert app.state.engine.tracer is app.state.telemetry.attempts
        print("opentelemetry.sdk.trace" in sys.modules)
    """))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


def test_without_the_extra_off_works_and_on_says_what_to_install() -> None:
    done = run(BUILD.replace("OTEL", "False") + NO_EXTRA + textwrap.dedent("""
        from tokenlane.config import ConfigError
        create_app(parse_settings(data), env={})
        data["telemetry"]["otel"] = True
        try:
            create_app(parse_settings(data), env={}, source="gw.yaml")
        except ConfigError as exc:
            print(exc)
    """))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("gw.yaml: telemetry.otel: true needs opentelemetry.sdk")
    assert "pip install 'tokenlane[otel]'" in done.stdout


def test_check_names_the_missing_extra(tmp_path) -> None:
    config = tmp_path / "gw.yaml"
    config.write_text(textwrap.dedent("""
        server: {auth: {enabled: false}}
        providers: {up: {base_url: "http://127.0.0.1:9/v1"}}
        models: {m: {deployments: [{provider: up, model: m}]}}
        telemetry:
          otel: true
    """), encoding="utf-8")
    done = run("import sys\n" + NO_EXTRA + textwrap.dedent(f"""
        from tokenlane.configcheck import check_config
        for problem in check_config({str(config)!r}, {{}}).problems:
            print(problem)
    """))
    assert done.returncode == 0, done.stderr
    (problem,) = done.stdout.splitlines()
    assert problem.startswith(f"{config}:6: telemetry.otel: true needs opentelemetry.sdk")
    assert problem.endswith("pip install 'tokenlane[otel]'")


def test_the_endpoint_must_be_a_url() -> None:
    data = {"models": {"m": {"deployments": [{"provider": "up", "model": "m"}]}},
            "providers": {"up": {"base_url": "http://127.0.0.1:9/v1"}},
            "telemetry": {"otel": True, "endpoint": "collector:4318/v1/traces"}}
    with pytest.raises(ConfigError, match=r"telemetry\.endpoint: .* not an http:// or https://"):
        parse_settings(data)
