"""What the gateway costs per request: latency, throughput, CPU and memory, against two baselines.

    .venv/bin/python benchmarks/overhead.py            # full run, about 9 minutes
    .venv/bin/python benchmarks/overhead.py --smoke    # under 30 seconds, tiny counts
    .venv/bin/python benchmarks/overhead.py --profile  # py-spy the gateway at c=16 instead

Three processes: a zero-delay upstream (`fake_upstream.py`, or `--upstream sim` for the
simulator), the gateway (`tokenlane serve --config <generated>`: balanced policy, two
deployments per model, auth and metrics on) and the pass-through floor (`floor.py`). The
gateway and the floor run pinned to core 0; the upstream and this process (the load generator,
`loadgen.py`) share core 1. Every scenario is measured three ways — straight to the upstream
("direct"), through the floor, through the gateway — in rounds, and medians are reported.
Then 1,000 slow streams (20 tokens/s) go through the gateway at once.

Results: benchmarks/results/overhead.json and overhead.md (also printed). Column meanings are
in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    RESULTS,
    describe_machine,
    finish_machine_info,
    fmt,
    machine_info,
    median,
    percentile,
    write_results,
)
from loadgen import LoadResult, Target, run_load
from overhead_report import TARGET_SLOW_RSS_MB, TARGETS, render, targets_check
from profiling import summarize_folded
from stack import MASTER_KEY, PYTHON, Stack, start_stack
from workers import add_arguments as add_worker_arguments
from workers import render_workers, run_workers


class Scenario(NamedTuple):
    """One measured load. `group` picks the upstream's pace: "fast" answers at once (every
    token in hand, so upstream reads carry many events); "pace" sends a token every
    1/--paced-tps s and "slow" every 1/--slow-tps s, each token its own upstream read and
    client write, as with a real provider. `tokens` overrides --tokens; `once` runs each
    worker's stream exactly once, starts spread over one stream's length (per-event scenarios:
    streams lasting seconds, measured over whole streams)."""

    name: str
    stream: bool
    concurrency: int
    group: str
    tokens: int | None = None
    once: bool = False


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("nonstream_c1", False, 1, "fast"),
    Scenario("nonstream_c16", False, 16, "fast"),
    Scenario("nonstream_c64", False, 64, "fast"),
    Scenario("nonstream_c256", False, 256, "fast"),
    Scenario("stream_c16", True, 16, "fast"),
    Scenario("stream_c256", True, 256, "fast"),
    Scenario("stream_paced_c64", True, 64, "pace"),
    # Relay cost per event at a real provider's pace (issue 17): 100-token streams, an event
    # every 50 ms (the slow group at its default 20 tokens/s), 64 and 512 at once.
    Scenario("events_paced_c64", True, 64, "slow", tokens=100, once=True),
    Scenario("events_paced_c512", True, 512, "slow", tokens=100, once=True),
)
PACE_GROUPS = ("pace", "slow")
GROUPS = {"fast": ("bench", "fast-a"), "pace": ("bench-paced", "pace-a"),
          "slow": ("bench-slow", "slow-a")}  # model, provider
PROFILED = ("nonstream_c16", "stream_c16", "stream_paced_c64")


# --------------------------------------------------------------------------- measuring


def chat_body(model: str, stream: bool, tokens: int) -> bytes:
    return orjson.dumps({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "Explain in one paragraph why the sky looks blue "
                                        "during the day and red at sunset."},
        ],
        "max_tokens": tokens,
        "stream": stream,
    })


def targets(stack: Stack, stream: bool, tokens: int, group: str = "fast") -> dict[str, Target]:
    model, provider = GROUPS[group]
    expect = tokens if stream else 0
    auth = (("authorization", f"Bearer {MASTER_KEY}"),)
    return {
        "direct": Target(f"{stack.upstream_url}/{provider}/v1/chat/completions",
                         chat_body(model, stream, tokens), (), stream, expect),
        "floor": Target(f"{stack.floor_url}/{provider}/v1/chat/completions",
                        chat_body(model, stream, tokens), (), stream, expect),
        "gateway": Target(f"{stack.gateway_url}/v1/chat/completions",
                          chat_body(model, stream, tokens), auth, stream, expect),
        "gateway_b": Target(f"{stack.gateway_b_url}/v1/chat/completions",
                            chat_body(model, stream, tokens), auth, stream, expect),
        # The least a relay that measures every request does (floor.py): parse, count, rename.
        "floor_measured": Target(f"{stack.floor_url}/measured/{provider}/v1/chat/completions",
                                 chat_body(model, stream, tokens), (), stream, expect),
        # Non-streaming clients only: the floor that reads the upstream's stream for them.
        **({} if stream else {"floor_streamed": Target(
            f"{stack.floor_url}/streamed/{provider}/v1/chat/completions",
            chat_body(model, stream, tokens), (), stream, expect)}),
    }


def tokens_of(scenario: Scenario, args: argparse.Namespace) -> int:
    return scenario.tokens or args.tokens


def stream_seconds(scenario: Scenario, args: argparse.Namespace) -> float:
    """How long one stream of a paced group lasts (0 for the instant upstream)."""
    if scenario.group == "pace":
        return args.paced_ttft + tokens_of(scenario, args) / args.paced_tps
    if scenario.group == "slow":
        return args.slow_ttft + tokens_of(scenario, args) / args.slow_tps
    return 0.0


async def measure(stack: Stack, target_name: str, target: Target, concurrency: int,
                  duration: float, stagger: float = 0.0, once: bool = False) -> dict[str, Any]:
    """One run against one target; the measured process is the one serving `target`.
    `once`: each worker sends one request (else a closed loop for `duration`)."""
    served_by = {"direct": stack.upstream, "floor": stack.floor, "gateway": stack.gateway,
                 "gateway_b": stack.gateway_b, "floor_streamed": stack.floor,
                 "floor_measured": stack.floor}
    proc = served_by[target_name]
    assert proc is not None
    marks: dict[str, float] = {}

    def start() -> None:
        marks["proc"] = proc.cpu_s()
        marks["upstream"] = stack.upstream.cpu_s()
        marks["self"] = time.process_time()

    peak_reset = proc.reset_peak()
    result = await run_load(target, concurrency, duration_s=None if once else duration,
                            requests_per_worker=1 if once else None, on_start=start,
                            stagger_s=stagger)
    proc_cpu = proc.cpu_s() - marks["proc"]
    upstream_cpu = stack.upstream.cpu_s() - marks["upstream"]
    self_cpu = time.process_time() - marks["self"]
    n = max(result.requests, 1)
    ms = 1000.0
    # A stream's events: its content tokens (what a client sees one by one); the role,
    # finish, usage and [DONE] events ride along and are not counted.
    events = (result.requests - result.errors) * target.expect_tokens
    return {
        "requests": result.requests,
        "errors": result.errors,
        "error_samples": result.error_samples,
        "rps": result.rps,
        "latency_p50_ms": _ms(percentile(result.latencies_s, 50)),
        "latency_p99_ms": _ms(percentile(result.latencies_s, 99)),
        "ttft_p50_ms": _ms(percentile(result.ttfts_s, 50)),
        "ttft_p99_ms": _ms(percentile(result.ttfts_s, 99)),
        "cpu_ms_per_request": proc_cpu / n * ms,
        "events": events,
        "cpu_us_per_event": proc_cpu / events * 1e6 if events else None,
        "events_per_core_s": events / proc_cpu if events and proc_cpu > 0 else None,
        "upstream_cpu_ms_per_request": upstream_cpu / n * ms,
        "loadgen_cpu_ms_per_request": self_cpu / n * ms,
        # Core 1 (upstream + load generator) busy share: near 100% means the measurement,
        # not the process under test, set the pace.
        "side_core_busy": (upstream_cpu + self_cpu) / max(result.elapsed_s, 1e-9),
        "proc_core_busy": proc_cpu / max(result.elapsed_s, 1e-9),
        "peak_rss_mb": proc.peak_rss_mb(),
        "peak_rss_is_per_scenario": peak_reset,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


_EMPTY: dict[str, Any] = {  # a target left out (--gateway-only)
    "requests": 0, "errors": 0, "error_samples": [], "rps": None, "latency_p50_ms": None,
    "latency_p99_ms": None, "ttft_p50_ms": None, "ttft_p99_ms": None,
    "cpu_ms_per_request": None, "events": 0, "cpu_us_per_event": None,
    "events_per_core_s": None, "upstream_cpu_ms_per_request": None,
    "loadgen_cpu_ms_per_request": None, "side_core_busy": None, "proc_core_busy": None,
    "peak_rss_mb": None, "peak_rss_is_per_scenario": False}


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds of every numeric field; sums of requests and errors."""
    out: dict[str, Any] = {"rounds": len(rounds)}
    for key in rounds[0]:
        values = [r[key] for r in rounds]
        if key in ("requests", "errors"):
            out[key] = sum(values)
        elif key == "error_samples":
            out[key] = [s for v in values for s in v][:5]
        elif key == "peak_rss_mb":
            out[key] = max(values)
        elif isinstance(values[0], bool):
            out[key] = all(values)
        else:
            out[key] = median(values)
    return out


def derive(per_target: dict[str, dict[str, Any]]) -> dict[str, Any]:
    d, f, g = (per_target[t] for t in TARGETS)
    streamed = per_target.get("floor_streamed", _EMPTY)
    measured = per_target.get("floor_measured", _EMPTY)

    def diff(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b == 0 else a / b

    out = {} if "gateway_b" not in per_target else {"ab": {
        "cpu_ms_a": g["cpu_ms_per_request"], "cpu_ms_b": per_target["gateway_b"]["cpu_ms_per_request"],
        "cpu_ratio_b_a": ratio(per_target["gateway_b"]["cpu_ms_per_request"],
                               g["cpu_ms_per_request"]),
        "rps_a": g["rps"], "rps_b": per_target["gateway_b"]["rps"],
        "p50_ms_a": g["latency_p50_ms"], "p50_ms_b": per_target["gateway_b"]["latency_p50_ms"],
        "ttft_p50_ms_a": g["ttft_p50_ms"], "ttft_p50_ms_b": per_target["gateway_b"]["ttft_p50_ms"],
    }}
    return out | {
        "added_latency_p50_ms": diff(g["latency_p50_ms"], d["latency_p50_ms"]),
        "added_latency_p99_ms": diff(g["latency_p99_ms"], d["latency_p99_ms"]),
        "floor_added_latency_p50_ms": diff(f["latency_p50_ms"], d["latency_p50_ms"]),
        "floor_added_latency_p99_ms": diff(f["latency_p99_ms"], d["latency_p99_ms"]),
        "throughput_ratio": ratio(g["rps"], d["rps"]),
        "floor_throughput_ratio": ratio(f["rps"], d["rps"]),
        "ttft_overhead_p50_ms": diff(g["ttft_p50_ms"], d["ttft_p50_ms"]),
        "ttft_overhead_p99_ms": diff(g["ttft_p99_ms"], d["ttft_p99_ms"]),
        "floor_ttft_overhead_p50_ms": diff(f["ttft_p50_ms"], d["ttft_p50_ms"]),
        "gateway_cpu_ms_per_request": g["cpu_ms_per_request"],
        "floor_cpu_ms_per_request": f["cpu_ms_per_request"],
        "cpu_ratio_gateway_floor": ratio(g["cpu_ms_per_request"], f["cpu_ms_per_request"]),
        "streamed_floor_cpu_ms_per_request": streamed["cpu_ms_per_request"],
        "cpu_ratio_gateway_streamed_floor": ratio(g["cpu_ms_per_request"],
                                                  streamed["cpu_ms_per_request"]),
        "measured_floor_cpu_ms_per_request": measured["cpu_ms_per_request"],
        "cpu_ratio_gateway_measured_floor": ratio(g["cpu_ms_per_request"],
                                                  measured["cpu_ms_per_request"]),
        "gateway_peak_rss_mb": g["peak_rss_mb"],
        "latency_ratio_gateway_floor_p50": ratio(diff(g["latency_p50_ms"], d["latency_p50_ms"]),
                                                 diff(f["latency_p50_ms"], d["latency_p50_ms"])),
    }


def selected(args: argparse.Namespace) -> tuple[Scenario, ...]:
    if not args.only:
        return SCENARIOS
    if args.only == "none":
        return ()
    wanted = set(args.only.split(","))
    unknown = wanted - {s.name for s in SCENARIOS}
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return tuple(s for s in SCENARIOS if s.name in wanted)


async def run_scenarios(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    scenario_list = selected(args)
    active = [t for t in TARGETS if not args.gateway_only or t == "gateway"]
    if not args.gateway_only:
        active.append("floor_streamed")  # where the scenario has one (non-streaming)
        active.append("floor_measured")
    if stack.gateway_b is not None:
        active.append("gateway_b")
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        sc.name: {t: [] for t in active} for sc in scenario_list}
    # Warm every path (imports, pools, first-request caches) before anything is measured.
    for stream, group in {(sc.stream, sc.group) for sc in scenario_list}:
        for t, target in targets(stack, stream, args.tokens, group).items():
            if t in active:
                await run_load(target, 16, requests_per_worker=1) if group in PACE_GROUPS \
                    else await run_load(target, 16, duration_s=args.warmup)
    for r in range(args.rounds):
        for sc in scenario_list:
            k = r % len(active)
            scenario_targets = targets(stack, sc.stream, tokens_of(sc, args), sc.group)
            for t in active[k:] + active[:k]:  # rotate so drift hits every target alike
                if t not in scenario_targets:
                    continue
                target = scenario_targets[t]
                # Paced streams all last the same: spread their starts over one stream's length.
                result = await measure(stack, t, target, sc.concurrency, args.duration,
                                       stream_seconds(sc, args), sc.once)
                runs[sc.name][t].append(result)
                name = sc.name
                print(f"  round {r + 1}/{args.rounds} {name:<17} {t:<9} "
                      f"{result['rps']:8.0f} req/s  p50 {fmt(result['latency_p50_ms'], 3)} ms  "
                      f"cpu {fmt(result['cpu_ms_per_request'], 3)} ms/req  "
                      f"errors {result['errors']}", flush=True)
    scenarios: dict[str, Any] = {}
    for sc in scenario_list:
        per_target = {t: summarize(runs[sc.name][t]) if runs[sc.name].get(t) else _EMPTY
                      for t in [*TARGETS, *(t for t in ("floor_streamed", "floor_measured", "gateway_b")
                                            if runs[sc.name].get(t))]}
        scenarios[sc.name] = {"stream": sc.stream, "concurrency": sc.concurrency,
                              "upstream": sc.group, "tokens": tokens_of(sc, args),
                              "per_event": sc.once, "targets": per_target,
                           **derive(per_target)}
        if "ab" in scenarios[sc.name]:
            scenarios[sc.name]["ab"] |= paired_ratios(runs[sc.name]["gateway"],
                                                      runs[sc.name]["gateway_b"])
    return scenarios


def paired_ratios(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    """b's CPU per request over a's, round by round (the two ran back to back in each round,
    so what drifts over the run, the machine's clock or a neighbour, mostly cancels): the
    median, and the middle half of the rounds as the spread."""
    ratios = sorted(y["cpu_ms_per_request"] / x["cpu_ms_per_request"] for x, y in zip(a, b)
                    if x["cpu_ms_per_request"] and y["cpu_ms_per_request"])
    if not ratios:
        return {"cpu_ratio_b_a_paired": None, "cpu_ratio_b_a_iqr": None}
    return {"cpu_ratio_b_a_paired": median(ratios),
            "cpu_ratio_b_a_iqr": (percentile(ratios, 25), percentile(ratios, 75))}


async def run_slow_streams(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """N streams at once through the gateway, each `tokens` tokens at `slow_tps` tokens/s."""
    n = args.slow_streams
    target = Target(f"{stack.gateway_url}/v1/chat/completions",
                    chat_body("bench-slow", True, args.tokens),
                    (("authorization", f"Bearer {MASTER_KEY}"),), True, args.tokens)
    gw = stack.gateway
    peak_reset = gw.reset_peak()
    rss_before = gw.rss_mb()
    cpu0 = gw.cpu_s()
    result: LoadResult = await run_load(target, n, requests_per_worker=1, connect_first=False)
    cpu = gw.cpu_s() - cpu0
    ideal = args.slow_ttft + args.tokens / args.slow_tps
    completed = len(result.latencies_s)
    peak = gw.peak_rss_mb()
    return {
        "streams": n,
        "tokens_per_stream": args.tokens,
        "upstream_tokens_per_s": args.slow_tps,
        "ideal_duration_s": ideal,
        "completed": completed,
        "errors": result.errors,
        "error_samples": result.error_samples,
        "wall_s": result.elapsed_s,
        "duration_p50_s": percentile(result.latencies_s, 50),
        "duration_p99_s": percentile(result.latencies_s, 99),
        "duration_max_s": max(result.latencies_s, default=None),
        "ttft_p50_ms": _ms(percentile(result.ttfts_s, 50)),
        "ttft_p99_ms": _ms(percentile(result.ttfts_s, 99)),
        "gateway_cpu_ms_per_stream": cpu / max(n, 1) * 1000,
        "gateway_cpu_busy": cpu / max(result.elapsed_s, 1e-9),
        "gateway_rss_before_mb": rss_before,
        "gateway_peak_rss_mb": peak,
        "peak_rss_is_per_scenario": peak_reset,
        "passed": completed == n and result.errors == 0 and peak < TARGET_SLOW_RSS_MB,
    }


def scrape_metrics(stack: Stack) -> dict[str, Any]:
    """Prove metrics were on: the gateway counted the attempts it served."""
    import httpx

    text = httpx.get(f"{stack.gateway_url}/metrics", timeout=10,
                     headers={"authorization": f"Bearer {MASTER_KEY}"}).text
    attempts = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("tokenlane_requests_total{"))
    return {"bytes": len(text), "attempts_counted": attempts}


# --------------------------------------------------------------------------- profiling


async def run_profile(stack: Stack, args: argparse.Namespace) -> None:
    """py-spy the gateway under PROFILED scenarios; collapsed stacks + per-area summaries."""
    pyspy = Path(PYTHON).with_name("py-spy")
    if not pyspy.exists():
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    for stream in (False, True):
        await run_load(targets(stack, stream, args.tokens)["gateway"], 16, duration_s=1.0)
    chosen = selected(args) if args.only else tuple(s for s in SCENARIOS if s.name in PROFILED)
    for sc in chosen:
        label = sc.name
        args.out.mkdir(parents=True, exist_ok=True)
        raw = args.out / f"profile_{label}.folded"
        spy = await asyncio.create_subprocess_exec(
            str(pyspy), "record", "--pid", str(stack.gateway.pid), "--rate", "500",
            "--duration", str(int(args.profile_seconds)), "--format", "raw",
            "--output", str(raw), "--nonblocking",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await asyncio.sleep(1.0)
        target = targets(stack, sc.stream, tokens_of(sc, args), sc.group)["gateway"]
        result = await run_load(target, sc.concurrency, duration_s=args.profile_seconds - 1.5,
                                stagger_s=stream_seconds(sc, args))
        await asyncio.wait_for(spy.wait(), timeout=60)
        summary = summarize_folded(raw, result.requests)
        (args.out / f"profile_{label}.txt").write_text(summary)
        print(f"\n=== {label}: {result.requests} requests profiled ===\n{summary}")


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny counts, under 30 s")
    p.add_argument("--profile", action="store_true",
                   help="profile the gateway with py-spy (the PROFILED scenarios, or --only's; "
                        "no overhead tables)")
    p.add_argument("--upstream", choices=["fake", "sim"], default="fake")
    p.add_argument("--tokens", type=int, default=50, help="output tokens per reply")
    p.add_argument("--rounds", type=int)
    p.add_argument("--duration", type=float, help="seconds per measured run")
    p.add_argument("--warmup", type=float)
    p.add_argument("--slow-streams", type=int)
    p.add_argument("--slow-tps", type=float, default=None,
                   help="tokens/s of the slow upstream (slow streams, events_paced_*; "
                        "default 20, 200 with --smoke)")
    p.add_argument("--slow-ttft", type=float, default=0.05)
    p.add_argument("--paced-tps", type=float, default=100.0,
                   help="tokens/s of the paced upstream (stream_paced_* scenarios)")
    p.add_argument("--paced-ttft", type=float, default=0.02)
    p.add_argument("--max-connections", type=int, default=None,
                   help="per-provider upstream pool size in the gateway config "
                        "(default: the gateway's own default)")
    p.add_argument("--profile-seconds", type=float, default=8.0)
    p.add_argument("--only", help="comma-separated scenario names to run (default: all; "
                                  "'none' for just the slow streams)")
    p.add_argument("--skip-slow", action="store_true", help="leave out the slow-streams run")
    p.add_argument("--gateway-only", action="store_true",
                   help="measure only through the gateway (no direct/floor, so no ratios)")
    p.add_argument("--ab-state", choices=["redis"],
                   help="also run a second gateway (this code, or --ab-src's) with "
                        "state.backend: redis on a redis-server started for the run, measured "
                        "in the same rounds: the shared state's cost per request")
    p.add_argument("--ab-src", type=Path,
                   help="also run a second gateway from this source tree (e.g. a patched copy "
                        "of src/) on the same core, measured in the same rounds: an A/B table")
    p.add_argument("--gateway-src", type=Path,
                   help="run the gateway from this source tree (PYTHONPATH), e.g. a patched "
                        "copy of src/ for an A/B measurement")
    p.add_argument("--out", type=Path, default=RESULTS)
    add_worker_arguments(p)
    args = p.parse_args(argv)
    smoke = args.smoke
    args.rounds = args.rounds or (1 if smoke else 3)
    args.duration = args.duration or (0.3 if smoke else 2.0)
    args.warmup = args.warmup if args.warmup is not None else (0.2 if smoke else 1.0)
    args.slow_streams = args.slow_streams or (100 if smoke else 1000)
    args.upstream_tokens = max(args.worker_stream_tokens,
                               *(sc.tokens or 0 for sc in SCENARIOS))
    if smoke and args.slow_tps is None:
        args.slow_tps = 200.0  # 100-token paced streams in half a second
    args.slow_tps = args.slow_tps or 20.0
    return args


async def amain(args: argparse.Namespace) -> int:
    info = machine_info()
    print(describe_machine(info), flush=True)
    with tempfile.TemporaryDirectory(prefix="tokenlane-bench-") as tmp, \
            start_stack(args, Path(tmp)) as stack:
        if not stack.pinned:
            print("warning: fewer than 2 usable cores; processes are not pinned", flush=True)
        if args.profile:
            await run_profile(stack, args)
            return 0
        started = time.monotonic()
        scenarios = await run_scenarios(stack, args)
        slow = None
        if not args.skip_slow:
            print(f"  {args.slow_streams} slow streams through the gateway ...", flush=True)
            slow = await run_slow_streams(stack, args)
        gateway_alive = stack.gateway.popen.poll() is None
        metrics = scrape_metrics(stack)
        # A focused run (some scenarios, one gateway's A/B) leaves the workers part out.
        focused = (args.skip_workers or args.only or args.gateway_only or args.ab_src
                   or args.ab_state)
        workers = None if focused else await run_workers(
            args, stack.upstream, stack.upstream_url, Path(tmp), chat_body)
        data: dict[str, Any] = {
            "benchmark": "overhead",
            "machine": info,
            "config": {"upstream": args.upstream, "tokens": args.tokens, "rounds": args.rounds,
                       "duration_s": args.duration, "smoke": args.smoke,
                       "pinned": stack.pinned, "max_connections": args.max_connections,
                       "gateway_src": str(args.gateway_src) if args.gateway_src else "installed",
                       "ab_src": (str(args.ab_src) if args.ab_src else
                                  "state.backend: redis" if args.ab_state else None),
                       "gateway": "tokenlane serve: balanced, 2 deployments, auth on, metrics on"},
            "scenarios": scenarios,
            "slow_streams": slow,
            "gateway_alive_at_end": gateway_alive,
            "gateway_metrics": metrics,
            "workers": workers,
            "elapsed_s": time.monotonic() - started,
        }
        finish_machine_info(info)
        data["targets"] = targets_check(scenarios, slow)
        markdown = render(data) + "\n" + render_workers(workers)
        write_results("overhead", data, markdown, args.out)
        print("\n" + markdown)
        print(f"\nwrote {args.out / 'overhead.json'} and {args.out / 'overhead.md'} "
              f"({data['elapsed_s']:.0f} s)")
        return 0 if gateway_alive else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import uvloop

    return uvloop.run(amain(args))


if __name__ == "__main__":
    raise SystemExit(main())
