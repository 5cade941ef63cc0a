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
                      "stream_c16", "stream_c256", "stream_paced_c64", "events_paced_c64",
                      "events_paced_c512"}
OVERHEAD_FIELDS = {"added_latency_p50_ms", "added_latency_p99_ms", "throughput_ratio",
                   "ttft_overhead_p50_ms", "gateway_cpu_ms_per_request",
                   "floor_cpu_ms_per_request", "cpu_ratio_gateway_floor", "gateway_peak_rss_mb",
                   "cpu_ratio_gateway_measured_floor"}
ROUTING_POLICIES = {"throughput", "latency", "price", "balanced"}
ROUTING_SCENARIOS = {
    "steady": ROUTING_POLICIES, "decode_dip": ROUTING_POLICIES,
    "decode_dip_long": ROUTING_POLICIES, "errors": ROUTING_POLICIES,
    "ttft_dip": ROUTING_POLICIES, "trickle": ROUTING_POLICIES,
    "trickle_nonstream": ROUTING_POLICIES,
    **{f"stall_{sort}": {sort} for sort in (*ROUTING_POLICIES, "weighted")},
    "slo_require": {"price"}, "slo_preferred": {"price"},
}
ROUTING_FIELDS = {"tps_ratio", "e2e_ratio", "cost_ratio", "ttft_p95_s", "oracle_ttft_p95_s",
                  "errors", "best_share", "events", "nonbest_attempts", "probes", "oracle"}


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
        for target in ("direct", "floor", "floor_measured", "gateway"):
            assert scenario["targets"][target]["requests"] > 0, (name, target)
        # The measured floor's answers are checked like everyone's (tokens of each stream).
        assert scenario["targets"]["floor_measured"]["errors"] == 0, name
    slow = data["slow_streams"]
    assert slow["streams"] == 100
    assert {"completed", "errors", "gateway_peak_rss_mb", "passed"} <= set(slow)
    assert data["gateway_metrics"]["attempts_counted"] > 0  # metrics were on
    assert data["targets"]
    workers = data["workers"]  # serve --workers 1 against --workers 2
    assert workers["gateways_alive_at_end"]
    for name in ("stream_c64", "nonstream_c64"):
        scenario = workers["scaling"][name]
        assert scenario["scaling_ratio"] is not None, name
        for count in ("1", "2"):
            assert scenario["workers"][count]["requests"] > 0, (name, count)
        assert len(scenario["workers"]["2"]["worker_cpu_split"]) == 2  # two processes served
    paced = workers["paced_streams"]
    for opening in ("at_once", "ramp"):  # opened in one instant, and over a second
        for target in ("direct", "workers_1", "workers_2"):
            run = paced[opening][target]
            assert run["streams"] == 50 and "duration_p99_s" in run, (opening, target)
            assert 0 < run["machine_busy"] <= 1.05, (opening, target)  # a share of the cores


def test_routing_benchmark_smoke(tmp_path: Path) -> None:
    data = run_smoke("routing.py", tmp_path, timeout=300)
    assert set(data["scenarios"]) == set(ROUTING_SCENARIOS)
    rows = {(r["scenario"], r["policy"]): r for r in data["rows"]}
    assert set(rows) == {(s, p) for s, policies in ROUTING_SCENARIOS.items() for p in policies}
    for key, row in rows.items():
        after = row["variants"]["after"]
        assert ROUTING_FIELDS <= set(after), key
        assert after["requests"] == after["oracle"]["requests"] > 0, key  # same arrivals
        # Every scenario but steady changes something at fixed instants.
        kinds = [e["kind"] for e in after["events"]]
        assert kinds == ([] if key[0] == "steady" else ["degrade", "recover"]), key
    commit = data["variants"]["after"]["commit"]  # the report names the code it measured
    assert commit and f"after: `{commit}`" in (tmp_path / "routing.md").read_text()


def test_peers_benchmark_smoke_without_peers(tmp_path: Path) -> None:
    # No peer installed here (they live outside the repository): each is skipped, and
    # tokenlane and the floor are still measured in every scenario.
    data = run_smoke("peers.py", tmp_path, timeout=180)
    assert data["skipped"] == ["litellm", "portkey"]
    assert all(data["alive_at_end"].values())
    for name, scenario in data["scenarios"].items():
        for server in ("tokenlane", "floor"):
            run = scenario["servers"][server]
            assert run["requests"] > 0 and run["errors"] == 0, (name, server,
                                                                run["error_samples"])
        assert scenario["ratios"] == {}, name
