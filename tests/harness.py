"""A real stack for tests: simulated providers and the gateway, each on a loopback socket.

    with stack([SimProviderSpec(name="fast", ...)], models={"m": ["fast", "slow"]}) as s:
        client = s.openai()
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import openai

from tokenlane.clock import Clock
from tokenlane.config import Settings, parse_settings
from tokenlane.server import create_app
from tokenlane.sim import SimProviderSpec, Simulator

from .loopback import serve

MASTER_KEY = "tl-test-master-key"
# Per 1M tokens; config-order position picks a price so tests can tell deployments apart.
DEFAULT_PRICES = [(1.0, 2.0), (0.5, 1.0), (0.25, 0.5), (0.1, 0.2)]


@dataclass
class Stack:
    sim: Simulator
    sim_url: str
    url: str
    app: Any
    settings: Settings

    def openai(self, **kwargs: Any) -> openai.OpenAI:
        kwargs.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=MASTER_KEY, **kwargs)

    def async_openai(self, **kwargs: Any) -> openai.AsyncOpenAI:
        kwargs.setdefault("max_retries", 0)
        return openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key=MASTER_KEY, **kwargs)

    @property
    def engine(self) -> Any:
        return self.app.state.engine


def gateway_config(
    sim_url: str,
    models: Mapping[str, Sequence[str]],
    *,
    # (input, output) per provider; a tuple of three adds the cached-input price.
    prices: Mapping[str, tuple[float, ...]] | None = None,
    auth: bool = True,
    extra: Mapping[str, Any] | None = None,
    model_extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    providers = {name for names in models.values() for name in names}
    data: dict[str, Any] = {
        "server": {"auth": {"enabled": auth, "master_keys_env": "TL_TEST_KEYS"}},
        "providers": {p: {"base_url": Simulator.base_url(sim_url, p), "api_key_env": "SIM_KEY"}
                      for p in sorted(providers)},
        "models": {
            model: {
                "deployments": [
                    {"provider": p, "model": f"{p}-{model}",
                     "price": dict(zip(("input", "output", "cached_input"),
                                       (prices or {}).get(p, DEFAULT_PRICES[i % 4])))}
                    for i, p in enumerate(names)
                ],
                **(model_extra or {}),
            }
            for model, names in models.items()
        },
        # The prober re-measures on its own schedule, in real time: tests that want it turn
        # it on, the rest see only the traffic they send.
        "routing": {"probes": {"enabled": False}},
    }
    for key, value in (extra or {}).items():
        data[key] = {**data.get(key, {}), **value}
    return data


SIM_KEY = "sk-sim-upstream-secret-123"


@contextmanager
def stack(
    specs: Sequence[SimProviderSpec],
    models: Mapping[str, Sequence[str]],
    *,
    clock: Clock | None = None,
    seed: int = 7,
    tracer_provider: Any = None,
    **config: Any,
) -> Iterator[Stack]:
    specs = [s.model_copy(update={"api_key": SIM_KEY}) for s in specs]
    sim = Simulator(specs, clock=clock)
    with ExitStack() as stack_:
        sim_url = stack_.enter_context(serve(sim.app))
        settings = parse_settings(gateway_config(sim_url, models, **config))
        env = {"TL_TEST_KEYS": MASTER_KEY, "SIM_KEY": SIM_KEY}
        app = create_app(settings, env=env, clock=clock, rng=random.Random(seed),
                         tracer_provider=tracer_provider)
        url = stack_.enter_context(serve(app))
        yield Stack(sim, sim_url, url, app, settings)
