"""Shutdown as users see it: `tokenlane serve` gets SIGTERM while requests are in flight, and
`server.drain_timeout_s` runs out before they end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import anthropic
import openai
import pytest

from tokenlane.sim import SimProviderSpec, Simulator

from .loopback import serve
from .test_cli import free_port, wait_for_line

ROOT = Path(__file__).resolve().parents[1]
USER = [{"role": "user", "content": "hi"}]

CONFIG = """\
server: {{host: 127.0.0.1, port: {port}, drain_timeout_s: 0.5, auth: {{enabled: false}}}}
providers:
  slow: {{base_url: "{slow}"}}
  silent: {{base_url: "{silent}"}}
routing: {{probes: {{enabled: false}}}}
models:
  m:
    deployments:
      - {{provider: slow, model: m, price: {{input: 1, output: 1}}}}
  waits:
    failover: {{ttft_timeout_s: 600, deadline_s: 600}}
    deployments:
      - {{provider: silent, model: w, price: {{input: 1, output: 1}}}}
"""


@pytest.fixture
def sim():
    # `slow` would need 200 s for its answer, `silent` ten minutes for a first token: neither
    # can finish within the drain time.
    simulator = Simulator([
        SimProviderSpec(name="slow", ttft_s=0, tokens_per_s=5, output_tokens=1000),
        SimProviderSpec(name="silent", ttft_s=600),
    ])
    with serve(simulator.app) as url:
        yield simulator, url


def _gateway(tmp_path: Path, sim_url: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG.format(port=port, slow=Simulator.base_url(sim_url, "slow"),
                                  silent=Simulator.base_url(sim_url, "silent")))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tokenlane.cli", "serve", "--config", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wait_for_line(proc, "tokenlane: ready")
    return proc, f"http://127.0.0.1:{port}"


def _rest_of_chat_stream(stream: openai.Stream) -> tuple[int, BaseException | None]:
    """Content chunks read until the stream ends, and the error it ended with."""
    count = 0
    try:
        for chunk in stream:
            count += bool(chunk.choices and chunk.choices[0].delta.content)
    except openai.APIError as exc:
        return count, exc
    return count, None


def test_streams_still_open_when_the_drain_ends_get_the_shutting_down_event(
        sim, tmp_path: Path) -> None:
    simulator, sim_url = sim
    proc, url = _gateway(tmp_path, sim_url)
    try:
        chat = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=30)
        messages = anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0,
                                       timeout=30)
        streams = [chat.chat.completions.create(model="m", messages=USER, stream=True)
                   for _ in range(2)]
        first = [next(iter(s)) for s in streams]  # headers and a first chunk are out
        surface = messages.messages.create(model="m", max_tokens=1000, messages=USER,
                                           stream=True)
        surface_events = iter(surface)
        assert next(surface_events).type == "message_start"
        with ThreadPoolExecutor(1) as pool:
            waiting: Future[object] = pool.submit(
                chat.chat.completions.create, model="waits", messages=USER)
            # Every request is in flight upstream before the signal.
            simulator.wait_counters("slow", lambda c: c.requests == 3, timeout=10)
            simulator.wait_counters("silent", lambda c: c.requests == 1, timeout=10)
            proc.send_signal(signal.SIGTERM)

            ends = [_rest_of_chat_stream(s) for s in streams]
            with pytest.raises(anthropic.APIStatusError, match="shutting down"):
                list(surface_events)
            with pytest.raises(openai.InternalServerError) as not_started:
                waiting.result(timeout=30)
        assert all(f.choices[0].delta.role == "assistant" for f in first)
        for tokens, error in ends:
            assert tokens >= 1  # the answer was under way when the drain ran out
            assert isinstance(error, openai.APIError)
            assert error.code == "gateway_shutting_down" and error.type == "server_error"
        # Nothing had reached that client yet: a plain 503 in OpenAI's shape.
        assert not_started.value.status_code == 503
        assert not_started.value.code == "gateway_shutting_down"
        # The upstream requests were cancelled with them, not left running.
        simulator.wait_counters("slow", lambda c: c.disconnected == 3, timeout=10)
        simulator.wait_counters("silent", lambda c: c.disconnected == 1, timeout=10)
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
        log = proc.communicate(timeout=10)[0]
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log
    said = [line for line in log.splitlines() if "gateway_shutting_down" in line]
    assert len(said) == 1 and "4 open request(s)" in said[0], log
