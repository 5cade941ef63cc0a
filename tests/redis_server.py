"""A real `redis-server` on a free loopback port, for the Redis state backend's tests.

`redis_server` (a pytest fixture: import it into a test module or conftest) starts one per
test with persistence off and stops it after; `kill()` and `start()` let a test take Redis
away mid-traffic and bring it back on the same port. Readiness is read from the server's own
"Ready to accept connections" line, with a bounded deadline: nothing polls or sleeps.

When redis-server is not installed the tests that use it skip, saying so; CI installs it
(.ci/run).
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

__all__ = ["RedisServer", "redis_server"]

_READY = b"Ready to accept connections"
_START_TIMEOUT_S = 20.0  # generous: the machine may be heavily loaded


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One redis-server process on 127.0.0.1:`port` (restartable on the same port)."""

    def __init__(self, binary: str, port: int | None = None, args: Sequence[str] = ()) -> None:
        self.binary = binary
        self.port = port or _free_port()
        self.args = tuple(args)  # more redis-server options (later ones win)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.process is None, "already running"
        process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--loglevel", "notice", *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.process = process
        try:
            _wait_for_ready(process, _START_TIMEOUT_S)
        except BaseException:
            self.kill()
            raise
        # The log is not needed past readiness; keep the pipe from filling.
        assert process.stdout is not None
        process.stdout.close()

    def kill(self) -> None:
        """Take Redis away at once (SIGKILL: no goodbye to its clients), as a crash would."""
        process, self.process = self.process, None
        if process is not None:
            process.kill()  # (a paused process dies of SIGKILL too)
            process.wait(timeout=10)
            if process.stdout is not None and not process.stdout.closed:
                process.stdout.close()

    def pause(self) -> None:
        """Freeze Redis (SIGSTOP): connections open, nothing answers, as a stuck server."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def client(self) -> Any:  # a plain (sync) client for a test's own checks
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)


def _wait_for_ready(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    seen = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while _READY not in seen:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise RuntimeError(f"redis-server not ready in {timeout_s:.0f} s: {seen[-500:]!r}")
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"redis-server exited ({process.wait()}): {seen[-500:]!r}")
            seen += chunk


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    server = RedisServer(binary)
    for attempt in range(3):  # the free port may be taken between choosing and binding it
        try:
            server.start()
            break
        except RuntimeError:
            if attempt == 2:
                raise
            server = RedisServer(binary)
    try:
        yield server
    finally:
        server.kill()
