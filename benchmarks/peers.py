"""tokenlane's CPU per request beside two peer gateways, LiteLLM's proxy and Portkey's gateway.

    .venv/bin/python benchmarks/peers.py \\
        --litellm /work/peers/litellm/bin/litellm \\
        --portkey /work/peers/portkey/node_modules/.bin/gateway

The overhead benchmark's processes (`stack.py`: the fake upstream, tokenlane, the pass-through
floor) plus each peer that is given and installed, all in one run, in front of the same
upstream, driven by the same load generator (`loadgen.py`, which checks every response: status
200, `finish_reason` stop, for streams every token and `[DONE]`, so a peer answering errors
cannot look cheap: its error count is in the table). Peers are installed outside the repository
(benchmarks/README.md has the commands); one not given or not found is skipped with a line
saying so. tokenlane runs from `--commit`'s `src/` (HEAD), extracted, so the figures belong to
that commit even while `src/` has uncommitted work.

Every server runs on core 0 (the upstream and this process share core 1), one at a time under
load, scenarios in rounds with the order rotated each round, medians over rounds reported. CPU
is user + system time from /proc of the server's whole process tree (all threads, every child
process, reaped children included), over the run ÷ requests.

Results: benchmarks/results/peers.json and peers.md (also printed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

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
from overhead import chat_body, summarize
from stack import MASTER_KEY, TICK, Proc, Stack, _free_port, start_stack

from routing import extract_src, git_commit

ROOT = Path(__file__).resolve().parents[1]
LITELLM_KEY = "sk-bench-litellm-master"
UPSTREAM_KEY = "sk-bench-upstream"
# LiteLLM fetches its model cost map and a few lists from GitHub at start unless told not to;
# the benchmark stays on loopback.
LITELLM_ENV = {
    "LITELLM_LOG": "WARNING",  # as tokenlane's --log-level warning: no access log line per request
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_TELEMETRY_DISABLED": "true",
}
SERVERS = ("tokenlane", "floor", "litellm", "portkey")
PEERS = ("litellm", "portkey")
# Issue 17: tokenlane's CPU per request at most this fraction of the peer's.
TARGET_RATIO = {("litellm", False): 1 / 20, ("litellm", True): 1 / 40,
                ("portkey", False): 1.0, ("portkey", True): 1.0}


class Scenario(NamedTuple):
    name: str
    stream: bool
    concurrency: int


SCENARIOS = (
    Scenario("nonstream_c1", False, 1),
    Scenario("nonstream_c16", False, 16),
    Scenario("nonstream_c64", False, 64),
    Scenario("nonstream_c256", False, 256),
    Scenario("stream_c16", True, 16),
    Scenario("stream_c256", True, 256),
)


# --------------------------------------------------------------------------- processes


def tree_cpu_s(root: int) -> float:
    """user + system CPU seconds of `root` and every process below it, children they have
    reaped included (cutime/cstime), so a worker exiting mid-run still counts."""
    parents: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
            stats[int(entry.name)] = fields
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        fields = stats.get(pid)
        if fields is not None:
            total += sum(int(f) for f in fields[11:15])
        todo += parents.get(pid, [])
    return total / TICK


@dataclass
class Server:
    """One measured server: its process (the root of its tree) and the request it is sent."""

    name: str
    proc: Proc
    url: str  # the chat-completions URL
    headers: tuple[tuple[str, str], ...]
    model: str
    version: str = ""
    config: str = ""

    def target(self, stream: bool, tokens: int) -> Target:
        return Target(self.url, chat_body(self.model, stream, tokens), self.headers, stream,
                      tokens if stream else 0)


def _litellm_version(litellm: Path) -> str:
    python = litellm.with_name("python")
    code = "import importlib.metadata as m; print(m.version('litellm'))"
    got = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                         check=False, timeout=60)
    return got.stdout.strip() or "unknown"


def _package_version(package_json: Path) -> str:
    try:
        return str(json.loads(package_json.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "unknown"


def _portkey_versions(script: Path) -> tuple[str, str]:
    """(@portkey-ai/gateway, the @hono/node-server it resolves) versions."""
    package = script.parent.parent  # .../@portkey-ai/gateway/build/start-server.js
    hono = "unknown"
    for folder in (package, *package.parents):
        candidate = folder / "node_modules" / "@hono" / "node-server" / "package.json"
        if candidate.exists():
            hono = _package_version(candidate)
            break
    return _package_version(package / "package.json"), hono


def _start_litellm(litellm: Path, upstream_url: str, core: int | None,
                   work: Path) -> Server:
    """The proxy at its defaults, no database, one uvicorn worker; the model group `bench`
    over two deployments of the upstream (as tokenlane's config), auth on (master key)."""
    port = _free_port()
    config = {
        "model_list": [
            {"model_name": "bench", "litellm_params": {
                "model": f"openai/{model}", "api_base": f"{upstream_url}/{provider}/v1",
                "api_key": UPSTREAM_KEY}}
            for provider, model in (("fast-a", "bench-a"), ("fast-b", "bench-b"))],
        "general_settings": {"master_key": LITELLM_KEY},
    }
    cfg = work / "litellm.yaml"
    cfg.write_text(yaml.safe_dump(config))
    proc = Proc("litellm", [str(litellm), "--config", str(cfg), "--host", "127.0.0.1",
                            "--port", str(port)], core, work, env=LITELLM_ENV)
    proc.wait_port(port, timeout=180)
    return Server("litellm", proc, f"http://127.0.0.1:{port}/v1/chat/completions",
                  (("authorization", f"Bearer {LITELLM_KEY}"),), "bench",
                  _litellm_version(litellm),
                  "litellm --config (model group over fast-a and fast-b via openai/<model> + "
                  "api_base, master_key, no DB, 1 worker), env " +
                  " ".join(f"{k}={v}" for k, v in LITELLM_ENV.items()))


def _start_portkey(gateway: Path, node: str, upstream_url: str, core: int | None,
                   work: Path) -> Server:
    """`start-server.js --port=N --headless` (no console UI, no log store); the provider and
    the upstream in each request's headers: Portkey's one-target path, no config object."""
    port = _free_port()
    script = gateway.resolve()
    proc = Proc("portkey", [node, str(script), f"--port={port}", "--headless"], core, work)
    proc.wait_port(port, timeout=60)
    version, hono = _portkey_versions(script)
    if hono.split(".")[:2] >= ["1", "14"] and hono != "unknown":
        # Portkey-AI/gateway#1389: with a newer @hono/node-server, responses' headers are
        # immutable and every stream fails ("Something went wrong").
        print(f"warning: Portkey resolves @hono/node-server {hono}; its streams fail with "
              "newer than 1.13 (Portkey-AI/gateway#1389). Pin it with npm overrides, see "
              "benchmarks/README.md", flush=True)
    node_version = subprocess.run([node, "--version"], capture_output=True, text=True,
                                  check=False).stdout.strip()
    custom_host = f"{upstream_url}/fast-a/v1"
    return Server("portkey", proc, f"http://127.0.0.1:{port}/v1/chat/completions",
                  (("x-portkey-provider", "openai"), ("x-portkey-custom-host", custom_host),
                   ("authorization", f"Bearer {UPSTREAM_KEY}")), "bench-a",
                  f"{version} (@hono/node-server {hono}, node {node_version})",
                  f"start-server.js --port=N --headless (listens on every interface: it has no "
                  f"host option; only loopback is used); headers x-portkey-provider: openai, "
                  f"x-portkey-custom-host: {custom_host}, authorization: the upstream key")


@contextlib.contextmanager
def start_peers(args: argparse.Namespace, upstream_url: str, core: int | None,
                work: Path) -> Iterator[dict[str, Server]]:
    """Each peer given and found, started and (on the way out) stopped by its own pid."""
    peers: dict[str, Server] = {}
    try:
        if args.litellm is None:
            print("skipping LiteLLM: no --litellm given", flush=True)
        elif not args.litellm.exists():
            print(f"skipping LiteLLM: {args.litellm} not found", flush=True)
        else:
            print(f"starting LiteLLM ({args.litellm}) ...", flush=True)
            peers["litellm"] = _start_litellm(args.litellm, upstream_url, core, work)
        if args.portkey is None:
            print("skipping Portkey: no --portkey given", flush=True)
        elif not args.portkey.exists():
            print(f"skipping Portkey: {args.portkey} not found", flush=True)
        elif shutil.which(args.node) is None:
            print(f"skipping Portkey: {args.node} not found", flush=True)
        else:
            print(f"starting Portkey ({args.portkey}) ...", flush=True)
            peers["portkey"] = _start_portkey(args.portkey, args.node, upstream_url, core,
                                              work)
        yield peers
    finally:
        for server in reversed(list(peers.values())):
            server.proc.stop()


def own_servers(stack: Stack, version: str) -> dict[str, Server]:
    return {
        "tokenlane": Server("tokenlane", stack.gateway, f"{stack.gateway_url}/v1/chat/completions",
                            (("authorization", f"Bearer {MASTER_KEY}"),), "bench", version,
                            "tokenlane serve: balanced, 2 deployments, auth on, metrics on"),
        "floor": Server("floor", stack.floor, f"{stack.floor_url}/fast-a/v1/chat/completions",
                        (), "bench", "",
                        "floor.py: Starlette pass-through, bytes streamed untouched"),
    }


# --------------------------------------------------------------------------- measuring


async def measure(stack: Stack, server: Server, target: Target, concurrency: int,
                  duration: float) -> dict[str, Any]:
    """One closed-loop run against one server; its whole process tree's CPU over the run."""
    marks: dict[str, float] = {}

    def start() -> None:
        marks["proc"] = tree_cpu_s(server.proc.pid)
        marks["upstream"] = stack.upstream.cpu_s()
        marks["self"] = time.process_time()

    result = await run_load(target, concurrency, duration_s=duration, on_start=start)
    proc_cpu = tree_cpu_s(server.proc.pid) - marks["proc"]
    upstream_cpu = stack.upstream.cpu_s() - marks["upstream"]
    self_cpu = time.process_time() - marks["self"]
    n = max(result.requests, 1)
    wall = max(result.elapsed_s, 1e-9)
    return {
        "requests": result.requests,
        "errors": result.errors,
        "error_samples": result.error_samples,
        "rps": result.rps,
        "latency_p50_ms": _ms(percentile(result.latencies_s, 50)),
        "latency_p99_ms": _ms(percentile(result.latencies_s, 99)),
        "ttft_p50_ms": _ms(percentile(result.ttfts_s, 50)),
        "cpu_ms_per_request": proc_cpu / n * 1000.0,
        "upstream_cpu_ms_per_request": upstream_cpu / n * 1000.0,
        "loadgen_cpu_ms_per_request": self_cpu / n * 1000.0,
        "proc_core_busy": proc_cpu / wall,
        "side_core_busy": (upstream_cpu + self_cpu) / wall,
        "wall_s": result.elapsed_s,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


async def idle_cpu(servers: dict[str, Server], seconds: float) -> dict[str, float]:
    """CPU ms per second each server burns with no request in flight (timers, housekeeping):
    part of its CPU per request under load too."""
    before = {name: tree_cpu_s(s.proc.pid) for name, s in servers.items()}
    await asyncio.sleep(seconds)
    return {name: (tree_cpu_s(s.proc.pid) - before[name]) / seconds * 1000.0
            for name, s in servers.items()}


def selected(args: argparse.Namespace) -> tuple[Scenario, ...]:
    if not args.only:
        return SCENARIOS
    wanted = set(args.only.split(","))
    unknown = wanted - {s.name for s in SCENARIOS}
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return tuple(s for s in SCENARIOS if s.name in wanted)


async def run_rounds(stack: Stack, servers: dict[str, Server],
                     args: argparse.Namespace) -> dict[str, Any]:
    scenario_list = selected(args)
    active = [name for name in SERVERS if name in servers]
    for stream in sorted({sc.stream for sc in scenario_list}):
        for name in active:  # imports, pools, first-request caches
            await run_load(servers[name].target(stream, args.tokens), 16,
                           duration_s=args.warmup)
    idle = await idle_cpu(servers, args.idle)
    print("  idle CPU ms/s: " + ", ".join(f"{n} {v:.2f}" for n, v in idle.items()), flush=True)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        sc.name: {name: [] for name in active} for sc in scenario_list}
    for r in range(args.rounds):
        for sc in scenario_list:
            k = r % len(active)
            for name in active[k:] + active[:k]:  # rotated so drift hits every server alike
                server = servers[name]
                result = await measure(stack, server, server.target(sc.stream, args.tokens),
                                       sc.concurrency, args.duration)
                runs[sc.name][name].append(result)
                print(f"  round {r + 1}/{args.rounds} {sc.name:<15} {name:<9} "
                      f"{result['rps']:8.0f} req/s  p50 {fmt(result['latency_p50_ms'], 2)} ms  "
                      f"cpu {fmt(result['cpu_ms_per_request'], 3)} ms/req  "
                      f"errors {result['errors']}", flush=True)
    scenarios: dict[str, Any] = {}
    for sc in scenario_list:
        per = {name: summarize(runs[sc.name][name]) for name in active}
        ratios: dict[str, Any] = {}
        for peer in PEERS:
            if peer not in per:
                continue
            tl, other = per["tokenlane"]["cpu_ms_per_request"], per[peer]["cpu_ms_per_request"]
            paired = sorted(a["cpu_ms_per_request"] / b["cpu_ms_per_request"]
                            for a, b in zip(runs[sc.name]["tokenlane"], runs[sc.name][peer],
                                            strict=True) if b["cpu_ms_per_request"])
            ratio = tl / other if other else None
            target = TARGET_RATIO[(peer, sc.stream)]
            valid = per[peer]["errors"] == 0 and per["tokenlane"]["errors"] == 0
            ratios[peer] = {
                "ratio": ratio,
                "ratio_paired": median(paired),
                "ratio_paired_range": (paired[0], paired[-1]) if paired else None,
                "target": target,
                "met": (None if not valid or ratio is None else
                        ratio <= target if target < 1 else ratio < target),
            }
        scenarios[sc.name] = {"stream": sc.stream, "concurrency": sc.concurrency,
                              "tokens": args.tokens if sc.stream else None,
                              "servers": per, "ratios": ratios}
    return {"idle_cpu_ms_per_s": idle, "scenarios": scenarios}


# --------------------------------------------------------------------------- report


def _verdict(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "–"
    if entry["met"] is None:
        return "invalid (errors)"
    return "met" if entry["met"] else "MISSED"


def render(data: dict[str, Any]) -> str:
    servers = data["servers"]
    present = [n for n in SERVERS if n in servers]
    lines = ["# tokenlane peers benchmark", "", describe_machine(data["machine"]),
             f"commit: {data['commit']}", ""]
    for name in present:
        s = servers[name]
        lines.append(f"- **{name}**{' ' + s['version'] if s['version'] else ''}: {s['config']}")
    lines += [f"- skipped: {', '.join(data['skipped'])}" if data["skipped"] else "",
              (f"- {data['config']['rounds']} rounds × {data['config']['duration_s']} s per run, "
               f"medians over rounds; streams of {data['config']['tokens']} tokens; CPU = the "
               "server's whole process tree, user + system, ÷ requests; every server on core 0"),
              "", "## CPU ms per request", ""]
    headers = ["scenario", *present]
    for peer in PEERS:
        if peer in servers:
            headers += [f"tokenlane/{peer}", "target"]
    headers.append("errors (" + "/".join(present) + ")")
    rows = []
    for name, sc in data["scenarios"].items():
        row: list[Any] = [name]
        row += [fmt(sc["servers"][n]["cpu_ms_per_request"], 3) for n in present]
        for peer in PEERS:
            if peer in servers:
                entry = sc["ratios"].get(peer)
                target = TARGET_RATIO[(peer, sc["stream"])]
                row += [fmt(entry["ratio"], 3) if entry else "–",
                        f"{'≤' if target < 1 else '<'} {target:.3g}: {_verdict(entry)}"]
        row.append("/".join(str(sc["servers"][n]["errors"]) for n in present))
        rows.append(row)
    lines += [markdown_table(headers, rows), ""]
    lines += ["## Throughput and latency (context, closed loop, each server alone on core 0)", ""]
    rows = [[name, *(f"{fmt(sc['servers'][n]['rps'], 0)} / "
                     f"{fmt(sc['servers'][n]['latency_p50_ms'], 1)}" for n in present)]
            for name, sc in data["scenarios"].items()]
    lines += [markdown_table(["scenario", *(f"{n} req/s / p50 ms" for n in present)], rows), ""]
    idle = data["idle_cpu_ms_per_s"]
    lines.append("Idle CPU (no request in flight), ms per second: " +
                 ", ".join(f"{n} {idle[n]:.2f}" for n in present))
    paired = [f"{name} {peer} {fmt(e['ratio_paired'], 3)} ({fmt(e['ratio_paired_range'][0], 3)}"
              f"–{fmt(e['ratio_paired_range'][1], 3)})"
              for name, sc in data["scenarios"].items() for peer, e in sc["ratios"].items()
              if e["ratio_paired_range"]]
    if paired:
        lines.append("Paired ratios (median and range over rounds of each round's "
                     "tokenlane/peer): " + "; ".join(paired))
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--litellm", type=Path, help="the `litellm` script of a venv with "
                                                "litellm[proxy] installed")
    p.add_argument("--portkey", type=Path, help="@portkey-ai/gateway's start-server.js or its "
                                                "node_modules/.bin/gateway link")
    p.add_argument("--node", default="node", help="the node binary for Portkey")
    p.add_argument("--commit", default="HEAD", help="run tokenlane from this commit's src/")
    p.add_argument("--gateway-src", type=Path,
                   help="run tokenlane from this source tree instead (e.g. src, uncommitted "
                        "changes included)")
    p.add_argument("--tokens", type=int, default=50, help="output tokens per reply")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=2.0, help="seconds per measured run")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds per server and kind")
    p.add_argument("--idle", type=float, default=3.0, help="seconds of idle CPU measured")
    p.add_argument("--only", help="comma-separated scenario names (default: all)")
    p.add_argument("--smoke", action="store_true", help="1 round, tiny durations")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.smoke:
        args.rounds, args.duration, args.warmup, args.idle = 1, 0.3, 0.3, 0.5
    # What stack.start_stack reads: the fake upstream, tokenlane and the floor as overhead.py
    # starts them (the paced groups are unused here).
    args.upstream, args.upstream_tokens, args.max_connections = "fake", args.tokens, None
    args.slow_tps, args.slow_ttft, args.paced_tps, args.paced_ttft = 20.0, 0.05, 100.0, 0.02
    args.ab_src, args.ab_state = None, None
    for name in ("litellm", "portkey", "gateway_src", "out"):
        value = getattr(args, name)
        if value is not None:  # absolute: the servers run in a temporary directory
            setattr(args, name, Path(os.path.abspath(value)))
    return args


async def amain(args: argparse.Namespace, commit: str) -> int:
    info = machine_info()
    print(describe_machine(info), flush=True)
    print(f"tokenlane from {args.gateway_src} ({commit})", flush=True)
    cores = sorted(os.sched_getaffinity(0))
    server_core = cores[0] if len(cores) >= 2 else None
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tokenlane-peers-") as tmp:
        os.chdir(tmp)  # whatever a peer writes to its working directory stays out of the repo
        work = Path(tmp)
        with start_stack(args, work) as stack, \
                start_peers(args, stack.upstream_url, server_core, work) as peers:
            if not stack.pinned:
                print("warning: fewer than 2 usable cores; processes are not pinned", flush=True)
            servers = own_servers(stack, commit) | peers
            measured = await run_rounds(stack, servers, args)
            alive = {name: s.proc.popen.poll() is None for name, s in servers.items()}
            logs = {name: s.proc.tail(5) for name, s in peers.items()}
    finish_machine_info(info)
    data: dict[str, Any] = {
        "benchmark": "peers",
        "machine": info,
        "commit": commit,
        "config": {"tokens": args.tokens, "rounds": args.rounds, "duration_s": args.duration,
                   "warmup_s": args.warmup, "smoke": args.smoke, "pinned": len(cores) >= 2},
        "servers": {name: {"version": s.version, "config": s.config}
                    for name, s in servers.items()},
        "skipped": [p for p in PEERS if p not in peers],
        "alive_at_end": alive,
        "peer_log_tails": logs,
        **measured,
        "elapsed_s": time.monotonic() - started,
    }
    markdown = render(data)
    write_results("peers", data, markdown, args.out)
    print("\n" + markdown)
    print(f"\nwrote {args.out / 'peers.json'} and {args.out / 'peers.md'} "
          f"({data['elapsed_s']:.0f} s)")
    return 0 if all(alive.values()) else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import uvloop

    if args.gateway_src is not None:
        return uvloop.run(amain(args, git_commit(args.gateway_src)))
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.commit],
                            capture_output=True, text=True, check=True).stdout.strip()
    args.gateway_src = extract_src(commit)
    try:
        return uvloop.run(amain(args, commit))
    finally:
        shutil.rmtree(args.gateway_src.parent, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
