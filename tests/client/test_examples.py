"""Every example runs, offline, in seconds: they are executed here so they never rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Each example and a line of its output that shows it did its job.
EXPECTED = {
    # The cheapest, unless the router spent this request confirming a level shift it saw (the
    # simulators run in real time: on a loaded machine their speeds jitter enough to be one).
    "route_in_process.py": re.compile(r"sort=price +-> (budget/budget-llama \(policy\)|"
                                      r"\S+ \(confirm\))"),
    "streaming.py": "stopped early: outcome=cancelled",
    "openai_sdk.py": "budget first    -> budget/budget-llama failed, swift/swift-llama answered",
    "gateway_client.py": "only=budget: 503 no_deployment_available; attempts: budget/budget-ll",
}
TIMEOUT_S = 60


def test_every_example_is_covered() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(EXPECTED)


def test_examples_run() -> None:
    # Started together, waited for together: the suite pays for the slowest, not the sum.
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("TOKENLANE_API_KEY", None)
    runs = {
        name: subprocess.Popen([sys.executable, str(EXAMPLES / name)], cwd=EXAMPLES, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name in EXPECTED
    }
    failures = []
    for name, proc in runs.items():
        try:
            out, _ = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            failures.append(f"{name}: still running after {TIMEOUT_S}s\n{out}")
            continue
        expected = EXPECTED[name]
        found = (expected.search(out) if isinstance(expected, re.Pattern) else expected in out)
        if proc.returncode != 0 or not found:
            failures.append(f"{name}: exit {proc.returncode}\n{out}")
    if failures:
        pytest.fail("\n\n".join(failures))
