"""The `tokenlane` command as users run it: a real process, real ports, signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import openai
import pytest

from tokenlane.cli import main

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float = 30) -> list[str]:
    """Read the process's stdout until a line contains `needle` (bounded by `timeout`).

    A thread reads: select() on the pipe misses lines the file object has already buffered
    (seen: "tokenlane: ready" in the buffer, select() waiting 30 s for more)."""
    assert proc.stdout is not None
    stdout = proc.stdout
    lines: list[str] = []

    def read() -> None:
        for line in stdout:
            lines.append(line)
            if needle in line:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if lines and needle in lines[-1]:
        return lines
    raise AssertionError(f"{needle!r} not printed within {timeout}s; got {lines!r}")


CONFIG = """\
server: {{host: 127.0.0.1, port: {port}, drain_timeout_s: 20, auth: {{enabled: false}}}}
sim:
  port: {sim_port}
  providers:
    - {{name: slow, ttft_s: 0, tokens_per_s: 10, output_tokens: 15}}
providers:
  slow: {{base_url: "http://127.0.0.1:{sim_port}/slow/v1"}}
models:
  m:
    deployments:
      - {{provider: slow, model: m, price: {{input: 1, output: 1}}}}
"""


@pytest.fixture
def served(tmp_path: Path):
    port, sim_port = free_port(), free_port()
    path = tmp_path / "serve.yaml"
    path.write_text(CONFIG.format(port=port, sim_port=sim_port))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tokenlane.cli", "serve", "--config", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        banner = wait_for_line(proc, "tokenlane: ready")
        yield proc, f"http://127.0.0.1:{port}", "".join(banner)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_serve_runs_gateway_and_simulator_in_one_command(served) -> None:
    _proc, url, banner = served
    assert f"tokenlane gateway on {url}" in banner and "curl" in banner
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                           max_tokens=2)
    assert reply.choices[0].message.content


def test_sigterm_drains_streams_in_flight(served) -> None:
    proc, url, _ = served
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=30) as r:
        lines = r.iter_lines()
        assert next(lines).startswith("data: ")
        proc.send_signal(signal.SIGTERM)
        rest = list(lines)  # ~1.5 s of tokens still to come
    assert [x for x in rest if x][-1] == "data: [DONE]"
    # uvicorn re-raises the signal once drained, so the exit status is "terminated by SIGTERM".
    assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz")


def test_bad_config_is_one_line_and_exit_code_2(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("models: {m: {deployments: [{provider: nowhere, model: x, "
                    "price: {input: 1, output: 1}}]}}\n")
    assert main(["check", "--config", str(path)]) == 2
    # One line per problem: the unknown provider, and (auth on by default) the master keys.
    first, keys, total = capsys.readouterr().err.strip().splitlines()
    assert f"{path}:1: models.m.deployments[0].provider" in first
    assert "TOKENLANE_MASTER_KEYS is not set" in keys and total == "tokenlane: 2 problems"


def test_check_accepts_the_demo(capsys) -> None:
    assert main(["check", "--config", str(ROOT / "config" / "demo.yaml")]) == 0
    # Chat models llama-3.3-70b and qwen-3-32b, and the embedding model nomic-embed-text.
    assert "ok (3 models, 8 deployments)" in capsys.readouterr().out


def test_bad_sim_config_is_one_line_and_exit_code_2(tmp_path: Path, capsys) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text("sim:\n  providers:\n    - {name: a, speed: 3}\n")
    assert main(["sim", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"tokenlane: config error: {path}:3: sim.providers[0].speed: unknown key"


AUTH_ON = """\
server: {port: 1, auth: {enabled: true, master_keys_env: TL_CLI_TEST_KEYS}}
providers:
  p: {base_url: "http://127.0.0.1:9/v1"}
models:
  m:
    deployments:
      - {provider: p, model: m, price: {input: 1, output: 1}}
"""


def tokenlane(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tokenlane.cli", *args], check=False,
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)


def test_missing_master_keys_fail_check_and_serve_alike(tmp_path: Path) -> None:
    path = tmp_path / "auth.yaml"
    path.write_text(AUTH_ON)
    env = {k: v for k, v in os.environ.items() if k != "TL_CLI_TEST_KEYS"}
    expected = ("server.auth.master_keys_env: environment variable TL_CLI_TEST_KEYS is not set")
    for command in ("check", "serve"):
        done = tokenlane(command, "--config", str(path), env=env)
        assert done.returncode == 2, done.stderr
        # `check` adds the line of the key (file:line:).
        assert done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith(f"tokenlane: config error: {path}"), done.stderr
        assert f": {expected}" in done.stderr, done.stderr
    ok = tokenlane("check", "--config", str(path), env={**env, "TL_CLI_TEST_KEYS": "k1"})
    assert ok.returncode == 0 and "ok (1 models, 1 deployments)" in ok.stdout
