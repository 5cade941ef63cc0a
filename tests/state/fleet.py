"""Several gateway replicas sharing one Redis, in front of one simulator: the fleet tests'
stack. Each replica is a real app on its own loopback socket with its own lifespan (its sync
loops run as they would in production); the openai SDK talks to each."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import openai

from tokenlane.clock import Clock
from tokenlane.config import parse_settings
from tokenlane.server import create_app
from tokenlane.sim import SimProviderSpec, Simulator

from ..harness import MASTER_KEY, SIM_KEY, gateway_config
from ..loopback import serve

_HEADERS = {"authorization": f"Bearer {MASTER_KEY}"}


@dataclass
class Replica:
    url: str
    app: Any

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=MASTER_KEY, max_retries=0)

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/v1/router/stats", headers=_HEADERS, timeout=30).json()

    def estimate(self, model: str, provider: str) -> dict[str, Any]:
        (found,) = [d for d in self.stats()["models"][model]["deployments"]
                    if d["provider"] == provider]
        return found

    def metric(self, name: str) -> float | None:
        text = httpx.get(f"{self.url}/metrics", headers=_HEADERS, timeout=30).text
        for line in text.splitlines():
            if line.startswith((name + "{", name + " ")):
                return float(line.rsplit(" ", 1)[1])
        return None


@dataclass
class Fleet:
    sim: Simulator
    replicas: list[Replica]


@contextmanager
def fleet(specs: Sequence[SimProviderSpec], models: Mapping[str, Sequence[str]],
          redis_url: str, *, replicas: int = 3, clock: Clock | None = None,
          state: Mapping[str, Any] | None = None, **config: Any) -> Iterator[Fleet]:
    specs = [s.model_copy(update={"api_key": SIM_KEY}) for s in specs]
    sim = Simulator(specs, clock=clock)
    env = {"TL_TEST_KEYS": MASTER_KEY, "SIM_KEY": SIM_KEY}
    with ExitStack() as stack:
        sim_url = stack.enter_context(serve(sim.app))
        data = gateway_config(sim_url, models, **config)
        # A second per Redis call: on this loaded machine an event loop may lag past 250 ms,
        # which would take a replica local for a moment (tested on its own elsewhere).
        data["state"] = {"backend": "redis", "url": redis_url, "retry_s": 0.2,
                         "timeout_s": 1.0, **(state or {})}
        settings = parse_settings(data)
        members = []
        for i in range(replicas):
            app = create_app(settings, env=env, clock=clock, rng=random.Random(7 + i))
            members.append(Replica(stack.enter_context(serve(app)), app))
        yield Fleet(sim, members)


def wait_for(what: str, condition: Callable[[], bool], timeout_s: float = 20.0) -> float:
    """Wait (bounded) for `condition`, checked as often as it can be; the seconds it took.
    For what crosses real time by nature (Redis delivering to another replica)."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > timeout_s:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.02)  # how often the condition is checked, not a wait for an outcome
    return time.monotonic() - began
