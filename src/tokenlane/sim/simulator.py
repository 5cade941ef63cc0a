"""`Simulator`: a set of fake OpenAI-compatible providers behind one ASGI app, plus the
handles tests and benchmarks steer and observe them with."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from ..clock import Clock, MonotonicClock
from .app import SimApp, build_app
from .counters import CounterBoard, SimCounters
from .provider import ProviderState
from .spec import SimProviderSpec

__all__ = ["Simulator"]

_KEY_HEADERS = (b"authorization", b"x-api-key")


class Simulator:
    """Simulated providers served by one ASGI app (`.app`), each under `/{name}/v1`.

    Every delay goes through `clock`: pass a `ManualClock` (shared with the gateway under
    test) and a two-second TTFT costs no wall time yet is measured as exactly two seconds.

        sim = Simulator([SimProviderSpec(name="swift", ttft_s=0.05)])
        with serve(sim.app) as root:
            client = openai.OpenAI(base_url=Simulator.base_url(root, "swift"), api_key="x")
    """

    def __init__(self, specs: Iterable[SimProviderSpec], clock: Clock | None = None) -> None:
        self._providers: dict[str, ProviderState] = {}
        for spec in specs:
            if spec.name in self._providers:
                raise ValueError(f"sim provider name {spec.name!r} is used twice")
            self._providers[spec.name] = ProviderState(spec)
        self.clock: Clock = clock if clock is not None else MonotonicClock()
        self._board = CounterBoard(self._providers)
        self.app: SimApp = build_app(self._providers, self._board, self.clock)

    @staticmethod
    def base_url(root: str, name: str) -> str:
        """The OpenAI base URL of provider `name` on a simulator served at `root`."""
        return f"{root.rstrip('/')}/{name}/v1"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._providers)

    def spec(self, name: str) -> SimProviderSpec:
        """The provider's current spec; KeyError for an unknown name."""
        return self._providers[name].spec

    def specs(self) -> list[SimProviderSpec]:
        return [state.spec for state in self._providers.values()]

    def update(self, name: str, /, **fields: Any) -> SimProviderSpec:
        """Change some of a provider's fields from its next request on; returns the new spec.

        Validated like the config file (SimConfigError on a bad value or an unknown field);
        requests already running keep the spec they started with. KeyError for an unknown
        provider.
        """
        return self._providers[name].update(fields)

    def counters(self, name: str) -> SimCounters:
        """A snapshot of what provider `name` has done so far."""
        return self._board.get(name)

    def request_headers(self, name: str) -> list[dict[str, str]]:
        """The headers of provider `name`'s latest requests (up to `RECEIVED_KEPT`, oldest
        first), names lower-cased, its key headers (`authorization`, `x-api-key`) left out."""
        return [{k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers
                 if k.lower() not in _KEY_HEADERS}
                for headers in list(self._providers[name].received)]

    def wait_counters(
        self, name: str, until: Callable[[SimCounters], bool], timeout: float = 5.0
    ) -> SimCounters:
        """Block until `until(counters)` holds and return those counters.

        Raises TimeoutError after `timeout` seconds. For a simulator served from another
        thread (`tests.loopback.serve`); from async code use `await_counters`.
        """
        return self._board.wait(name, until, timeout)

    async def await_counters(
        self, name: str, until: Callable[[SimCounters], bool], timeout: float = 5.0
    ) -> SimCounters:
        """`wait_counters` without blocking the event loop (the simulator may share it)."""
        return await asyncio.to_thread(self._board.wait, name, until, timeout)
