"""Fixtures for the simulator's tests: simulators served on real loopback sockets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from tests.loopback import serve
from tokenlane.clock import Clock
from tokenlane.sim import SimProviderSpec, Simulator

StartSim = Callable[..., tuple[Simulator, str]]


@pytest.fixture
def start_sim() -> Iterator[StartSim]:
    """`start_sim(*specs, clock=None) -> (sim, root_url)`; servers stop when the test ends."""
    with ExitStack() as stack:

        def start(*specs: SimProviderSpec, clock: Clock | None = None) -> tuple[Simulator, str]:
            sim = Simulator(specs, clock)
            return sim, stack.enter_context(serve(sim.app))

        yield start
