"""The routing benchmark's numbers: per-request records in, per-arm summaries and tables out."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from common import describe_machine, fmt, markdown_table, percentile
from routing_scenarios import ARMS, POLICIES, VALUE_OF_TIME, Scenario

__all__ = ["ArmRun", "RequestRecord", "merge_seeds", "render", "summarize", "vs_oracle"]

WINDOW_SHARE = 0.8  # "adapted" = this share of a sliding window goes to the new best


@dataclass
class RequestRecord:
    index: int
    at: float
    ok: bool
    first_tried: str | None
    served: str | None
    ttft_s: float | None
    total_s: float | None
    tokens: int
    cost: float
    failed_attempts: int
    best: dict[str, str]  # objective -> the oracle's best provider at this moment
    slo_miss: bool | None


@dataclass
class ArmRun:
    scenario: str
    arm: str
    records: list[RequestRecord] = field(default_factory=list)
    wall_s: float = 0.0
    virtual_s: float = 0.0
    errors_sample: list[str] = field(default_factory=list)


def merge_seeds(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One arm over several seeds: the median of every number; a change counts as adapted
    when most seeds adapted, after the median number of requests of those that did."""
    out = dict(rows[0])
    out["seeds"] = [r["seed"] for r in rows]
    out.pop("seed", None)
    for key, value in rows[0].items():
        if key == "seed" or isinstance(value, bool):
            continue
        if value is None or isinstance(value, int | float):
            values = [r[key] for r in rows if r[key] is not None]
            out[key] = statistics.median(values) if values else None
    adaptation = []
    for j, first in enumerate(rows[0]["adaptation"]):
        merged = {k: v for k, v in first.items() if k != "never"}
        if first["changed"]:
            took = [r["adaptation"][j]["requests"] for r in rows]
            done = [t for t in took if t is not None]
            merged["per_seed"] = took
            if len(done) * 2 > len(rows):
                merged["requests"] = statistics.median(done)
            else:
                merged["requests"], merged["never"] = None, True
        adaptation.append(merged)
    out["adaptation"] = adaptation
    out["error_samples"] = [e for r in rows for e in r["error_samples"]][:3]
    return out


def objective_of(arm: str) -> str:
    """What "best" means for an arm: its policy's objective; baselines are judged as balanced."""
    if arm in POLICIES:
        return arm
    if arm.startswith("oracle-"):
        return arm.removeprefix("oracle-")
    return "balanced"


def adaptation(records: list[RequestRecord], objective: str, change_at: int, end: int,
               window: int) -> dict[str, Any]:
    """Requests after a change until >= 80% of a `window`-request window goes to the new best.

    "Goes to" = the deployment tried first (what the router chose, before any fallback).
    """
    before = records[change_at - 1].best[objective] if change_at > 0 else None
    after = records[change_at].best[objective]
    if before == after:
        return {"at": change_at, "new_best": after, "changed": False, "requests": None}
    for k in range(end - change_at - window + 1):
        chunk = records[change_at + k: change_at + k + window]
        share = sum(1 for r in chunk if r.first_tried == r.best[objective]) / window
        if share >= WINDOW_SHARE:
            return {"at": change_at, "new_best": after, "changed": True, "requests": k}
    return {"at": change_at, "new_best": after, "changed": True, "requests": None,
            "never": True}


def summarize(scenario: Scenario, run: ArmRun, n: int) -> dict[str, Any]:
    recs = run.records
    ok = [r for r in recs if r.ok]
    objective = objective_of(run.arm)
    e2e = [r.tokens / r.total_s for r in ok if r.total_s]
    ttfts = [r.ttft_s for r in ok if r.ttft_s is not None]
    per_second = VALUE_OF_TIME / 3600
    balanced_cost = [r.cost + per_second * r.total_s for r in ok if r.total_s is not None]
    points = sorted({min(n - 1, round(c.at * n)) for c in scenario.changes})
    window = max(5, min(20, n // 10))
    adapts = []
    for j, at in enumerate(points):
        end = points[j + 1] if j + 1 < len(points) else n
        adapts.append(adaptation(recs, objective, at, end, window))
    slo_checked = [r for r in recs if r.slo_miss is not None]
    share: dict[str, int] = {}
    for r in recs:
        if r.first_tried is not None:
            share[r.first_tried] = share.get(r.first_tried, 0) + 1
    return {
        "scenario": scenario.name,
        "arm": run.arm,
        "objective": objective,
        "requests": len(recs),
        "ok": len(ok),
        "mean_tokens_per_s": sum(e2e) / len(e2e) if e2e else None,
        "ttft_p50_s": percentile(ttfts, 50),
        "ttft_p95_s": percentile(ttfts, 95),
        "mean_total_s": sum(r.total_s for r in ok if r.total_s) / len(ok) if ok else None,
        "total_cost_usd": sum(r.cost for r in recs),
        "mean_balanced_cost_usd": sum(balanced_cost) / len(balanced_cost) if balanced_cost
        else None,
        "error_rate": 1 - len(ok) / len(recs) if recs else None,
        "failed_attempts": sum(r.failed_attempts for r in recs),
        "best_share": sum(1 for r in recs if r.first_tried == r.best[objective]) / len(recs),
        "slo_miss_rate": (sum(1 for r in slo_checked if r.slo_miss) / len(slo_checked)
                          if slo_checked else None),
        "first_tried_share": {k: v / len(recs) for k, v in sorted(share.items())},
        "adaptation": adapts,
        "adaptation_window": window,
        "virtual_s": run.virtual_s,
        "wall_s": run.wall_s,
        "error_samples": run.errors_sample,
    }


def vs_oracle(rows: dict[str, dict[str, Any]], arm: str) -> float | None:
    """The arm's own objective, achieved, relative to that objective's oracle (1.0 = as good).

    throughput: tokens/s ratio; latency: oracle TTFT p50 / arm's; price: oracle cost / arm's;
    balanced: oracle (cost + value of time x duration) / arm's. Higher is better; failed
    requests count as zero output.
    """
    objective = objective_of(arm)
    mine, best = rows[arm], rows[f"oracle-{objective}"]

    def value(r: dict[str, Any]) -> float | None:
        ok_share = r["ok"] / r["requests"] if r["requests"] else 0
        if objective == "throughput":
            return None if r["mean_tokens_per_s"] is None else r["mean_tokens_per_s"] * ok_share
        if objective == "latency":
            return None if not r["ttft_p50_s"] else 1 / r["ttft_p50_s"] * ok_share
        if objective == "price":
            per_ok = r["total_cost_usd"] / r["ok"] if r["ok"] else None
            return None if not per_ok else 1 / per_ok * ok_share
        return None if not r["mean_balanced_cost_usd"] else (
            1 / r["mean_balanced_cost_usd"] * ok_share)

    a, b = value(mine), value(best)
    return None if a is None or not b else a / b


def render(data: dict[str, Any], scenarios: Sequence[Scenario]) -> str:
    cfg = data["config"]
    parts = [
        "# tokenlane routing benchmark",
        "",
        f"{describe_machine(data['machine'])}  ",
        (f"requests/arm={cfg['requests']} output tokens={cfg['output_tokens']} "
         f"gap={cfg['gap_s']}s seeds={cfg['seed']}..{cfg['seed'] + cfg['seeds'] - 1} "
         f"(medians) value_of_time=${VALUE_OF_TIME:g}/h "
         f"smoke={cfg['smoke']}  "),
        ("virtual time (ManualClock + lockstep simulator): timings are simulated seconds, "
         "exact and repeatable"),
    ]
    for scenario in scenarios:
        rows = data["scenarios"][scenario.name]["arms"]
        slo = scenario.slo_ttft_s is not None
        headers = ["arm", "judged as", "tok/s", "TTFT p50 s", "TTFT p95 s", "cost $",
                   "errors %", "failed att.", "best %", "vs oracle"]
        if slo:
            headers.append("SLO miss %")
        headers.append("adapt (requests)")
        table = []
        for arm in ARMS:
            r = rows[arm]
            adapt = ", ".join(_adapt_text(a) for a in r["adaptation"]) or "–"
            row = [arm, r["objective"], r["mean_tokens_per_s"], r["ttft_p50_s"], r["ttft_p95_s"],
                   fmt(r["total_cost_usd"], 4), r["error_rate"] * 100, fmt(r["failed_attempts"], 0),
                   r["best_share"] * 100, r["vs_oracle"]]
            if slo:
                row.append(None if r["slo_miss_rate"] is None else r["slo_miss_rate"] * 100)
            row.append(adapt)
            table.append(row)
        parts += ["", f"## {scenario.name}: {scenario.description}", "",
                  markdown_table(headers, table)]
        cold = data["scenarios"][scenario.name].get("cold_start_with_slo_from_request_0")
        if cold is not None:
            parts += ["", f"SLO sent from the first request on a cold gateway (balanced): "
                          f"{cold['failed']}/{cold['requests']} requests failed"
                          + (f" — {cold['first_error']}" if cold["first_error"] else "") + ".  ",
                      (f"In the table the SLO is sent from request {len(scenario.providers)} on, "
                       "after each provider has been measured once.")]
    return "\n".join(parts)


def _adapt_text(a: dict[str, Any]) -> str:
    if not a["changed"]:
        return f"@{a['at']}: no change"
    seeds = a.get("per_seed")
    detail = "" if not seeds or len(seeds) < 2 else (
        " (" + "/".join("never" if t is None else f"{t:g}" for t in seeds) + ")")
    took = "never" if a["requests"] is None else f"{a['requests']:g}"
    return f"@{a['at']}→{a['new_best']}: {took}{detail}"
