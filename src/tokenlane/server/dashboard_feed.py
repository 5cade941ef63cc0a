"""The dashboard's data feed, one JSON document: pure assembly of what the engine and the
recorders already hold.

`stats` is `engine.stats_report()` unchanged (what `/v1/router/stats` serves), so the page's
live estimates are those numbers; `traffic` adds what happened in the window (time series,
error and 429 rates, cost, tokens) and `share` each deployment's part of its model's attempts.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_feed"]


def build_feed(stats: dict[str, Any], traffic: dict[str, dict[str, Any]],
               decisions: list[dict[str, Any]], *, now: float, window_s: float,
               bucket_s: float) -> dict[str, Any]:
    share: dict[str, dict[str, float | None]] = {}
    for model, route in stats["models"].items():
        ids = [row["deployment"] for row in route["deployments"]]
        counts = {d: traffic[d]["totals"]["attempts"] if d in traffic else 0 for d in ids}
        total = sum(counts.values())
        share[model] = {d: (n / total if total else None) for d, n in counts.items()}
    return {"object": "tokenlane.dashboard", "at": now, "window_s": window_s,
            "bucket_s": bucket_s, "stats": stats, "traffic": traffic, "share": share,
            "decisions": decisions}
