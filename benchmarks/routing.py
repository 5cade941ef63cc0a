"""How well does measured routing route? Policies against baselines and an oracle, on the simulator.

    .venv/bin/python benchmarks/routing.py            # full run
    .venv/bin/python benchmarks/routing.py --smoke    # tiny counts, under 30 seconds

Every arm gets its own simulator, its own `Engine` (the real one, built as `create_app`
builds it) and one `ManualClock` shared by both, so simulated seconds cost no wall time and a
run is deterministic. Requests go one at a time through an in-process lockstep transport
(`lockstep.py`), so each TTFT and decode speed the engine measures is exactly the simulated
one. Before each request the clock advances by `--gap` seconds (the arrival gap); scenario
changes (`Simulator.update`) happen at fixed request indices, the same for every arm.

Arms, all served by the same engine code:
  policies     throughput, latency, price, balanced: the model's configured policy
  baselines    random, round-robin, best-at-start (the deployment the balanced oracle picks
               at request 0, kept forever): one deployment per request, no fallbacks
  oracles      oracle-<policy>: knows the simulator's current specs and sends the engine the
               true ranking for that policy's objective as `provider.order` (with fallbacks;
               failing providers and, under an SLO, those missing it go last)

Results: benchmarks/results/routing.json and routing.md (also printed). Columns are described
in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    RESULTS,
    describe_machine,
    finish_machine_info,
    machine_info,
    write_results,
)
from lockstep import LockstepASGITransport
from routing_metrics import ArmRun, RequestRecord, merge_seeds, render, summarize, vs_oracle
from routing_scenarios import (
    ARMS,
    POLICIES,
    SCENARIOS,
    VALUE_OF_TIME,
    Change,
    Scenario,
    true_scores,
)

from tokenlane.clock import ManualClock
from tokenlane.config import parse_settings
from tokenlane.errors import TokenlaneError
from tokenlane.providers import build_dialect
from tokenlane.request import chat_request_from_body
from tokenlane.routing.engine import Engine
from tokenlane.server import create_app
from tokenlane.sim import SimProviderSpec, Simulator
from tokenlane.stats.observation import Observation

PROMPT = "Summarise the following paragraph in two sentences. " * 8  # ~100 prompt tokens


# --------------------------------------------------------------------------- one arm


def gateway_settings(scenario: Scenario, policy: str, output_tokens: int) -> dict[str, Any]:
    return {
        "server": {"auth": {"enabled": False}},
        "providers": {p.name: {"base_url": f"http://sim/{p.name}/v1"}
                      for p in scenario.providers},
        "routing": {"policy": policy, "value_of_time": VALUE_OF_TIME,
                    "expected_output_tokens": output_tokens},
        "models": {"m": {"deployments": [
            {"provider": p.name, "model": f"{p.name}-model",
             "price": {"input": p.price[0], "output": p.price[1]}}
            for p in scenario.providers]}},
    }


def build(scenario: Scenario, policy: str, output_tokens: int, seed: int
          ) -> tuple[Engine, Simulator, ManualClock, list[Observation]]:
    """The gateway's own engine (from `create_app`), talking in-process to a lockstep simulator.

    Building through `create_app` keeps every part the server wires in (stats, circuits,
    hedge budget, metrics hooks) identical to production; only the upstream HTTP clients are
    swapped for the lockstep transport, and `finish_attempt` is wrapped to see every attempt.
    """
    clock = ManualClock()
    specs = [SimProviderSpec(name=p.name, ttft_s=p.ttft_s, tokens_per_s=p.tokens_per_s,
                             output_tokens=output_tokens, jitter=0.1, seed=seed * 100 + i)
             for i, p in enumerate(scenario.providers)]
    sim = Simulator(specs, clock=clock)
    settings = parse_settings(gateway_settings(scenario, policy, output_tokens))
    app = create_app(settings, env={}, clock=clock, rng=random.Random(seed))
    engine: Engine = app.state.engine
    transport = LockstepASGITransport(sim.app)
    engine.dialects = {
        name: build_dialect(provider, transport)
        for name, provider in engine.catalog.providers.items()}
    seen: list[Observation] = []
    finish = engine.finish_attempt

    def finish_and_record(*args: Any, **kwargs: Any) -> Observation:
        observation = finish(*args, **kwargs)
        seen.append(observation)
        return observation

    engine.finish_attempt = finish_and_record  # type: ignore[method-assign]
    return engine, sim, clock, seen


def _has_content(chunk: dict[str, Any]) -> bool:
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content"):
            return True
    return False


async def run_arm(scenario: Scenario, arm: str, n: int, gap: float, output_tokens: int,
                  seed: int, slo_from: int | None = None) -> ArmRun:
    policy = arm if arm in POLICIES else "balanced"
    engine, sim, clock, seen = build(scenario, policy, output_tokens, seed)
    names = [p.name for p in scenario.providers]
    prices = {p.name: p.price for p in scenario.providers}
    changes: dict[int, list[Change]] = {}
    for c in scenario.changes:
        changes.setdefault(min(n - 1, round(c.at * n)), []).append(c)
    pick = random.Random(seed + 1)
    prompt_tokens = chat_request_from_body(_body({})).prompt_tokens
    start_specs = {nm: sim.spec(nm) for nm in names}
    best_at_start = true_scores(start_specs, prices, "balanced", prompt_tokens,
                                output_tokens, None)[0]
    if slo_from is None:
        slo_from = len(names)
    run = ArmRun(scenario.name, arm)
    wall0, virtual0 = time.perf_counter(), clock.now()
    for i in range(n):
        clock.advance(gap)
        for change in changes.get(i, ()):
            sim.update(change.provider, **change.fields)
        specs = {nm: sim.spec(nm) for nm in names}
        slo = scenario.slo_ttft_s if i >= slo_from else None
        best = {o: true_scores(specs, prices, o, prompt_tokens, output_tokens, slo)[0]
                for o in POLICIES}
        options: dict[str, Any] = {}
        if arm in POLICIES:
            if slo is not None:
                options["require"] = {"max_latency": slo}
        elif arm.startswith("oracle-"):
            # The SLO is already in the true ranking (misses go last); sending `require` too
            # would hand the engine's estimates a veto over the truth.
            options["order"] = true_scores(specs, prices, arm.removeprefix("oracle-"),
                                           prompt_tokens, output_tokens, slo)
        elif arm == "random":
            options = {"order": [pick.choice(names)], "allow_fallbacks": False}
        elif arm == "round-robin":
            options = {"order": [names[i % len(names)]], "allow_fallbacks": False}
        elif arm == "best-at-start":
            options = {"order": [best_at_start], "allow_fallbacks": False}
        run.records.append(await _one_request(engine, clock, seen, i, options, best, slo, run))
    run.wall_s = time.perf_counter() - wall0
    run.virtual_s = clock.now() - virtual0
    await engine.aclose()
    return run


def _body(options: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": PROMPT}],
                            "stream": True}
    if options:
        body["provider"] = options
    return body


async def _one_request(engine: Engine, clock: ManualClock, seen: list[Observation], index: int,
                       options: dict[str, Any], best: dict[str, str], slo: float | None,
                       run: ArmRun) -> RequestRecord:
    seen.clear()
    request = chat_request_from_body(_body(options))
    t0 = clock.now()
    first = end = None
    tokens = 0
    served = None
    cost = 0.0
    ok = False
    try:
        stream = await engine.open(request)
        try:
            async for chunk in stream:
                if _has_content(chunk):
                    tokens += 1
                    if first is None:
                        first = clock.now()
            end = clock.now()
        finally:
            await stream.aclose()
        served = stream.deployment.id.split("/")[0]
        if stream.observation is not None:
            cost = stream.observation.cost
        ok = stream.observation is not None and stream.observation.outcome == "ok"
    except TokenlaneError as exc:
        if len(run.errors_sample) < 3:
            run.errors_sample.append(f"request {index}: {str(exc)[:200]}")
    first_tried = seen[0].deployment.split("/")[0] if seen else served
    ttft = None if first is None else first - t0
    return RequestRecord(
        index=index, at=t0, ok=ok, first_tried=first_tried, served=served,
        ttft_s=ttft, total_s=None if end is None else end - t0, tokens=tokens, cost=cost,
        failed_attempts=sum(1 for o in seen if o.outcome not in ("ok", "cancelled")),
        best=best, slo_miss=None if slo is None or not ok else (ttft is None or ttft > slo),
    )


async def cold_slo_check(scenario: Scenario, requests: int, tokens: int, seed: int
                         ) -> dict[str, Any]:
    """Every request carries the SLO from the very first one, on a cold gateway."""
    run = await run_arm(scenario, "balanced", requests, 1.0, tokens, seed, slo_from=0)
    failed = sum(1 for r in run.records if not r.ok)
    return {"requests": requests, "failed": failed,
            "first_error": run.errors_sample[0] if run.errors_sample else None}


def run_job(job: tuple[int, int, int, float, int, int]) -> dict[str, Any]:
    """One (scenario, arm) run in a worker process; returns its summary."""
    s_index, a_index, n, gap, tokens, seed = job
    scenario, arm = SCENARIOS[s_index], ARMS[a_index]
    run = asyncio.run(run_arm(scenario, arm, n, gap, tokens, seed))
    return summarize(scenario, run, n) | {"seed": seed}


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny counts, under 30 s")
    p.add_argument("--requests", type=int, help="requests per arm and scenario")
    p.add_argument("--tokens", type=int, default=100, help="output tokens per reply")
    p.add_argument("--gap", type=float, default=1.0, help="simulated seconds between requests")
    p.add_argument("--seed", type=int, default=1, help="first seed")
    p.add_argument("--seeds", type=int, help="seeds per arm, medians reported "
                                             "(default 3; 1 with --smoke)")
    p.add_argument("--jobs", type=int, help="worker processes (default: usable cores)")
    p.add_argument("--scenario", action="append", choices=[s.name for s in SCENARIOS],
                   help="run only these (repeatable)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    args.requests = args.requests or (40 if args.smoke else 300)
    args.jobs = args.jobs or max(1, len(os.sched_getaffinity(0)))
    args.seeds = args.seeds or (1 if args.smoke else 3)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine_info()
    print(describe_machine(info), flush=True)
    started = time.monotonic()
    wanted = [i for i, s in enumerate(SCENARIOS) if not args.scenario or s.name in args.scenario]
    seeds = [args.seed + k for k in range(args.seeds)]
    jobs = [(si, ai, args.requests, args.gap, args.tokens, seed)
            for si in wanted for ai in range(len(ARMS)) for seed in seeds]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(run_job, jobs))
    scenarios: dict[str, Any] = {}
    for s in (SCENARIOS[i] for i in wanted):
        rows = {arm: merge_seeds([r for r in results
                                  if r["scenario"] == s.name and r["arm"] == arm])
                for arm in ARMS}
        for arm, r in rows.items():
            r["vs_oracle"] = vs_oracle(rows, arm)
        scenarios[s.name] = {
            "description": s.description,
            "providers": [p.__dict__ for p in s.providers],
            "changes": [{"at_request": min(args.requests - 1, round(c.at * args.requests)),
                         "provider": c.provider, "fields": c.fields} for c in s.changes],
            "slo_ttft_s": s.slo_ttft_s,
            "arms": rows,
        }
    slo = next((s for s in SCENARIOS if s.slo_ttft_s is not None), None)
    if slo is not None and any(SCENARIOS[i] is slo for i in wanted):
        cold = asyncio.run(cold_slo_check(slo, 8, args.tokens, args.seed))
        scenarios[slo.name]["cold_start_with_slo_from_request_0"] = cold
    data = {
        "benchmark": "routing",
        "machine": info,
        "config": {"requests": args.requests, "output_tokens": args.tokens, "gap_s": args.gap,
                   "seed": args.seed, "seeds": args.seeds, "smoke": args.smoke,
                   "jobs": args.jobs},
        "scenarios": scenarios,
        "elapsed_s": time.monotonic() - started,
    }
    finish_machine_info(info)
    markdown = render(data, [SCENARIOS[i] for i in wanted])
    write_results("routing", data, markdown, args.out)
    print("\n" + markdown)
    print(f"\nwrote {args.out / 'routing.json'} and {args.out / 'routing.md'} "
          f"({data['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
