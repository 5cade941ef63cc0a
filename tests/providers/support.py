"""A stack whose `claude` provider speaks the Anthropic dialect to the simulator's Messages
route (the rest speak OpenAI's), shared by the Anthropic-upstream tests."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from tokenlane.config import parse_settings
from tokenlane.server import create_app
from tokenlane.sim import SimProviderSpec, Simulator

from ..harness import MASTER_KEY, SIM_KEY, Stack, gateway_config
from ..loopback import serve

__all__ = ["anthropic_stack"]


@contextmanager
def anthropic_stack(specs: list[SimProviderSpec], models: dict[str, list[str]],
                    **config: Any) -> Iterator[Stack]:
    """The harness's stack, with the `claude` provider speaking the anthropic dialect;
    `config` as `gateway_config` takes it, and `claude` for the claude provider's own
    settings (headers, say)."""
    claude = config.pop("claude", {})
    sim = Simulator(specs)
    with ExitStack() as stack_:
        sim_url = stack_.enter_context(serve(sim.app))
        config.setdefault("model_extra", {"policy": "order"})
        data = gateway_config(sim_url, models, **config)
        data["providers"]["claude"].update(dialect="anthropic", **claude)
        settings = parse_settings(data)
        app = create_app(settings, env={"TL_TEST_KEYS": MASTER_KEY, "SIM_KEY": SIM_KEY},
                         rng=random.Random(7))
        url = stack_.enter_context(serve(app))
        yield Stack(sim, sim_url, url, app, settings)
