"""Helpers the examples share: serve an ASGI app on loopback in a thread, fake providers.

Everything runs offline: the "providers" are tokenlane's simulated OpenAI-compatible
upstreams (`tokenlane.sim`), with delays scaled down so each example finishes in seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tokenlane.sim import SimProviderSpec, Simulator
from tokenlane.sim import serve_in_thread as serve

# Same model, three very different providers. Every simulated delay is multiplied by
# TIME_SCALE so the examples finish in seconds; speeds stay modest because a simulated gap
# between tokens below about a millisecond is not reproduced faithfully by an event loop.
TIME_SCALE = 0.5
PROVIDERS = {
    # name: (TTFT s, decode tokens/s, $ per 1M input, $ per 1M output), before TIME_SCALE
    "blaze": (0.20, 400, 0.85, 1.20),
    "swift": (0.08, 150, 0.59, 0.79),
    "budget": (0.60, 40, 0.23, 0.40),
}
MODEL = "llama-3.3-70b"


@contextmanager
def simulated_providers(**overrides: dict[str, Any]) -> Iterator[tuple[Simulator, str]]:
    """The PROVIDERS, simulated and served; yields (simulator, root URL).

    `overrides` change a provider's spec, e.g. `budget={"error_rate": 1.0}`.
    """
    specs = [
        SimProviderSpec(**{"name": name, "ttft_s": ttft, "tokens_per_s": tps,
                           "output_tokens": 24, "jitter": 0.1, "time_scale": TIME_SCALE,
                           "seed": i, **overrides.get(name, {})})
        for i, (name, (ttft, tps, _, _)) in enumerate(PROVIDERS.items())
    ]
    sim = Simulator(specs)
    with serve(sim.app) as url:
        yield sim, url


def config(sim_url: str, **routing: Any) -> dict[str, Any]:
    """A tokenlane config (what `tokenlane serve --config` reads) for the simulated
    providers; no API keys needed.

    Exploration and active probes are off unless asked for: by default a small share of
    requests goes to a deployment with thin measurements, at random, and the prober
    re-measures deployments on its own schedule, in real time; an example should print the
    same thing every time it runs. Unmeasured deployments are still tried once each
    (`why=cold`).
    """
    routing.setdefault("exploration_share", 0.0)
    routing.setdefault("probes", {"enabled": False})
    return {
        "server": {"auth": {"enabled": False}},
        "providers": {name: {"base_url": Simulator.base_url(sim_url, name)}
                      for name in PROVIDERS},
        "models": {MODEL: {"deployments": [
            {"provider": name, "model": f"{name}-llama",
             "price": {"input": pin, "output": pout}}
            for name, (_, _, pin, pout) in PROVIDERS.items()
        ]}},
        "routing": routing,
    }


@contextmanager
def gateway(**overrides: dict[str, Any]) -> Iterator[tuple[Simulator, str]]:
    """Simulated providers plus a tokenlane gateway in front of them, both on loopback (what
    `tokenlane serve` runs); yields (simulator, gateway URL). Auth is off: a demo."""
    from tokenlane.config import parse_settings
    from tokenlane.server import create_app

    with simulated_providers(**overrides) as (sim, sim_url):
        app = create_app(parse_settings(config(sim_url)), env={})
        with serve(app) as url:
            yield sim, url
