"""The overhead benchmark's processes: upstream, gateway(s) and floor, pinned and measured.

Each is a subprocess with its CPU time and memory read from /proc; `start_stack` starts them
on free ports (gateway and floor on one core, the upstream on the other, beside the load
generator) and stops them, by their own pids, on the way out.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["MASTER_KEY", "Proc", "Stack", "gateway_config", "sim_config", "start_stack"]

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
MASTER_KEY = "tl-bench-master-key"
TICK = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A child process pinned to one core, with its CPU time and memory read from /proc."""

    def __init__(self, name: str, argv: Sequence[str], core: int | None, logs: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = logs / f"{name}.log"
        self._log = self.log_path.open("wb")

        self.popen = subprocess.Popen(list(argv), stdout=self._log, stderr=subprocess.STDOUT,
                                      env={**os.environ, **(env or {})})
        self.pid = self.popen.pid
        # Pinned and given every file descriptor it may have (1,000 streams need ~3,000) within
        # microseconds of starting: long before the interpreter could start a thread.
        if core is not None:
            os.sched_setaffinity(self.pid, {core})
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        with contextlib.suppress(OSError):
            resource.prlimit(self.pid, resource.RLIMIT_NOFILE, (hard, hard))

    def cpu_s(self) -> float:
        """user + system CPU seconds of the whole process (all threads)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def _status_kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def peak_rss_mb(self) -> float:
        return self._status_kb("VmHWM") / 1024

    def rss_mb(self) -> float:
        return self._status_kb("VmRSS") / 1024

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def wait_port(self, port: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.popen.returncode}); "
                                   f"log:\n{self.tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not listen on {port} in {timeout}s; log:\n{self.tail()}")

    def tail(self, n: int = 30) -> str:
        self._log.flush()
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()


def gateway_config(upstream: str, port: int, max_connections: int | None) -> dict[str, Any]:
    """The measured configuration: balanced routing over two deployments, auth on."""
    def provider(name: str) -> dict[str, Any]:
        spec: dict[str, Any] = {"base_url": f"{upstream}/{name}/v1",
                                "api_key_env": "BENCH_UPSTREAM_KEY"}
        if max_connections is not None:
            spec["max_connections"] = max_connections
        return spec

    return {
        "server": {"host": "127.0.0.1", "port": port,
                   "auth": {"enabled": True, "master_keys_env": "TOKENLANE_MASTER_KEYS"}},
        "providers": {n: provider(n) for n in ("fast-a", "fast-b", "pace-a", "pace-b",
                                               "slow-a", "slow-b")},
        "routing": {"policy": "balanced"},
        "models": {
            "bench": {"deployments": [
                {"provider": "fast-a", "model": "bench-a", "price": {"input": 0.5, "output": 1.0}},
                {"provider": "fast-b", "model": "bench-b", "price": {"input": 0.6, "output": 1.2}},
            ]},
            "bench-paced": {"deployments": [
                {"provider": "pace-a", "model": "pace-a", "price": {"input": 0.5, "output": 1.0}},
                {"provider": "pace-b", "model": "pace-b", "price": {"input": 0.6, "output": 1.2}},
            ]},
            "bench-slow": {"deployments": [
                {"provider": "slow-a", "model": "slow-a", "price": {"input": 0.5, "output": 1.0}},
                {"provider": "slow-b", "model": "slow-b", "price": {"input": 0.6, "output": 1.2}},
            ]},
        },
    }


def _upstream_tokens(args: argparse.Namespace) -> int:
    """The longest answer the upstream gives: a scenario asks for fewer with max_tokens."""
    return max(args.tokens, getattr(args, "upstream_tokens", 0))


def sim_config(port: int, args: argparse.Namespace) -> dict[str, Any]:
    n = _upstream_tokens(args)
    fast = {"ttft_s": 0, "time_scale": 0, "output_tokens": n}
    pace = {"ttft_s": args.paced_ttft, "tokens_per_s": args.paced_tps, "output_tokens": n}
    slow = {"ttft_s": args.slow_ttft, "tokens_per_s": args.slow_tps, "output_tokens": n}
    return {"host": "127.0.0.1", "port": port, "providers": [
        {"name": "fast-a", **fast}, {"name": "fast-b", **fast},
        {"name": "pace-a", **pace}, {"name": "pace-b", **pace},
        {"name": "slow-a", **slow}, {"name": "slow-b", **slow}]}


@dataclass
class Stack:
    upstream: Proc
    gateway: Proc
    floor: Proc
    upstream_url: str
    gateway_url: str
    floor_url: str
    pinned: bool
    gateway_b: Proc | None = None  # --ab-src: a second gateway from another source tree
    gateway_b_url: str = ""


@contextlib.contextmanager
def start_stack(args: argparse.Namespace, work: Path) -> Iterator[Stack]:
    cores = sorted(os.sched_getaffinity(0))
    pinned = len(cores) >= 2
    gw_core, side_core = (cores[0], cores[1]) if pinned else (None, None)
    if side_core is not None:
        os.sched_setaffinity(0, {side_core})  # the load generator shares the upstream's core
    up_port, gw_port, floor_port = _free_port(), _free_port(), _free_port()
    upstream_url = f"http://127.0.0.1:{up_port}"
    procs: list[Proc] = []
    try:
        if args.upstream == "sim":
            cfg = work / "sim.yaml"
            cfg.write_text(yaml.safe_dump({"sim": sim_config(up_port, args)}))
            argv = [PYTHON, "-m", "tokenlane.cli", "--log-level", "warning", "sim",
                    "--config", str(cfg)]
        else:
            argv = [PYTHON, str(HERE / "fake_upstream.py"), "--port", str(up_port),
                    "--tokens", str(_upstream_tokens(args)), "--slow-tps", str(args.slow_tps),
                    "--slow-ttft", str(args.slow_ttft), "--paced-tps", str(args.paced_tps),
                    "--paced-ttft", str(args.paced_ttft)]
        upstream = Proc("upstream", argv, side_core, work)
        procs.append(upstream)
        cfg = work / "gateway.yaml"
        cfg.write_text(yaml.safe_dump(gateway_config(upstream_url, gw_port,
                                                     args.max_connections)))
        gateway = _start_gateway("gateway", cfg, gw_core, work, args.gateway_src)
        procs.append(gateway)
        gateway_b, b_port = None, 0
        ab_state = getattr(args, "ab_state", None)
        if args.ab_src or ab_state:
            b_port = _free_port()
            cfg_b = work / "gateway_b.yaml"
            config_b = gateway_config(upstream_url, b_port, args.max_connections)
            if ab_state == "redis":  # the same code, sharing state through a real Redis
                redis_port = _free_port()
                redis = Proc("redis", ["redis-server", "--port", str(redis_port), "--save", "",
                                       "--appendonly", "no", "--bind", "127.0.0.1"],
                             side_core, work)
                procs.append(redis)
                redis.wait_port(redis_port)
                config_b["state"] = {"backend": "redis", "url": f"redis://127.0.0.1:{redis_port}"}
            cfg_b.write_text(yaml.safe_dump(config_b))
            gateway_b = _start_gateway("gateway_b", cfg_b, gw_core, work,
                                       args.ab_src or args.gateway_src)
            procs.append(gateway_b)
        floor = Proc("floor", [PYTHON, str(HERE / "floor.py"), "--port", str(floor_port),
                               "--upstream", upstream_url], gw_core, work)
        procs.append(floor)
        upstream.wait_port(up_port)
        gateway.wait_port(gw_port)
        floor.wait_port(floor_port)
        if gateway_b is not None:
            gateway_b.wait_port(b_port)
        yield Stack(upstream, gateway, floor, upstream_url, f"http://127.0.0.1:{gw_port}",
                    f"http://127.0.0.1:{floor_port}", pinned, gateway_b,
                    f"http://127.0.0.1:{b_port}")
    finally:
        for proc in reversed(procs):
            proc.stop()


def _start_gateway(name: str, cfg: Path, core: int | None, work: Path,
                   src: Path | None) -> Proc:
    env = {"TOKENLANE_MASTER_KEYS": MASTER_KEY, "BENCH_UPSTREAM_KEY": "sk-bench-upstream"}
    if src is not None:
        env["PYTHONPATH"] = str(src.resolve())
    return Proc(name, [PYTHON, "-m", "tokenlane.cli", "--log-level", "warning", "serve",
                       "--config", str(cfg)], core, work, env=env)
