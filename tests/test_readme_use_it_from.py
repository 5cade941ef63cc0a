"""Every snippet of the README's "Use it from…" section runs against the demo.

The demo is `config/demo.yaml` as `tokenlane serve` runs it (its simulated providers, its
models, auth off), on free loopback ports and with the simulated delays scaled to zero so the
snippets take seconds. Each snippet runs as written, in its own process, with only the
gateway's address replaced.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tokenlane.config import parse_settings
from tokenlane.server import create_app
from tokenlane.sim import SimProviderSpec, Simulator

from .loopback import serve

ROOT = Path(__file__).resolve().parents[1]
DEMO_URL = "http://127.0.0.1:8000"
TIMEOUT_S = 120


def section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^## Use it from…\n(.*?)^## ", readme, re.DOTALL | re.MULTILINE)
    assert found is not None, "README has no 'Use it from…' section"
    return found.group(1)


SNIPPETS = re.findall(r"```(python|bash)\n(.*?)```", section(), re.DOTALL)


@pytest.fixture(scope="module")
def demo() -> Iterator[str]:
    data = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text(encoding="utf-8"))
    specs = [SimProviderSpec(**{**p, "time_scale": 0}) for p in data.pop("sim")["providers"]]
    sim = Simulator(specs)
    with serve(sim.app) as sim_url:
        for name, provider in data["providers"].items():
            provider["base_url"] = Simulator.base_url(sim_url, name)
        with serve(create_app(parse_settings(data), env={})) as url:
            yield url


def run(command: list[str], url: str, env: dict[str, str] | None = None) -> str:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("OPENAI_", "ANTHROPIC_", "LANGSMITH_", "LANGCHAIN_"))}
    done = subprocess.run([part.replace(DEMO_URL, url) for part in command], env={
        **clean, **(env or {})}, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_section_has_every_client() -> None:
    kinds = [kind for kind, _ in SNIPPETS]
    assert kinds.count("python") == 4 and kinds.count("bash") == 2
    text = section()
    for client in ("openai SDK", "anthropic SDK", "Claude Code", "LangChain", "curl"):
        assert client in text


@pytest.mark.parametrize("code", [c for k, c in SNIPPETS if k == "python"],
                         ids=["openai", "openai-embeddings-completions", "anthropic", "langchain"])
def test_python_snippet_runs(demo: str, code: str) -> None:
    out = run([sys.executable, "-c", code], demo)
    assert out.strip(), "the snippet printed nothing"


def test_curl_snippet_runs(demo: str) -> None:
    [code] = [c for k, c in SNIPPETS if k == "bash" and c.startswith("curl")]
    out = run(["bash", "-eu", "-o", "pipefail", "-c", code], demo)
    assert '"type":"message"' in out
    assert "event: response.output_text.delta" in out and "event: response.completed" in out


def test_claude_code_settings_reach_the_gateway(demo: str) -> None:
    """Claude Code itself is not installed here; Anthropic's SDK reads the same variables,
    so a client built from nothing but them must get an answer from the configured model."""
    [code] = [c for k, c in SNIPPETS if k == "bash" and "ANTHROPIC_BASE_URL" in c]
    exports = "\n".join(line for line in code.splitlines() if line.startswith("export "))
    assert code.strip().splitlines()[-1] == "claude"
    check = ("import anthropic, os; m = anthropic.Anthropic(max_retries=0).messages.create("
             "model=os.environ['ANTHROPIC_MODEL'], max_tokens=16,"
             " messages=[{'role': 'user', 'content': 'hi'}]); print(m.model, m.content[0].text)")
    out = run(["bash", "-eu", "-c", f"{exports}\n{sys.executable} -c \"{check}\""], demo)
    assert out.startswith("llama-3.3-70b ")
