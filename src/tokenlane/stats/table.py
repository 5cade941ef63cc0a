"""Render `/v1/router/stats` as a plain-text table (pure; the CLI does the fetching)."""

from __future__ import annotations

from typing import Any

__all__ = ["render_stats"]

_COLUMNS = (
    ("deployment", "deployment", "{}"),
    ("state", None, "{}"),
    ("n", "samples", "{}"),
    ("age", "age_s", "{:.0f}s"),
    ("ttft p50", "ttft_p50_s", "{:.3f}s"),
    ("ttft p90", "ttft_p90_s", "{:.3f}s"),
    ("+ttft/1k", "ttft_per_1k_prompt_s", "{:.3f}s"),
    ("tok/s p50", "decode_tps_p50", "{:.0f}"),
    ("err", "error_rate", "{:.1%}"),
    ("429", "rate_limit_rate", "{:.1%}"),
    ("$/1M out", "usd_per_m_output", "{:.3f}"),
    ("live", "in_flight", "{}"),
)


def _state(d: dict[str, Any]) -> str:
    if d.get("circuit", "closed") != "closed":
        return f"circuit {d['circuit']}"
    if not d.get("samples"):
        return "unmeasured"
    if d.get("stale"):
        return "stale"
    return "shifting" if d.get("shifting") else "fresh"


def render_stats(report: dict[str, Any]) -> str:
    lines = []
    for model, info in report.get("models", {}).items():
        lines.append(f"{model}  (policy: {info.get('policy')})")
        rows = [[title for title, _, _ in _COLUMNS]]
        for d in info.get("deployments", []):
            row = []
            for _, key, fmt in _COLUMNS:
                value = _state(d) if key is None else d.get(key)
                row.append("-" if value is None else fmt.format(value))
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
        for row in rows:
            lines.append("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                          for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
