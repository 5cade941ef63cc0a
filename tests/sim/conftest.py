"""Fixtures for the simulator's tests: simulators served on real loopback sockets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import openai
import pytest

from tests.loopback import serve
from tokenlane.clock import Clock
from tokenlane.sim import SimProviderSpec, Simulator

from .support import SdkClient, StartSim


@pytest.fixture
def start_sim() -> Iterator[StartSim]:
    """`start_sim(*specs, clock=None) -> (sim, root_url)`; servers stop when the test ends."""
    with ExitStack() as stack:

        def start(*specs: SimProviderSpec, clock: Clock | None = None) -> tuple[Simulator, str]:
            sim = Simulator(specs, clock)
            return sim, stack.enter_context(serve(sim.app))

        yield start


@pytest.fixture
def sdk() -> Iterator[SdkClient]:
    """`sdk(root, name="swift", api_key="sk-test") -> openai.OpenAI` for one simulated provider.

    No retries, so each call is one request; clients are closed when the test ends.
    """
    with ExitStack() as stack:

        def make(root: str, name: str = "swift", api_key: str = "sk-test") -> openai.OpenAI:
            client = openai.OpenAI(
                base_url=Simulator.base_url(root, name), api_key=api_key, max_retries=0
            )
            return stack.enter_context(client)

        yield make
