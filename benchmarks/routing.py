"""Does measured routing follow the truth, and come back? Every policy against an oracle.

    .venv/bin/python benchmarks/routing.py                  # full run (3 seeds)
    .venv/bin/python benchmarks/routing.py --smoke          # compressed timelines, 1 seed
    .venv/bin/python benchmarks/routing.py --ab-commit d627e5c    # before/after, same run

Open loop on virtual time. Every arm runs on its own `virtual_time.VirtualTimeLoop`: the
gateway, built exactly as production builds it (`parse_settings` + `create_app` from a config
giving only providers and models, everything else at its defaults, lifespan running, so the
active prober runs too), talks in-process (`asgi_stream.py`) to a `tokenlane.sim.Simulator`;
both read one clock, the loop's. Requests arrive at 4/s (seeded exponential gaps), each its own
task, with prompts of 64–1024 tokens and max_tokens 64–256; scenario changes happen at fixed
scenario seconds. Minutes of scenario time cost seconds of wall time, and a seed always gives
the same numbers.

Arms: each policy of the scenario sends `provider: {sort: <policy>}` (plus the scenario's SLO);
per policy an oracle knows the simulator's true specs when each request arrives and sends
`provider: {order: [...]}` with the true ranking for that policy's objective (failing,
stalled, trickling and SLO-missing providers last). Results: benchmarks/results/routing.json and
routing.md (also printed). Columns: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, describe_machine, finish_machine_info, machine_info, write_results

ROOT = Path(__file__).resolve().parents[1]
RATE_PER_S = 4.0
PROMPT_TOKENS = (64, 1024)
MAX_TOKENS = (64, 256)
# Every config key here exists in older trees too: an A/B run builds both from this.
MASTER_KEY_ENV = {"TOKENLANE_MASTER_KEYS": "routing-benchmark"}


# --------------------------------------------------------------------------- one arm (worker)


def gateway_config(providers: Sequence[Any]) -> dict[str, Any]:
    """A new user's config: where the providers are, what the model is served by and what it
    costs. Everything else (routing, probes, failover, stats) at its defaults."""
    return {
        "providers": {p.name: {"base_url": f"http://sim/{p.name}/v1"} for p in providers},
        "models": {"m": {"deployments": [
            {"provider": p.name, "model": f"{p.name}-model",
             "price": {"input": p.price[0], "output": p.price[1]}} for p in providers]}},
    }


def workload(duration: float, seed: int) -> list[tuple[float, int, int]]:
    """(arrival second, prompt tokens, max_tokens) of every request: the same for every arm of
    a seed, so arms differ only in how they route."""
    rng = random.Random(f"arrivals-{seed}")
    out, at = [], 0.0
    while True:
        at += rng.expovariate(RATE_PER_S)
        if at >= duration:
            return out
        out.append((at, rng.randint(*PROMPT_TOKENS), rng.randint(*MAX_TOKENS)))


_FILLER = ("Routing measures what each provider does and sends every request where it is "
           "best served right now. ")


def prompt_text(tokens: int) -> str:
    """A user message whose estimated prompt size (`prompt_tokens_estimate`) is `tokens`."""
    chars = max(4, (tokens - 4) * 4)
    return (_FILLER * (chars // len(_FILLER) + 1))[:chars]


def _content_tokens(chunk: dict[str, Any]) -> int:
    return sum(1 for c in chunk.get("choices") or () if (c.get("delta") or {}).get("content"))


async def run_arm(job: dict[str, Any]) -> dict[str, Any]:
    """One arm of one scenario for one seed, on the running virtual-time loop."""
    from asgi_stream import StreamingASGITransport
    from routing_metrics import ProbeRecord, RequestRecord, objective_of, summarize
    from routing_scenarios import SCENARIOS, oracle_order
    from virtual_time import LoopClock

    from tokenlane.config import parse_settings
    from tokenlane.errors import TokenlaneError
    from tokenlane.providers import build_dialect
    from tokenlane.request import chat_request_from_body
    from tokenlane.server import create_app
    from tokenlane.sim import SimProviderSpec, Simulator

    scenario = next(s for s in SCENARIOS if s.name == job["scenario"])
    arm, seed, smoke = job["arm"], job["seed"], job["smoke"]
    objective = objective_of(arm)
    loop = asyncio.get_running_loop()
    clock = LoopClock(loop)
    sim = Simulator([SimProviderSpec(name=p.name, ttft_s=p.ttft_s, tokens_per_s=p.tokens_per_s,
                                     output_tokens=MAX_TOKENS[1], jitter=0.1,
                                     seed=seed * 100 + i)
                     for i, p in enumerate(scenario.providers)], clock=clock)
    settings = parse_settings(gateway_config(scenario.providers))
    app = create_app(settings, env=MASTER_KEY_ENV, clock=clock, rng=random.Random(seed))
    engine = app.state.engine
    transport = StreamingASGITransport(sim.app)
    engine.dialects = {name: build_dialect(provider, transport)
                       for name, provider in engine.catalog.providers.items()}
    value_of_time = settings.routing.value_of_time
    names = [p.name for p in scenario.providers]
    prices = {p.name: p.price for p in scenario.providers}
    order_rng = random.Random(f"oracle-{seed}")
    typical = (sum(PROMPT_TOKENS) // 2, sum(MAX_TOKENS) // 2)

    def truth(prompt: int, output: int) -> list[str]:
        specs = {n: sim.spec(n) for n in names}
        return oracle_order(specs, prices, objective, prompt, output, scenario.slo_ttft_s,
                            value_of_time, order_rng)

    def best_now() -> str | None:
        return None if objective == "weighted" else truth(*typical)[0]

    # Every attempt ends in `finish_attempt`; a request's task carries its record in this
    # context variable, so an attempt with none is the gateway's own (a probe).
    current: contextvars.ContextVar[RequestRecord | None] = contextvars.ContextVar(
        "request", default=None)
    probes: list[ProbeRecord] = []
    start = loop.time()
    finish = engine.finish_attempt

    def finish_and_record(*args: Any, **kwargs: Any) -> Any:
        observation = finish(*args, **kwargs)
        provider = observation.deployment.split("/")[0]
        record = current.get()
        if record is None:
            probes.append(ProbeRecord(loop.time() - start, provider, observation.outcome,
                                      observation.cost, best_now()))
        else:
            record.attempts.append((provider, observation.outcome))
            record.cost += observation.cost
        return observation

    engine.finish_attempt = finish_and_record

    async def one_request(at: float, prompt: int, max_tokens: int) -> RequestRecord:
        order = truth(prompt, max_tokens)
        record = RequestRecord(at=at, ok=False,
                               best=None if objective == "weighted" else order[0])
        current.set(record)
        options: dict[str, Any]
        if arm.startswith("oracle-"):
            # The SLO is in the true ranking already: sending it too would let the engine's
            # estimates veto the truth.
            options = {"order": order}
        else:
            options = {"sort": arm} | (scenario.slo or {})
        body = {"model": "m", "messages": [{"role": "user", "content": prompt_text(prompt)}],
                "max_tokens": max_tokens, "stream": scenario.stream, "provider": options}
        specs_at_start = {n: sim.spec(n) for n in names}
        t0 = loop.time()
        try:
            request = chat_request_from_body(body)
            if scenario.stream:
                stream = await engine.open(request)
                try:
                    async for chunk in stream:
                        got = _content_tokens(chunk)
                        if got and record.ttft_s is None:
                            record.ttft_s = loop.time() - t0
                        record.tokens += got
                finally:
                    await stream.aclose()
                observation = stream.observation
                deployment = stream.deployment
            else:
                completion = await engine.complete(request)
                observation, deployment = completion.observation, completion.deployment
                record.tokens = completion.body["usage"]["completion_tokens"]
            record.total_s = loop.time() - t0
            record.served = deployment.id.split("/")[0]
            record.ok = observation is not None and observation.outcome == "ok"
            if not record.ok:
                record.error = f"incomplete: {observation.outcome if observation else 'none'}"
        except TokenlaneError as exc:
            record.error = f"{type(exc).__name__}: {str(exc)[:160]}"
        except Exception as exc:  # noqa: BLE001 - a crash is a finding, reported not raised
            record.error = f"crash {type(exc).__name__}: {str(exc)[:160]}"
        if record.attempts:
            record.first_tried = record.attempts[0][0]
        if record.ok and record.served is not None:
            record.served_tps = specs_at_start[record.served].tokens_per_s
        return record

    timeline = [{"at": at, "kind": phase.kind,
                 "provider": phase.changes[0].provider if phase.changes else None,
                 "changes": phase.changes} for at, phase in scenario.timeline(smoke)]
    events = sorted([(c["at"], 0, c) for c in timeline if c["changes"]]
                    + [(a, 1, (a, p, m)) for a, p, m in
                       workload(scenario.duration(smoke), seed)], key=lambda e: (e[0], e[1]))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    tasks: list[asyncio.Task[RequestRecord]] = []
    async with app.router.lifespan_context(app):
        for at, kind, what in events:
            await asyncio.sleep(max(0.0, start + at - loop.time()))
            if kind == 0:
                what["best_before"] = best_now()
                for change in what["changes"]:
                    sim.update(change.provider, **change.fields)
                what["best_after"] = best_now()
            else:
                tasks.append(asyncio.create_task(one_request(*what)))
        records = list(await asyncio.gather(*tasks))
    summary = summarize(records, probes, [{k: v for k, v in c.items() if k != "changes"}
                                          for c in timeline])
    return summary | {"scenario": scenario.name, "arm": arm, "seed": seed, "smoke": smoke,
                      "virtual_s": loop.time() - start, "wall_s": time.perf_counter() - wall0,
                      "cpu_s": time.process_time() - cpu0}


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    from virtual_time import run_virtual

    return run_virtual(run_arm(job))


def serve_jobs() -> int:
    """Worker mode: one job (JSON) per stdin line in, one result (JSON) per stdout line out.
    Started with PYTHONPATH at the source tree under test (see `Workers`)."""
    import tokenlane

    out = sys.stdout
    sys.stdout = sys.stderr  # nothing else may write into the result channel
    for line in sys.stdin:
        job = json.loads(line)
        try:
            result = run_job(job)
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which stops
            result = {"failed": f"{type(exc).__name__}: {exc}"}
        result["tokenlane"] = str(Path(tokenlane.__file__).resolve().parents[1])
        out.write(json.dumps(result) + "\n")
        out.flush()
    return 0


# --------------------------------------------------------------------------- the run (parent)


class Workers:
    """Long-lived worker subprocesses, one per (slot, source tree), each importing tokenlane
    from its tree: the same code runs every arm, only `PYTHONPATH` differs."""

    def __init__(self) -> None:
        self._procs: dict[tuple[int, str], subprocess.Popen[str]] = {}
        self._lock = threading.Lock()

    def run(self, slot: int, src: str, job: dict[str, Any]) -> dict[str, Any]:
        key = (slot, src)
        with self._lock:
            proc = self._procs.get(key)
            if proc is None:
                env = dict(os.environ, PYTHONPATH=os.pathsep.join(
                    p for p in (src, os.environ.get("PYTHONPATH")) if p))
                proc = subprocess.Popen(
                    [sys.executable, str(Path(__file__).resolve()), "--serve-jobs"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
                self._procs[key] = proc
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(job) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker for {src} died on {job}")
        result: dict[str, Any] = json.loads(line)
        if "failed" in result:
            raise RuntimeError(f"{job} failed under {src}: {result['failed']}")
        return result

    def close(self) -> None:
        for proc in self._procs.values():
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=30)


def _job_key(commit: str, spec: dict[str, Any]) -> tuple[Any, ...]:
    return (commit, spec["scenario"], spec["arm"], spec["seed"], spec["smoke"])


def reusable(path: Path | None, commits: dict[str, str]) -> dict[tuple[Any, ...], Any]:
    """Arm results of an earlier run (its routing_arms.json) that this run may take as they
    are: those of a *committed* tree this run measures too. A run is deterministic (virtual
    time, seeded), so such an arm would give the very same numbers again; a tree with
    uncommitted changes is never reused."""
    if path is None:
        return {}
    clean = {c for c in commits.values() if "uncommitted" not in c and c != "not a git checkout"}
    out = {}
    for item in json.loads(path.read_text()):
        r = item["result"]
        if item["commit"] in clean:
            out[(item["commit"], r["scenario"], r["arm"], r["seed"], r["smoke"])] = r
    return out


def git_rev(rev: str) -> str:
    """`rev` as a short commit id of this repository (ValueError if it names none)."""
    got = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", f"{rev}^{{commit}}"],
                         capture_output=True, text=True, check=False)
    if got.returncode != 0:
        raise ValueError(f"--ab-commit {rev}: not a commit here ({got.stderr.strip()})")
    return got.stdout.strip()


def extract_src(rev: str) -> Path:
    """`src/` as of commit `rev`, extracted to a new temporary directory; returns its path."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", git_rev(rev),
                              "src"], capture_output=True, check=True).stdout
    target = Path(tempfile.mkdtemp(prefix=f"tokenlane-{rev}-"))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target / "src"


def git_commit(tree: Path) -> str:
    """The commit (and whether the tree differs from it) of the repository holding `tree`."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True,
                              check=False).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "not a git checkout"
    dirty = git("status", "--porcelain", "--", "src")
    return commit + (" + uncommitted changes in src/" if dirty else "")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from routing_scenarios import SCENARIOS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true",
                   help="compressed timelines (~40 s of scenario time), 1 seed")
    p.add_argument("--seed", type=int, default=1, help="first seed")
    p.add_argument("--seeds", type=int, help="seeds per arm, medians reported "
                                             "(default 3; 1 with --smoke)")
    p.add_argument("--jobs", type=int, help="worker processes (default: usable cores)")
    p.add_argument("--scenario", action="append", choices=[s.name for s in SCENARIOS],
                   help="run only these (repeatable)")
    ab = p.add_mutually_exclusive_group()
    ab.add_argument("--ab-src", type=Path, help="also run every arm with tokenlane imported "
                    "from this source tree (the 'before'), reported side by side")
    ab.add_argument("--ab-commit", help="as --ab-src, with the src/ of this git commit "
                    "(extracted to a temporary directory)")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--reuse", type=Path, help="an earlier run's routing_arms.json: take its "
                   "arms of a committed tree (e.g. the --ab-commit one) instead of re-running "
                   "them (runs are deterministic)")
    p.add_argument("--serve-jobs", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.jobs = args.jobs or max(1, len(os.sched_getaffinity(0)))
    args.seeds = args.seeds or (1 if args.smoke else 3)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_jobs:
        return serve_jobs()
    info = machine_info()
    this_src = str(ROOT / "src")
    variants = {"after": this_src}
    commits = {"after": git_commit(ROOT)}
    if args.ab_commit is not None:
        args.ab_src = extract_src(args.ab_commit)
        commits["before"] = git_rev(args.ab_commit)
        try:
            return run_all(args, info, variants | {"before": str(args.ab_src)}, commits)
        finally:
            shutil.rmtree(args.ab_src.parent, ignore_errors=True)
    if args.ab_src is not None:
        commits["before"] = git_commit(args.ab_src)
        variants = {"before": str(args.ab_src.resolve())} | variants
    return run_all(args, info, variants, commits)


def run_all(args: argparse.Namespace, info: dict[str, Any], variants: dict[str, str],
            commits: dict[str, str]) -> int:
    """Every arm of every wanted scenario and seed, under each variant (source tree)."""
    from routing_metrics import compare, merge_seeds
    from routing_scenarios import SCENARIOS

    variants = dict(sorted(variants.items(), key=lambda kv: kv[0] != "before"))
    header = (f"{describe_machine(info)}\n"
              + "\n".join(f"{v}: {commits[v]} ({src})" for v, src in variants.items()))
    print(header, flush=True)
    started = time.monotonic()
    scenarios = [s for s in SCENARIOS if not args.scenario or s.name in args.scenario]
    seeds = [args.seed + k for k in range(args.seeds)]
    jobs = [(variant, src, {"scenario": s.name, "arm": arm, "seed": seed, "smoke": args.smoke})
            for s in scenarios for seed in seeds
            for arm in (*s.policies, *(f"oracle-{p}" for p in s.policies))
            for variant, src in variants.items()]
    # Longest scenarios first keeps both cores busy to the end.
    jobs.sort(key=lambda j: -next(s for s in scenarios
                                  if s.name == j[2]["scenario"]).duration(args.smoke))
    workers = Workers()
    slots = list(range(args.jobs))
    free = threading.Semaphore(args.jobs)
    slot_lock = threading.Lock()

    done = [0]

    def run(job: tuple[str, str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        variant, src, spec = job
        with free:
            with slot_lock:
                slot = slots.pop()
            try:
                result = workers.run(slot, src, spec)
            finally:
                with slot_lock:
                    slots.append(slot)
                    done[0] += 1
                    count = done[0]
        print(f"[{count}/{len(todo)}] {variant} {spec['scenario']} {spec['arm']} "
              f"seed {spec['seed']}: {result['wall_s']:.1f} s wall", flush=True)
        return variant, result

    reused = reusable(args.reuse, commits)
    results = [(v, reused[key]) for v, _, spec in jobs
               if (key := _job_key(commits[v], spec)) in reused]
    todo = [j for j in jobs if _job_key(commits[j[0]], j[2]) not in reused]
    reused_count = len(results)
    if reused_count:
        print(f"reusing {reused_count} arm results from {args.reuse}", flush=True)
    try:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results += list(pool.map(run, todo))
    finally:
        workers.close()

    args.out.mkdir(parents=True, exist_ok=True)  # the raw results first: nothing measured is lost
    (args.out / "routing_arms.json").write_text(json.dumps(
        [{"variant": v, "commit": commits[v], "result": r} for v, r in results]) + "\n")
    by_key = {(v, r["scenario"], r["arm"], r["seed"]): r for v, r in results}
    rows = []
    for s in scenarios:
        for policy in s.policies:
            row: dict[str, Any] = {"scenario": s.name, "row": s.row, "policy": policy,
                                   "slo": s.slo, "variants": {}}
            for variant in variants:
                per_seed = [by_key[(variant, s.name, policy, seed)]
                            | compare(by_key[(variant, s.name, policy, seed)],
                                      by_key[(variant, s.name, f"oracle-{policy}", seed)])
                            for seed in seeds]
                row["variants"][variant] = merge_seeds(per_seed)
                row["variants"][variant]["oracle"] = merge_seeds(
                    [by_key[(variant, s.name, f"oracle-{policy}", seed)] for seed in seeds])
            rows.append(row)
    elapsed = time.monotonic() - started
    finish_machine_info(info)
    data = {
        "benchmark": "routing",
        "machine": info,
        "variants": {v: {"src": src, "commit": commits[v]} for v, src in variants.items()},
        "config": {"smoke": args.smoke, "seed": args.seed, "seeds": args.seeds,
                   "jobs": args.jobs, "rate_per_s": RATE_PER_S,
                   "prompt_tokens": PROMPT_TOKENS, "max_tokens": MAX_TOKENS},
        "scenarios": {s.name: {"row": s.row, "description": s.description,
                               "duration_s": s.duration(args.smoke), "stream": s.stream,
                               "policies": list(s.policies), "slo": s.slo,
                               "providers": [p.__dict__ for p in s.providers],
                               "timeline": [{"at": at, "kind": ph.kind,
                                             "changes": [c.__dict__ for c in ph.changes]}
                                            for at, ph in s.timeline(args.smoke)]}
                      for s in scenarios},
        "rows": rows,
        "reused_arms": {"count": reused_count, "from": str(args.reuse) if reused_count else None},
        "wall_s": elapsed,
        "arm_wall_s": sum(r["wall_s"] for _, r in results),
        "arm_cpu_s": sum(r["cpu_s"] for _, r in results),
    }
    markdown = render(data, list(variants))
    write_results("routing", data, markdown, args.out)
    print("\n" + markdown)
    print(f"\nwrote {args.out / 'routing.json'} and {args.out / 'routing.md'} ({elapsed:.0f} s)")
    return 0


def render(data: dict[str, Any], variants: Sequence[str]) -> str:
    from routing_metrics import render_table

    cfg = data["config"]
    lines = [
        "# tokenlane routing benchmark",
        "",
        f"{describe_machine(data['machine'])}  ",
        *(f"{v}: `{data['variants'][v]['commit']}` ({data['variants'][v]['src']})  "
          for v in variants),
        (f"open loop {cfg['rate_per_s']:g} req/s, prompts {cfg['prompt_tokens'][0]}–"
         f"{cfg['prompt_tokens'][1]} tokens, max_tokens {cfg['max_tokens'][0]}–"
         f"{cfg['max_tokens'][1]}; seeds {cfg['seed']}..{cfg['seed'] + cfg['seeds'] - 1} "
         f"(medians); smoke={cfg['smoke']}; virtual time (scenario seconds), "
         f"{data['wall_s']:.0f} s wall on {cfg['jobs']} workers  "),
        *([reused_note(data["reused_arms"])] if data["reused_arms"]["count"] else []),
        ("gateway config: providers and models only, everything else at its defaults; each "
         "policy against an oracle of its own objective. `*` = misses the target in the "
         "column header (reported, not asserted)."
         + (" Cells read before → after." if len(variants) > 1 else "")),
        "",
        render_table(data["rows"], variants),
        "",
        "Scenarios:",
        "",
        *(f"- `{name}` ({s['row']}): {s['description']} ({s['duration_s']:g} s)"
          for name, s in data["scenarios"].items()),
    ]
    return "\n".join(lines)


def reused_note(reused: dict[str, Any]) -> str:
    return (f"{reused['count']} arm results of committed trees taken from `{reused['from']}` "
            "(deterministic: a re-run gives the same numbers)  ")


if __name__ == "__main__":
    raise SystemExit(main())
