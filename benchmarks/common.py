"""Shared by the benchmarks: machine description, statistics, markdown tables, result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["RESULTS", "describe_machine", "finish_machine_info", "machine_info", "markdown_table", "median", "percentile", "write_results"]

RESULTS = Path(__file__).resolve().parent / "results"


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on; printed at the top and stored in the JSON."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 1
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return {
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in load],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def describe_machine(info: dict[str, Any]) -> str:
    text = (f"machine: nproc={info['nproc']} cpu={info['cpu_model']!r} "
            f"python={info['python']} ({info['platform']}) "
            f"loadavg at start={'/'.join(str(x) for x in info['loadavg_at_start'])}")
    if "loadavg_at_end" in info:
        text += f", at end={'/'.join(str(x) for x in info['loadavg_at_end'])}"
    return text


def finish_machine_info(info: dict[str, Any]) -> None:
    """Add the load average at the end: a busy machine explains noisy numbers."""
    try:
        info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[c if isinstance(c, str) else fmt(c) for c in row]
                                           for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
             for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def write_results(name: str, data: dict[str, Any], markdown: str, out_dir: Path = RESULTS) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    (out_dir / f"{name}.md").write_text(markdown + "\n")
