"""Simulated OpenAI-compatible providers for the demo, the tests and the benchmarks.

Each provider has a configurable time to first token (growing with prompt length), decode
speed, jitter, answer length, injected 500s and 429s (with Retry-After), an optional API
key, and a failure mode it can be switched into at run time (`faults`: outages, resets,
stalls, broken streams); all are served by one ASGI app, speak OpenAI's chat-completions
wire format including real SSE streaming, and count what they did so tests can check which
provider served.

Layout: `spec` (settings) -> `plan` (pure: request -> reply with every token and delay,
rewritten last by the spec's `faults` mode) -> `wire` (pure: reply -> bytes) -> `responses`
(ASGI: sleep, send, notice disconnects, reset connections); the reply types live in
`replies`; `chat`, `app` and `simulator` wire it together; `loader` reads config files,
`run` serves.
"""

from .counters import SimCounters
from .loader import SimConfigError, load_sim_settings, parse_sim_settings
from .run import run_simulator, serve_in_thread, serve_simulator
from .simulator import Simulator
from .spec import SimProviderSpec, SimSettings

__all__ = [
    "SimConfigError",
    "SimCounters",
    "SimProviderSpec",
    "SimSettings",
    "Simulator",
    "load_sim_settings",
    "parse_sim_settings",
    "run_simulator",
    "serve_in_thread",
    "serve_simulator",
]
