"""The demo (`config/demo.yaml`: four simulated providers, two models) on free loopback ports,
with auth on so the dashboard's sign-in is exercised, and the prober off so the only
measurements are the traffic a test sends (the page and `/v1/router/stats` then agree)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import yaml

from tokenlane.config import parse_settings
from tokenlane.server import create_app
from tokenlane.sim import SimProviderSpec, Simulator

from ..loopback import serve

ROOT = Path(__file__).resolve().parents[2]
MASTER_KEY = "tl-dashboard-master-key"


@dataclass
class Demo:
    url: str
    app: Any
    deployments: dict[str, list[str]]  # model -> deployment ids, in config order
    chat_models: list[str]  # the models some deployment serves chat completions for

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=MASTER_KEY, max_retries=0)

    def traffic(self, requests: int, *, stream: bool = True) -> None:
        client = self.openai()
        for i in range(requests):
            model = self.chat_models[i % len(self.chat_models)]
            if stream:
                for _ in client.chat.completions.create(
                        model=model, messages=[{"role": "user", "content": f"hi {i}"}],
                        stream=True, max_tokens=32):
                    pass
            else:
                client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": f"hi {i}"}],
                    max_tokens=32)


def demo_config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "config" / "demo.yaml").read_text(encoding="utf-8"))


@contextmanager
def demo(*, time_scale: float = 0.02) -> Iterator[Demo]:
    data = demo_config()
    specs = [SimProviderSpec(**{**p, "time_scale": time_scale})
             for p in data.pop("sim")["providers"]]
    data["server"]["auth"] = {"enabled": True, "master_keys_env": "TL_DASHBOARD_KEYS"}
    data.setdefault("routing", {})["probes"] = {"enabled": False}
    with ExitStack() as stack:
        sim_url = stack.enter_context(serve(Simulator(specs).app))
        for name, provider in data["providers"].items():
            provider["base_url"] = Simulator.base_url(sim_url, name)
        app = create_app(parse_settings(data), env={"TL_DASHBOARD_KEYS": MASTER_KEY})
        url = stack.enter_context(serve(app))
        catalog = app.state.engine.catalog
        yield Demo(url, app, {name: [d.id for d in route.deployments]
                              for name, route in catalog.models.items()},
                   [name for name, route in catalog.models.items()
                    if any("chat" in d.endpoints for d in route.deployments)])
