"""Simulated providers and router configs shared by the client tests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from tokenlane import Router
from tokenlane.sim import SimProviderSpec, Simulator

from ..harness import SIM_KEY, gateway_config
from ..loopback import serve

N = 12  # tokens per answer of an instant provider
MESSAGES = [{"role": "user", "content": "Say something short."}]
ENV = {"SIM_KEY": SIM_KEY}


def instant(name: str, **kw: Any) -> SimProviderSpec:
    """A provider that answers at once (time_scale=0): tests pay no simulated time."""
    base: dict[str, Any] = {"name": name, "ttft_s": 0, "tokens_per_s": 1000,
                            "output_tokens": N, "time_scale": 0, "api_key": SIM_KEY}
    base.update(kw)
    return SimProviderSpec(**base)


SPECS = [
    instant("fast"),
    instant("slow", tokens_per_s=50),
    instant("bad1", error_rate=1.0),
    instant("bad2", error_rate=1.0),
    instant("picky", models=["something-else"]),
    instant("broken", fault="error_event", fault_after_tokens=3),
    # Real time: 20 tokens/s for 400 tokens, so a stream is still running when a test leaves.
    instant("trickle", tokens_per_s=20, output_tokens=400, time_scale=1),
    # Real time: the first token would take 30 s.
    instant("slowstart", ttft_s=30, time_scale=1),
]

MODELS: dict[str, list[str]] = {
    "m": ["fast", "slow"],
    "failing": ["bad1", "bad2"],
    "picky": ["picky"],
    "broken": ["broken"],
    "trickle": ["trickle"],
    "slowstart": ["slowstart"],
}


def router_config(sim_url: str, models: Mapping[str, Sequence[str]] = MODELS,
                  **kw: Any) -> dict[str, Any]:
    """A router config (the gateway's format) in front of the simulator at `sim_url`; the
    static `order` policy makes the choice predictable: the first deployment listed."""
    kw.setdefault("model_extra", {"policy": "order"})
    data = gateway_config(sim_url, models, **kw)
    data.pop("server")
    return data


@contextmanager
def simulator(specs: Sequence[SimProviderSpec] = SPECS) -> Iterator[tuple[Simulator, str]]:
    sim = Simulator(specs)
    with serve(sim.app) as url:
        yield sim, url


def router(sim_url: str, **kw: Any) -> Router:
    return Router(router_config(sim_url, **kw), env=ENV)
