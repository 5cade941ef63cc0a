"""`tokenlane serve --workers N` as an operator runs it: one port served by N processes, each
response naming its worker (`x-tokenlane-worker`), SIGTERM draining every worker, a worker
that dies replaced, and workers on the Redis backend holding one budget between them."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from tokenlane.clock import MonotonicClock
from tokenlane.config import load_settings
from tokenlane.keys import KeyService
from tokenlane.keys.records import KeySpec
from tokenlane.sim import SimProviderSpec, Simulator
from tokenlane.workers import workers_warning

from .harness import MASTER_KEY, SIM_KEY, gateway_config
from .keys.support import HELLO, quick
from .loopback import serve
from .redis_server import RedisServer, redis_server  # noqa: F401 - a fixture
from .scripted import Scripted, chunk
from .test_cli import free_port

ROOT = Path(__file__).resolve().parents[1]
USER = [{"role": "user", "content": "hi"}]
# Each try opens a new connection, which the kernel gives either worker at random (by hash):
# every worker is seen long before this many (2 workers: a 2**-31 chance to miss one).
TRIES = 32

CONFIG = """\
server: {{host: 127.0.0.1, port: {port}, auth: {{enabled: false}}}}
providers:
  quick: {{base_url: "{quick}"}}
  held: {{base_url: "{held}"}}
routing: {{probes: {{enabled: false}}}}
models:
  quick:
    deployments: [{{provider: quick, model: q, price: {{input: 1, output: 1}}}}]
  held:
    deployments: [{{provider: held, model: h, price: {{input: 1, output: 1}}}}]
"""


def _held_answer(release: threading.Event) -> Callable[[], AsyncIterator[bytes]]:
    """A stream whose first word comes at once and the rest when `release` is set."""

    async def script() -> AsyncIterator[bytes]:
        yield chunk({"role": "assistant", "content": ""})
        yield chunk({"content": "one "})
        await asyncio.to_thread(release.wait, 60)
        yield chunk({"content": "two"})
        yield chunk(finish="stop")
        yield b"data: [DONE]\n\n"

    return script


class _Output:
    """A process's output lines, read by a thread as they come: waiting on the pipe with
    select() would miss lines an earlier readline() already pulled into Python's buffer."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.lines: list[str] = []
        self._closed = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def wait_for(self, needle: str, count: int = 1, timeout: float = 60) -> None:
        """Until `count` lines so far contain `needle` (bounded by `timeout`)."""
        def seen() -> int:
            return sum(needle in line for line in self.lines)

        with self._changed:
            self._changed.wait_for(lambda: seen() >= count or self._closed, timeout)
            assert seen() >= count, f"{needle!r} x{count} not printed:\n{self.text()}"

    def text(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def close(self) -> str:
        """All the output, once the process has closed its end."""
        self._reader.join(timeout=30)
        return self.text()


@contextmanager
def _serve_workers(config: Path, count: int, env: dict[str, str] | None = None
                   ) -> Iterator[tuple[subprocess.Popen[str], _Output]]:
    """`tokenlane serve --config config --workers count`, once it says it is ready."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tokenlane.cli", "serve", "--config", str(config),
         "--workers", str(count)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    output = _Output(proc)
    try:
        output.wait_for("tokenlane: ready")
        yield proc, output
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        output.close()


@contextmanager
def _workers(tmp_path: Path, count: int) -> Iterator[tuple[subprocess.Popen[str], str,
                                                           threading.Event, _Output]]:
    """`tokenlane serve --workers count` in front of a simulated provider (`quick`) and an
    upstream that holds its streams (`held`) until the yielded event is set."""
    release = threading.Event()
    simulator = Simulator([SimProviderSpec(name="quick", ttft_s=0, time_scale=0,
                                           output_tokens=4)])
    with serve(simulator.app) as sim_url, serve(Scripted(_held_answer(release)).app) as held:
        port = free_port()
        config = tmp_path / "gateway.yaml"
        config.write_text(CONFIG.format(port=port, quick=Simulator.base_url(sim_url, "quick"),
                                        held=f"{held}/v1"))
        try:
            with _serve_workers(config, count) as (proc, output):
                yield proc, f"http://127.0.0.1:{port}/v1", release, output
        finally:
            release.set()


def _client(base_url: str) -> openai.OpenAI:
    # A client of its own for each try: a new connection, so the kernel picks a worker anew.
    return openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=30)


def _worker_pid(headers: Any) -> int:
    label = headers["x-tokenlane-worker"]  # "1/2; pid=4242"
    return int(label.split("pid=")[1])


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def _pids_serving(base_url: str, want: int, exclude: frozenset[int] = frozenset()) -> set[int]:
    """The worker pids seen answering chat requests, until `want` of them outside `exclude`."""
    seen: set[int] = set()
    for _ in range(TRIES):
        with _client(base_url) as client:
            raw = client.chat.completions.with_raw_response.create(model="quick", messages=USER)
        assert raw.parse().choices[0].message.content
        seen.add(_worker_pid(raw.headers))
        if len(seen - exclude) >= want:
            break
    return seen


def test_two_workers_serve_one_port_and_sigterm_drains_both(tmp_path: Path) -> None:
    with _workers(tmp_path, 2) as (proc, base_url, release, output):
        started = output.text()
        assert started.count("state.backend local") == 1, started
        assert "workers: 2" in started  # the banner says how many
        pids = _pids_serving(base_url, 2)
        assert len(pids) == 2 and all(_parent_of(pid) == proc.pid for pid in pids), pids

        # A stream in flight on each worker, its first word out, the rest held upstream.
        streams: dict[int, list[Any]] = {}
        for _ in range(TRIES):
            client = _client(base_url)
            raw = client.chat.completions.with_raw_response.create(
                model="held", messages=USER, stream=True)
            stream = iter(raw.parse())
            words = [next(stream), next(stream)]  # the role chunk, "one "
            streams.setdefault(_worker_pid(raw.headers), []).append((client, stream, words))
            if len(streams) == 2:
                break
        assert set(streams) == pids

        proc.send_signal(signal.SIGTERM)
        # Each worker has begun its shutdown, with its stream still open.
        output.wait_for("Shutting down", count=len(pids))
        release.set()
        for opened in streams.values():
            for client, stream, words in opened:
                words.extend(stream)
                client.close()
                text = "".join(c.choices[0].delta.content or "" for c in words if c.choices)
                assert text == "one two"  # finished, not cut by the shutdown
                assert [c.choices[0].finish_reason for c in words if c.choices][-1] == "stop"
        assert proc.wait(timeout=30) == 0
        log = output.close()
    assert log.count("state.backend local") == 1, log
    assert "Traceback" not in log, log


def test_a_worker_that_dies_is_replaced(tmp_path: Path) -> None:
    with _workers(tmp_path, 2) as (proc, base_url, _, output):
        first = _pids_serving(base_url, 2)
        killed = min(first)
        os.kill(killed, signal.SIGKILL)
        output.wait_for(f"(pid {killed}) exited with code -9; starting a new one")
        # Two at the start, and the new worker's.
        output.wait_for("Application startup complete", count=3)
        now = _pids_serving(base_url, 1, exclude=frozenset(first))
        replacement = now - first
        assert len(replacement) == 1 and killed not in now, now
        assert _parent_of(replacement.pop()) == proc.pid
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_workers_on_redis_hold_one_budget(redis_server: RedisServer,  # noqa: F811
                                          tmp_path: Path) -> None:
    # Output priced, input free: a request's reservation (its 10 output tokens; the prompt
    # bound costs nothing) is then exactly its cost. Room for three requests, not four: two
    # workers each counting alone would admit three each.
    budget = 3.5 * 10 * 2.0 / 1e6
    simulator = Simulator([quick("a").model_copy(update={"api_key": SIM_KEY})])
    env = {"TL_TEST_KEYS": MASTER_KEY, "SIM_KEY": SIM_KEY}
    with serve(simulator.app) as sim_url:
        port = free_port()
        data = gateway_config(sim_url, {"m": ["a"]}, prices={"a": (0.0, 2.0)}, extra={
            "server": {"host": "127.0.0.1", "port": port},
            "keys": {"enabled": True, "data_dir": str(tmp_path / "data")},
            "state": {"backend": "redis", "url": redis_server.url, "timeout_s": 5}})
        config = tmp_path / "gateway.yaml"
        config.write_text(yaml.safe_dump(data))
        secret = asyncio.run(_stored_key(config, env, KeySpec(budget_usd={"total": budget})))
        with _serve_workers(config, 2, env) as (proc, output):
            assert "state.backend local" not in output.text()  # shared: nothing to warn of
            codes: list[str] = []
            pids: set[int] = set()
            for _ in range(TRIES):  # until both workers have answered, 6 requests at least
                with openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=secret,
                                   max_retries=0, timeout=30) as client:
                    try:
                        raw = client.chat.completions.with_raw_response.create(
                            model="m", messages=HELLO, max_tokens=10)
                        codes.append("ok")
                        pids.add(_worker_pid(raw.headers))
                    except openai.RateLimitError as exc:
                        codes.append(exc.body["code"])
                        pids.add(_worker_pid(exc.response.headers))
                if len(pids) == 2 and len(codes) >= 6:
                    break
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
    assert len(pids) == 2, pids
    assert codes.count("ok") == 3 and set(codes) == {"ok", "budget_exceeded"}, codes
    assert simulator.counters("a").requests == 3


def test_a_key_revoked_on_one_worker_is_refused_by_both(tmp_path: Path) -> None:
    # Local state: the workers share only the SQLite file, and each notices the other's
    # key writes by polling its generation counter.
    simulator = Simulator([quick("a").model_copy(update={"api_key": SIM_KEY})])
    env = {"TL_TEST_KEYS": MASTER_KEY, "SIM_KEY": SIM_KEY}
    with serve(simulator.app) as sim_url:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        data = gateway_config(sim_url, {"m": ["a"]}, extra={
            "server": {"host": "127.0.0.1", "port": port},
            "keys": {"enabled": True, "data_dir": str(tmp_path / "data")}})
        config = tmp_path / "gateway.yaml"
        config.write_text(yaml.safe_dump(data))
        with _serve_workers(config, 2, env) as (proc, _):
            admin = {"authorization": f"Bearer {MASTER_KEY}"}
            created = httpx.post(f"{base}/admin/keys", json={"name": "t"}, headers=admin,
                                 timeout=30)
            assert created.status_code == 201, created.text
            key_id, secret = created.json()["id"], created.json()["secret"]
            # Made on one worker, served by both (the other has picked it up).
            assert len(_answers(base, secret, "ok")) == 2
            revoked = httpx.post(f"{base}/admin/keys/{key_id}/revoke", headers=admin,
                                 timeout=30)
            assert revoked.status_code == 200, revoked.text
            began = time.monotonic()
            assert len(_answers(base, secret, "revoked")) == 2
            print(f"revoked on one worker, refused by both after "
                  f"{(time.monotonic() - began) * 1000:.0f} ms")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
    assert simulator.counters("a").requests >= 2


def _answers(base: str, secret: str, want: str, deadline_s: float = 30.0) -> set[int]:
    """The workers seen answering `want` ("ok", or "revoked": a 401) with `secret`, asking
    until both have (a new connection each time) or `deadline_s` has passed."""
    seen: set[int] = set()
    deadline = time.monotonic() + deadline_s
    while len(seen) < 2 and time.monotonic() < deadline:
        with openai.OpenAI(base_url=f"{base}/v1", api_key=secret, max_retries=0,
                           timeout=30) as client:
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model="m", messages=HELLO, max_tokens=5)
                got, headers = "ok", raw.headers
            except openai.AuthenticationError as exc:  # unknown here yet, or revoked
                got = "revoked" if "revoked" in exc.body["message"] else "unknown"
                headers = exc.response.headers
            except openai.APIStatusError as exc:
                got, headers = f"{exc.status_code}", exc.response.headers
        if got == want:
            seen.add(_worker_pid(headers))
    return seen


async def _stored_key(config: Path, env: dict[str, str], spec: KeySpec) -> str:
    """A key put in the config's key store before the gateway starts (each worker reads the
    keys at start-up), made by the keys service itself; its secret."""
    settings = load_settings(config)
    service = KeyService.open(settings.keys, settings.resolve(env), MonotonicClock())
    service.start()
    try:
        _, secret = await service.create(spec)
    finally:
        await service.stop()
    return secret


def test_a_port_already_taken_fails_before_any_worker_starts(tmp_path: Path) -> None:
    upstream = f"http://127.0.0.1:{free_port()}/v1"  # never called: nothing starts
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "gateway.yaml"
        config.write_text(CONFIG.format(port=port, quick=upstream, held=upstream))
        done = subprocess.run(
            [sys.executable, "-m", "tokenlane.cli", "serve", "--config", str(config),
             "--workers", "2"], capture_output=True, text=True, cwd=ROOT, timeout=60,
            check=False)
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "tokenlane: ready" not in done.stdout


@pytest.mark.parametrize(("backend", "workers", "warns"), [
    ("local", 2, True), ("local", 1, False), ("redis", 4, False)])
def test_the_warning_is_for_several_workers_on_local_state(backend: str, workers: int,
                                                             warns: bool) -> None:
    warning = workers_warning(backend, workers)
    assert (warning is not None) == warns
    if warning is not None:
        assert f"up to {10 * workers} rpm" in warning and "state:" in warning


def test_workers_must_be_a_positive_count(capsys: pytest.CaptureFixture[str]) -> None:
    from tokenlane.cli import main

    for bad in ("0", "two"):
        with pytest.raises(SystemExit) as exited:
            main(["serve", "--workers", bad])
        assert exited.value.code == 2
        assert "--workers" in capsys.readouterr().err
