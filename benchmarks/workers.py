"""The overhead benchmark's workers part: `tokenlane serve --workers 2` against one worker.

Two gateways from the same config, one with `--workers 1` and one with `--workers 2`, in
front of the overhead benchmark's upstream. Nothing is pinned for this part (the upstream and
the load generator are let out of their core too): two workers need both cores, and on a
2-core machine they share them with the upstream and the load generator, so the scaling
ratio says what a second core buys *there*; `side busy` (upstream + load generator CPU ÷ wall
time) says how much of the machine went to feeding the gateway. Measured:

- scaling: closed-loop streams (50 instant tokens) and non-streamed requests at concurrency 64,
  in rounds alternating the two gateways: requests/s, relayed SSE events/s (events per
  response counted on one real response), CPU per request of all the gateway's processes, and
  the 2-worker / 1-worker ratio;
- paced streams: `--worker-streams` (1,000) streams opened at once, each 50 tokens at 20
  tokens/s from the `slow` upstream, straight to the upstream and through each gateway:
  first-token and duration p50/p99, so whether the gateway held the pace shows beside direct.

`overhead.py` runs it after its own scenarios (`--skip-workers` leaves it out); on its own,
with just the upstream beside it:

    .venv/bin/python benchmarks/workers.py [--smoke]   # results/workers.json and workers.md
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    RESULTS,
    describe_machine,
    finish_machine_info,
    fmt,
    machine_info,
    markdown_table,
    median,
    percentile,
    write_results,
)
from loadgen import Target, run_load
from stack import HERE, MASTER_KEY, PYTHON, TICK, Proc, _free_port, gateway_config

__all__ = ["add_arguments", "render_workers", "run_workers"]

COUNTS = (1, 2)
SCALING = (("stream_c64", True, 64, "bench"), ("nonstream_c64", False, 64, "bench"))
PACED_MODEL = "bench-slow"  # the upstream's `slow-*` providers: --slow-tps tokens/s

ChatBody = Callable[[str, bool, int], bytes]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--skip-workers", action="store_true",
                   help="leave out the 1-vs-2-workers scenarios")
    p.add_argument("--worker-streams", type=int,
                   help="paced streams opened at once per target in the workers part "
                        "(default 1000; 50 with --smoke)")
    p.add_argument("--worker-stream-tokens", type=int, default=100,
                   help="tokens per paced stream there (at --slow-tps; default 100: 5 s)")
    p.add_argument("--worker-ramp-s", type=float, default=1.0,
                   help="the second opening: streams started over this many seconds")


class Gateway:
    """`tokenlane serve --workers N`: the supervisor and its workers, CPU summed over all."""

    def __init__(self, workers: int, config: Path, work: Path) -> None:
        self.workers = workers
        self.port = yaml.safe_load(config.read_text())["server"]["port"]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {"TOKENLANE_MASTER_KEYS": MASTER_KEY, "BENCH_UPSTREAM_KEY": "sk-bench-upstream"}
        self.proc = Proc(f"gateway_w{workers}", [
            PYTHON, "-m", "tokenlane.cli", "--log-level", "warning", "serve",
            "--config", str(config), "--workers", str(workers)], None, work, env=env)

    def wait_ready(self, timeout: float = 90.0) -> None:
        # A worker listening is not all of them: the supervisor says when all are.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.popen.poll() is not None:
                raise RuntimeError(f"{self.proc.name} exited; log:\n{self.proc.tail()}")
            if "tokenlane: ready" in self.proc.log_path.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.proc.name} not ready in {timeout}s; log:\n{self.proc.tail()}")

    def pids(self) -> list[int]:
        """The serving processes: the workers, or the one process with --workers 1."""
        children = _children(self.proc.pid)
        return children if self.workers > 1 else [self.proc.pid]

    def cpu_s(self) -> dict[int, float]:
        return {pid: _cpu_s(pid) for pid in [self.proc.pid, *_children(self.proc.pid)]}


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and "spawn_main" in _cmdline(int(stat.parent.name)):
                out.append(int(stat.parent.name))
    return sorted(out)


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _target(url: str, body: ChatBody, model: str, stream: bool, tokens: int,
            auth: bool = True) -> Target:
    headers = (("authorization", f"Bearer {MASTER_KEY}"),) if auth else ()
    return Target(url, body(model, stream, tokens), headers, stream, tokens if stream else 0)


async def _events_per_response(gw: Gateway, body: ChatBody, tokens: int) -> int:
    """SSE events in one streamed answer through the gateway, counted on the wire."""
    import httpx

    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(f"{gw.url}/v1/chat/completions",
                                     content=body("bench", True, tokens),
                                     headers={"authorization": f"Bearer {MASTER_KEY}",
                                              "content-type": "application/json"})
    return response.text.count("data: ")


async def _closed_loop(gw: Gateway, upstream: Proc, target: Target, concurrency: int,
                       duration: float) -> dict[str, Any]:
    marks: dict[str, dict[int, float]] = {}

    def start() -> None:
        marks["cpu"] = gw.cpu_s()
        marks["side"] = {0: upstream.cpu_s() + time.process_time()}

    result = await run_load(target, concurrency, duration_s=duration, on_start=start)
    after = gw.cpu_s()
    side = upstream.cpu_s() + time.process_time() - marks["side"][0]
    per_pid = {pid: after[pid] - marks["cpu"].get(pid, 0.0) for pid in after}
    serving = gw.pids()
    shares = sorted((per_pid.get(pid, 0.0) for pid in serving), reverse=True)
    cpu = sum(per_pid.values())
    n = max(result.requests, 1)
    return {"requests": result.requests, "errors": result.errors,
            "error_samples": result.error_samples, "rps": result.rps,
            "latency_p50_ms": _ms(percentile(result.latencies_s, 50)),
            "cpu_ms_per_request": cpu / n * 1000, "cores_busy": cpu / result.elapsed_s,
            "side_busy": side / result.elapsed_s,
            "worker_cpu_split": [s / max(sum(shares), 1e-9) for s in shares]}


async def _scaling(gateways: dict[int, Gateway], upstream: Proc, args: argparse.Namespace,
                   body: ChatBody) -> dict[str, Any]:
    events = await _events_per_response(gateways[1], body, args.tokens)
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {
        name: {n: [] for n in gateways} for name, *_ in SCALING}
    for r in range(args.rounds):
        for name, stream, concurrency, model in SCALING:
            order = list(gateways) if r % 2 == 0 else list(reversed(gateways))
            for n in order:
                gw = gateways[n]
                target = _target(f"{gw.url}/v1/chat/completions", body, model, stream,
                                 args.tokens)
                run = await _closed_loop(gw, upstream, target, concurrency, args.duration)
                runs[name][n].append(run)
                print(f"  workers round {r + 1}/{args.rounds} {name:<14} workers={n} "
                      f"{run['rps']:8.0f} req/s  cpu {run['cpu_ms_per_request']:.3f} ms/req  "
                      f"cores {run['cores_busy']:.2f}  errors {run['errors']}", flush=True)
    out: dict[str, Any] = {"events_per_stream": events}
    for name, stream, concurrency, _ in SCALING:
        per = {n: _medians(runs[name][n]) for n in gateways}
        for n, summary in per.items():
            summary["events_per_s"] = summary["rps"] * events if stream else None
        one, two = per[1]["rps"], per[2]["rps"]
        out[name] = {"stream": stream, "concurrency": concurrency,
                     "workers": {str(n): s for n, s in per.items()},
                     "scaling_ratio": two / one if one else None}
    return out


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"rounds": len(runs), "requests": sum(r["requests"] for r in runs),
                           "errors": sum(r["errors"] for r in runs),
                           "error_samples": [s for r in runs for s in r["error_samples"]][:5]}
    for key in ("rps", "latency_p50_ms", "cpu_ms_per_request", "cores_busy", "side_busy"):
        out[key] = median([r[key] for r in runs])
    out["worker_cpu_split"] = [median(list(v)) for v in zip(*(r["worker_cpu_split"]
                                                              for r in runs), strict=True)]
    return out


async def _paced(target: Target, streams: int, gw: Gateway | None, upstream: Proc,
                 stagger_s: float) -> dict[str, Any]:
    before = gw.cpu_s() if gw is not None else {}
    side_before = upstream.cpu_s() + time.process_time()
    result = await run_load(target, streams, requests_per_worker=1, connect_first=False,
                            stagger_s=stagger_s)
    side = upstream.cpu_s() + time.process_time() - side_before
    cpu = None
    if gw is not None:
        after = gw.cpu_s()
        cpu = sum(after[pid] - before.get(pid, 0.0) for pid in after)
    wall = max(result.elapsed_s, 1e-9)
    return {"streams": streams, "completed": len(result.latencies_s), "errors": result.errors,
            "error_samples": result.error_samples, "wall_s": result.elapsed_s,
            "ttft_p50_ms": _ms(percentile(result.ttfts_s, 50)),
            "ttft_p99_ms": _ms(percentile(result.ttfts_s, 99)),
            "duration_p50_s": percentile(result.latencies_s, 50),
            "duration_p99_s": percentile(result.latencies_s, 99),
            "cores_busy": None if cpu is None else cpu / wall,
            # Upstream + load generator: with the gateway's, how much of the machine the run
            # took (near every core: the machine, not the gateway, set the pace).
            "side_busy": side / wall,
            "machine_busy": ((cpu or 0.0) + side) / wall / (os.cpu_count() or 1)}


async def _paced_streams(gateways: dict[int, Gateway], upstream: Proc, upstream_url: str,
                         args: argparse.Namespace, body: ChatBody) -> dict[str, Any]:
    """`worker_streams` paced streams per target, twice: opened in the same instant (a
    burst: every request's start-up, connections to the upstream included, lands at once),
    and opened over `worker_ramp_s` (then all are in flight together for most of a stream)."""
    n = args.worker_streams
    tokens = args.worker_stream_tokens
    ideal = args.slow_ttft + tokens / args.slow_tps
    out: dict[str, Any] = {"streams": n, "tokens_per_stream": tokens,
                           "upstream_tokens_per_s": args.slow_tps, "ideal_duration_s": ideal,
                           "ramp_s": args.worker_ramp_s}
    for opening, stagger in (("at_once", 0.0), ("ramp", args.worker_ramp_s)):
        runs = out[opening] = {}
        print(f"  {n} paced streams direct, opened {opening} ...", flush=True)
        runs["direct"] = direct = await _paced(
            _target(f"{upstream_url}/slow-a/v1/chat/completions", body, PACED_MODEL, True,
                    tokens, auth=False), n, None, upstream, stagger)
        for count, gw in gateways.items():
            print(f"  {n} paced streams through workers={count}, opened {opening} ...",
                  flush=True)
            runs[f"workers_{count}"] = run = await _paced(
                _target(f"{gw.url}/v1/chat/completions", body, PACED_MODEL, True, tokens), n,
                gw, upstream, stagger)
            run["ttft_p99_added_ms"] = _diff(run["ttft_p99_ms"], direct["ttft_p99_ms"])
            run["duration_p99_vs_direct"] = _ratio(run["duration_p99_s"],
                                                   direct["duration_p99_s"])
            run["held_pace"] = (run["completed"] == n and run["errors"] == 0
                                and run["duration_p99_s"] is not None
                                and run["duration_p99_s"] <= 1.1 * direct["duration_p99_s"])
    return out


@contextlib.contextmanager
def _gateways(upstream_url: str, work: Path, max_connections: int | None
              ) -> Iterator[dict[int, Gateway]]:
    started: dict[int, Gateway] = {}
    try:
        for n in COUNTS:
            config = work / f"gateway_w{n}.yaml"
            config.write_text(yaml.safe_dump(gateway_config(upstream_url, _free_port(),
                                                            max_connections)))
            started[n] = Gateway(n, config, work)
        for gw in started.values():
            gw.wait_ready()
        yield started
    finally:
        for gw in started.values():
            gw.proc.stop()


@contextlib.contextmanager
def _unpinned(*pids: int) -> Iterator[None]:
    """Let these processes (0: this one) run on every core, as they were after."""
    cores = os.sched_getaffinity(0) | set(range(os.cpu_count() or 1))
    before = {pid: os.sched_getaffinity(pid) for pid in pids}
    try:
        for pid in pids:
            with contextlib.suppress(OSError):  # a core outside our cgroup: keep what it had
                os.sched_setaffinity(pid, cores)
        yield
    finally:
        for pid, affinity in before.items():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(pid, affinity)


async def run_workers(args: argparse.Namespace, upstream: Proc, upstream_url: str, work: Path,
                      body: ChatBody) -> dict[str, Any]:
    """The workers part, against the running `upstream` at `upstream_url`."""
    args.worker_streams = args.worker_streams or (50 if args.smoke else 1000)
    with _unpinned(0, upstream.pid), \
            _gateways(upstream_url, work, args.max_connections) as gateways:
        for gw in gateways.values():  # warm imports, pools and caches in every worker
            for stream in (False, True):
                await run_load(_target(f"{gw.url}/v1/chat/completions", body, "bench", stream,
                                       args.tokens), 16, duration_s=args.warmup)
        scaling = await _scaling(gateways, upstream, args, body)
        paced = await _paced_streams(gateways, upstream, upstream_url, args, body)
        alive = all(gw.proc.popen.poll() is None for gw in gateways.values())
    return {"counts": list(COUNTS), "scaling": scaling, "paced_streams": paced,
            "gateways_alive_at_end": alive}


def render_workers(data: dict[str, Any] | None) -> str:
    if data is None:
        return ""
    scaling = data["scaling"]
    rows = []
    for name, *_ in SCALING:
        s = scaling[name]
        one, two = s["workers"]["1"], s["workers"]["2"]
        rows.append([name, fmt(one["rps"], 0), fmt(two["rps"], 0), s["scaling_ratio"],
                     fmt(one["events_per_s"], 0), fmt(two["events_per_s"], 0),
                     one["cpu_ms_per_request"], two["cpu_ms_per_request"],
                     one["cores_busy"], two["cores_busy"], one["side_busy"], two["side_busy"],
                     "/".join(f"{x * 100:.0f}" for x in two["worker_cpu_split"]),
                     one["errors"] + two["errors"]])
    paced = data["paced_streams"]
    paced_rows = []
    for opening, runs in (("at once", paced["at_once"]), (f"over {paced['ramp_s']:g} s",
                                                          paced["ramp"])):
        direct = runs["direct"]
        paced_rows.append([f"direct, {opening}", direct["completed"], direct["errors"],
                           direct["ttft_p50_ms"], direct["ttft_p99_ms"],
                           direct["duration_p50_s"], direct["duration_p99_s"], "–", "–",
                           direct["machine_busy"], "–"])
        for n in data["counts"]:
            run = runs[f"workers_{n}"]
            paced_rows.append([f"{n} worker{'s' if n > 1 else ''}, {opening}", run["completed"],
                               run["errors"], run["ttft_p50_ms"], run["ttft_p99_ms"],
                               run["duration_p50_s"], run["duration_p99_s"],
                               run["duration_p99_vs_direct"], run["cores_busy"],
                               run["machine_busy"], run["held_pace"]])
    return "\n".join([
        "## Workers: `tokenlane serve --workers 2` against one worker",
        "",
        (f"Nothing pinned: gateways, upstream and load generator share the machine; side busy"
         f" = upstream + load generator CPU ÷ wall time. {scaling['events_per_stream']} SSE "
         "events per streamed answer."),
        "",
        markdown_table(["scenario", "1w req/s", "2w req/s", "2w/1w", "1w events/s",
                        "2w events/s", "1w CPU ms/req", "2w CPU ms/req", "1w cores busy",
                        "2w cores busy", "1w side busy", "2w side busy", "2w worker CPU split %",
                        "errors"], rows),
        "",
        (f"{paced['streams']} streams opened at once and over {paced['ramp_s']:g} s, "
         f"{paced['tokens_per_stream']} tokens at "
         f"{paced['upstream_tokens_per_s']:g} tokens/s each (ideal "
         f"{paced['ideal_duration_s']:.2f} s); held pace = all complete, no errors, duration "
         "p99 within 10% of direct; machine busy = every process's CPU (gateway, upstream, "
         "load generator) ÷ wall time ÷ cores:"),
        "",
        markdown_table(["target", "completed", "errors", "TTFT p50 ms", "TTFT p99 ms",
                        "duration p50 s", "duration p99 s", "p99 / direct", "cores busy",
                        "machine busy", "held pace"], paced_rows),
        "",
    ])


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


# --------------------------------------------------------------------------- on its own


def _chat_body(model: str, stream: bool, tokens: int) -> bytes:
    return orjson.dumps({"model": model, "max_tokens": tokens, "stream": stream,
                         "messages": [{"role": "user", "content": "Why is the sky blue?"}]})


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="tokenlane serve --workers 2 against one worker")
    p.add_argument("--smoke", action="store_true", help="tiny counts")
    p.add_argument("--tokens", type=int, default=50, help="output tokens per reply")
    p.add_argument("--rounds", type=int)
    p.add_argument("--duration", type=float, help="seconds per measured run")
    p.add_argument("--warmup", type=float)
    p.add_argument("--slow-tps", type=float, default=20.0)
    p.add_argument("--slow-ttft", type=float, default=0.05)
    p.add_argument("--max-connections", type=int, default=None)
    p.add_argument("--out", type=Path, default=RESULTS)
    add_arguments(p)
    args = p.parse_args(argv)
    args.rounds = args.rounds or (1 if args.smoke else 3)
    args.duration = args.duration or (0.3 if args.smoke else 2.0)
    args.warmup = args.warmup if args.warmup is not None else (0.2 if args.smoke else 1.0)
    return args


async def amain(args: argparse.Namespace) -> int:
    info = machine_info()
    print(describe_machine(info), flush=True)
    with tempfile.TemporaryDirectory(prefix="tokenlane-workers-") as tmp:
        port = _free_port()
        upstream = Proc("upstream", [
            PYTHON, str(HERE / "fake_upstream.py"), "--port", str(port), "--tokens",
            str(max(args.tokens, args.worker_stream_tokens)), "--slow-tps", str(args.slow_tps),
            "--slow-ttft", str(args.slow_ttft)], None, Path(tmp))
        try:
            upstream.wait_port(port)
            started = time.monotonic()
            data = await run_workers(args, upstream, f"http://127.0.0.1:{port}", Path(tmp),
                                     _chat_body)
        finally:
            upstream.stop()
    finish_machine_info(info)
    report = {"benchmark": "workers", "machine": info, "elapsed_s": time.monotonic() - started,
              **data}
    markdown = f"# tokenlane workers benchmark\n\n{describe_machine(info)}\n\n" + \
        render_workers(data)
    write_results("workers", report, markdown, args.out)
    print("\n" + markdown)
    return 0 if data["gateways_alive_at_end"] else 1


if __name__ == "__main__":
    import uvloop

    raise SystemExit(uvloop.run(amain(parse_args())))
