"""The benchmarks still run: each in --smoke mode, started the way a user starts it.

No thresholds on the numbers (machines are noisy); only that each command exits 0 and writes
JSON with every scenario, target and arm the report is built from.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

OVERHEAD_SCENARIOS = {"nonstream_c1", "nonstream_c16", "nonstream_c64", "nonstream_c256",
                      "stream_c16", "stream_c256", "stream_paced_c64"}
OVERHEAD_FIELDS = {"added_latency_p50_ms", "added_latency_p99_ms", "throughput_ratio",
                   "ttft_overhead_p50_ms", "gateway_cpu_ms_per_request",
                   "floor_cpu_ms_per_request", "cpu_ratio_gateway_floor", "gateway_peak_rss_mb"}
ROUTING_SCENARIOS = {"steady", "slowdown", "outage", "trickle", "slo"}
ROUTING_ARMS = {"throughput", "latency", "price", "balanced", "random", "round-robin",
                "best-at-start", "oracle-throughput", "oracle-latency", "oracle-price",
                "oracle-balanced"}
ROUTING_FIELDS = {"mean_tokens_per_s", "ttft_p50_s", "ttft_p95_s", "total_cost_usd",
                  "error_rate", "best_share", "vs_oracle", "adaptation"}


def run_smoke(script: str, out: Path, timeout: float) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--smoke", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    name = script.removesuffix(".py")
    assert (out / f"{name}.md").read_text().startswith(f"# tokenlane {name} benchmark")
    data: dict[str, Any] = json.loads((out / f"{name}.json").read_text())
    assert {"nproc", "cpu_model", "python"} <= set(data["machine"])
    return data


def test_overhead_benchmark_smoke(tmp_path: Path) -> None:
    data = run_smoke("overhead.py", tmp_path, timeout=120)
    assert set(data["scenarios"]) == OVERHEAD_SCENARIOS
    for name, scenario in data["scenarios"].items():
        assert OVERHEAD_FIELDS <= set(scenario), name
        for target in ("direct", "floor", "gateway"):
            assert scenario["targets"][target]["requests"] > 0, (name, target)
    slow = data["slow_streams"]
    assert slow["streams"] == 100
    assert {"completed", "errors", "gateway_peak_rss_mb", "passed"} <= set(slow)
    assert data["gateway_metrics"]["attempts_counted"] > 0  # metrics were on
    assert data["targets"]


def test_routing_benchmark_smoke(tmp_path: Path) -> None:
    data = run_smoke("routing.py", tmp_path, timeout=120)
    assert set(data["scenarios"]) == ROUTING_SCENARIOS
    for name, scenario in data["scenarios"].items():
        assert set(scenario["arms"]) == ROUTING_ARMS, name
        for arm, row in scenario["arms"].items():
            assert ROUTING_FIELDS <= set(row), (name, arm)
            assert row["requests"] == data["config"]["requests"], (name, arm)


def test_hostile_benchmark_smoke(tmp_path: Path) -> None:
    data = run_smoke("hostile.py", tmp_path, timeout=120)
    summary = data["summary"]
    assert summary["requests"] >= 200
    assert {"5xx", "not_openai_errors", "bad_stream_events", "latency_outliers",
            "rss_growth_mb", "log_tracebacks", "probe_max_ms"} <= set(summary)
    # Every kind of hostile input was sent.
    assert {"bad_json", "deep_nesting", "hostile_upstream", "raw_http", "bad_auth"} <= set(
        data["by_kind"])
