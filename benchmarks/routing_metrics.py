"""The routing benchmark's numbers: per-request records in, per-arm summaries, ratios against
the oracle, and the markdown table out (pure: no engine, no I/O)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from common import fmt, markdown_table, percentile

__all__ = ["TARGETS", "ProbeRecord", "RequestRecord", "compare", "merge_seeds", "objective_of",
           "render_table", "return_times", "summarize"]

WINDOW_S = 2.0  # "back" = this many seconds of arrivals ...
WINDOW_SHARE = 0.8  # ... with at least this share first tried on the truly best
WINDOW_MIN = 3  # and at least this many requests in the window (4 req/s: ~8 expected)

# The targets: reported beside the numbers, never asserted.
TARGETS = {"tps_ratio": 0.95, "e2e_ratio": 1.10, "cost_ratio": 1.05, "return_s": 5.0}


@dataclass
class RequestRecord:
    at: float  # scenario seconds at arrival
    ok: bool
    best: str | None  # the oracle's best for the arm's objective at arrival (None: weighted)
    first_tried: str | None = None
    served: str | None = None
    ttft_s: float | None = None  # streaming only: arrival → first content token
    total_s: float | None = None  # arrival → last token (or the whole body)
    tokens: int = 0
    served_tps: float = 0.0  # the served provider's true decode speed when the request arrived
    cost: float = 0.0  # USD of every attempt made for this request
    attempts: list[tuple[str, str]] = field(default_factory=list)  # (provider, outcome)
    error: str | None = None


@dataclass
class ProbeRecord:
    at: float
    provider: str
    outcome: str
    cost: float
    best: str | None  # the arm objective's truly best when the probe ended


def objective_of(arm: str) -> str:
    return arm.removeprefix("oracle-")


def return_times(records: Sequence[RequestRecord], at: float) -> float | None:
    """Scenario seconds from `at` until a window of `WINDOW_S` seconds of arrivals, starting at
    or after `at`, has >= `WINDOW_SHARE` of its requests first tried on their truly best
    provider; None if that never happens."""
    after = [r for r in records if r.at >= at]
    for i, start in enumerate(after):
        window = [r for r in after[i:] if r.at < start.at + WINDOW_S]
        if len(window) < WINDOW_MIN:
            continue
        hits = sum(1 for r in window if r.first_tried == r.best)
        if hits >= WINDOW_SHARE * len(window):
            return start.at - at
    return None


def _events(records: Sequence[RequestRecord], timeline: Sequence[dict[str, Any]]
            ) -> list[dict[str, Any]]:
    """For each change that moves the truly best provider (for a typical request, just before
    and just after it): how long until routing follows (leave after a degradation, return
    after a recovery). Each request is then judged against its own truly best."""
    out = []
    for change in timeline:
        if not change["kind"]:
            continue
        at, before, after = change["at"], change["best_before"], change["best_after"]
        moved = before is not None and after is not None and before != after
        out.append({"at": at, "kind": change["kind"], "provider": change["provider"],
                    "best_before": before, "best_after": after, "moved": moved,
                    "s": return_times(records, at) if moved else None})
    return out


def summarize(records: Sequence[RequestRecord], probes: Sequence[ProbeRecord],
              timeline: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One arm, one seed."""
    ok = [r for r in records if r.ok]
    n = len(records)
    judged = [r for r in records if r.best is not None]
    ttfts = [r.ttft_s for r in ok if r.ttft_s is not None]
    totals = [r.total_s for r in ok if r.total_s is not None]
    user_attempts = [(p, o, r.best) for r in records for p, o in r.attempts]
    errors: dict[str, int] = {}
    for r in records:
        if r.error:
            kind = r.error.split(":", 1)[0]
            errors[kind] = errors.get(kind, 0) + 1
    return {
        "requests": n,
        "ok": len(ok),
        "errors": n - len(ok),
        "error_kinds": errors,
        "error_samples": [r.error for r in records if r.error][:3],
        # The served provider's true decode speed, failed requests counting as 0 tok/s.
        "decode_tps": sum(r.served_tps for r in ok) / n if n else None,
        "mean_e2e_s": statistics.fmean(totals) if totals else None,
        "e2e_p95_s": percentile(totals, 95),
        "ttft_p50_s": percentile(ttfts, 50),
        "ttft_p95_s": percentile(ttfts, 95),
        "cost_per_ok_usd": sum(r.cost for r in records) / len(ok) if ok else None,
        "best_share": (sum(1 for r in judged if r.first_tried == r.best) / len(judged)
                       if judged else None),
        "attempts": len(user_attempts),
        "nonbest_attempts": sum(1 for p, _, best in user_attempts
                                if best is not None and p != best),
        "failed_attempts": sum(1 for _, o, _ in user_attempts if o not in ("ok", "cancelled")),
        "probes": len(probes),
        "nonbest_probes": sum(1 for p in probes if p.best is not None and p.provider != p.best),
        "probe_cost_usd": sum(p.cost for p in probes),
        "events": _events(records, timeline),
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def compare(arm: dict[str, Any], oracle: dict[str, Any]) -> dict[str, Any]:
    """An arm against its objective's oracle, same seed (so the same arrivals)."""
    return {
        "tps_ratio": _ratio(arm["decode_tps"], oracle["decode_tps"]),
        "e2e_ratio": _ratio(arm["mean_e2e_s"], oracle["mean_e2e_s"]),
        "cost_ratio": _ratio(arm["cost_per_ok_usd"], oracle["cost_per_ok_usd"]),
        "oracle_ttft_p95_s": oracle["ttft_p95_s"],
        "oracle_e2e_p95_s": oracle["e2e_p95_s"],
    }


def _median_or_never(values: Sequence[float | None]) -> float | None:
    """Median with "never" (None) counted as later than any time; None if that is where the
    median falls."""
    m = statistics.median([math.inf if v is None else v for v in values])
    return None if math.isinf(m) else m


def merge_seeds(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One (scenario, policy) over seeds: the median of every number, per-seed lists kept for
    the seconds to leave/return."""
    out: dict[str, Any] = {"seeds": [r["seed"] for r in rows]}
    for key, value in rows[0].items():
        if key in ("seed", "events"):
            continue
        if isinstance(value, bool) or not (value is None or isinstance(value, int | float)):
            out[key] = value if key != "error_samples" else [
                e for r in rows for e in r[key]][:3]
            continue
        present = [r[key] for r in rows if r[key] is not None]
        out[key] = statistics.median(present) if present else None
    events = []
    for j, first in enumerate(rows[0]["events"]):
        per_seed = [r["events"][j]["s"] for r in rows]
        moved = all(r["events"][j]["moved"] for r in rows)
        events.append({k: first[k] for k in ("at", "kind", "provider", "best_before",
                                             "best_after")}
                      | {"moved": moved, "per_seed": per_seed,
                         "s": _median_or_never(per_seed) if moved else None})
    out["events"] = events
    return out


# --------------------------------------------------------------------------- the table

def _event_text(events: Sequence[dict[str, Any]], kind: str) -> str:
    parts = []
    for e in events:
        if e["kind"] != kind or not e["moved"]:
            continue
        parts.append("never" if e["s"] is None else f"{e['s']:.1f}")
    return ", ".join(parts) or "–"


def _cell(row: dict[str, Any], key: str) -> str:
    if key == "return_s":
        return _event_text(row["events"], "recover")
    if key == "leave_s":
        return _event_text(row["events"], "degrade")
    value = row.get(key)
    if key == "best_share":
        return fmt(None if value is None else 100 * value, 0)
    if key in ("errors", "nonbest_attempts", "probes", "nonbest_probes"):
        return fmt(None if value is None else round(value), 0)
    if key in ("cost_ratio",) and row.get("slo") is None:
        return "–"
    return fmt(value)


def _missed(row: dict[str, Any], key: str) -> bool:
    value = row.get(key)
    if key == "return_s":
        return any(e["kind"] == "recover" and e["moved"]
                   and (e["s"] is None or e["s"] > TARGETS["return_s"]) for e in row["events"])
    if value is None or key not in TARGETS or (key == "cost_ratio" and row.get("slo") is None):
        return False
    return value < TARGETS[key] if key == "tps_ratio" else value > TARGETS[key]


COLUMNS = (
    ("tps_ratio", f"tok/s ÷ oracle (≥{TARGETS['tps_ratio']:g})"),
    ("e2e_ratio", f"e2e ÷ oracle (≤{TARGETS['e2e_ratio']:.2f})"),
    ("ttft_p95_s", "TTFT p95 s"),
    ("oracle_ttft_p95_s", "oracle TTFT p95 s"),
    ("cost_ratio", f"cost ÷ oracle (≤{TARGETS['cost_ratio']:.2f}, SLO)"),
    ("errors", "client errors"),
    ("best_share", "to best %"),
    ("leave_s", "leave s"),
    ("return_s", f"return s (≤{TARGETS['return_s']:g})"),
    ("nonbest_attempts", "attempts off best"),
    ("probes", "probes"),
)


def render_table(rows: Sequence[dict[str, Any]], variants: Sequence[str]) -> str:
    """One line per (scenario, policy); with two variants each cell reads `before → after`.
    A `*` marks a number that misses its target."""
    headers = ["scenario", "policy"] + [title for _, title in COLUMNS]
    table = []
    for row in rows:
        line = [row["scenario"], row["policy"]]
        for key, _ in COLUMNS:
            cells = []
            for v in variants:
                got = row["variants"].get(v)
                if got is None:
                    cells.append("?")
                    continue
                got = got | {"slo": row.get("slo")}
                cells.append(_cell(got, key) + ("*" if _missed(got, key) else ""))
            line.append(" → ".join(cells))
        table.append(line)
    return markdown_table(headers, table)
