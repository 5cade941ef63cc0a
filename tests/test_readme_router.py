"""The README's in-process `Router` example runs as printed, offline, on the demo config: the
demo's simulated providers served on a free port (delays scaled down), the example's config
path pointed at a copy of the demo that says where."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from tokenlane.sim import SimProviderSpec, Simulator

from .loopback import serve

ROOT = Path(__file__).resolve().parents[1]


def snippet() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^### In-process: `Router`\n.*?```python\n(.*?)```", readme,
                      re.DOTALL | re.MULTILINE)
    assert found is not None, "README has no Router example"
    return found.group(1)


def test_the_router_example_runs_offline_on_the_demo(tmp_path: Path) -> None:
    code = snippet()
    assert 'Router("config/demo.yaml")' in code
    data = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text(encoding="utf-8"))
    specs = [SimProviderSpec(**{**p, "time_scale": 0.05}) for p in data.pop("sim")["providers"]]
    with serve(Simulator(specs).app) as sim_url:
        for name, provider in data["providers"].items():
            provider["base_url"] = Simulator.base_url(sim_url, name)
        config = tmp_path / "demo.yaml"
        config.write_text(yaml.safe_dump(data), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-c", code.replace("config/demo.yaml", str(config))],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert any(line.startswith("from ") for line in lines)
    assert re.fullmatch(r"\d+(\.\d+)?|None", lines[-1]), lines[-1]  # blaze's decode tok/s
