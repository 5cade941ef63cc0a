"""Per-deployment headroom: what providers said is left of their limits (clock injected).

Fed from every upstream answer's rate-limit headers (`providers.headroom.parse_rate_limits`),
from 429s (a quota 429 means nothing is left until the window resets), and from refusals (a
retired model is unavailable until re-checked). Read by the planner through `no_room`: the
deployments that cannot take a request of so many tokens right now, and why. They go last, not
out: when every deployment is short, one is still tried, and a window whose reset time has
passed counts as full again (the provider's next answer tells the truth).

Cerebras admits a request on its input tokens plus `max_completion_tokens`, so a request
"needs" prompt + output limit tokens; other providers count what is used, for which the same
figure is a cautious bound.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .clock import Clock
from .providers.headroom import Limit

__all__ = ["HeadroomBoard"]


@dataclass(slots=True)
class _Window:
    remaining: float
    resets_at: float | None  # clock time; None: the provider did not say


@dataclass(slots=True)
class _Deployment:
    windows: dict[tuple[str, str], _Window]
    unavailable_until: float = 0.0
    unavailable_why: str = ""


class HeadroomBoard:
    """Headroom of every deployment, as last reported. Not thread-safe: one event loop."""

    def __init__(self, clock: Clock, *, unreported_reset_s: float = 60.0) -> None:
        self.clock = clock
        # A window reported without a reset time is trusted this long.
        self.unreported_reset_s = unreported_reset_s
        self._state: dict[str, _Deployment] = {}

    def _get(self, deployment: str) -> _Deployment:
        state = self._state.get(deployment)
        if state is None:
            state = self._state[deployment] = _Deployment({})
        return state

    def observe(self, deployment: str, limits: Iterable[Limit]) -> None:
        """Record the windows one answer reported (each replaces its earlier value)."""
        now = self.clock.now()
        state = None
        for lim in limits:
            if lim.remaining is None:
                continue
            state = state or self._get(deployment)
            reset = lim.reset_s if lim.reset_s is not None else self.unreported_reset_s
            state.windows[(lim.resource, lim.window)] = _Window(lim.remaining, now + reset)

    def exhausted(self, deployment: str, for_s: float, resource: str = "tokens") -> None:
        """A quota 429: nothing left for `for_s` seconds, whatever the headers said."""
        window = self._get(deployment).windows.setdefault((resource, "429"), _Window(0, None))
        window.remaining, window.resets_at = 0, self.clock.now() + for_s

    def unavailable(self, deployment: str, why: str, for_s: float) -> None:
        """The provider refused the deployment itself (a retired model): kept last this long."""
        state = self._get(deployment)
        state.unavailable_until, state.unavailable_why = self.clock.now() + for_s, why

    def available(self, deployment: str) -> None:
        """It answered: whatever made it unavailable is over."""
        state = self._state.get(deployment)
        if state is not None:
            state.unavailable_until = 0.0

    def why_not(self, deployment: str, tokens: int) -> str | None:
        """Why `deployment` cannot take a request needing `tokens` now (None: it can)."""
        state = self._state.get(deployment)
        if state is None:
            return None
        now = self.clock.now()
        if now < state.unavailable_until:
            return f"{state.unavailable_why} (re-checked in {state.unavailable_until - now:.0f}s)"
        for (resource, window), w in sorted(state.windows.items()):
            if w.resets_at is not None and now >= w.resets_at:
                continue  # the window has reset since: full again until told otherwise
            need = tokens if resource == "tokens" else 1
            if w.remaining < need:
                name = f"{resource}/{window}" if window else resource
                left = f" until reset in {w.resets_at - now:.0f}s" if w.resets_at else ""
                return f"no headroom: {name} {w.remaining:.0f} left, needs {need}{left}"
        return None

    def no_room(self, deployments: Iterable[str], tokens: int) -> dict[str, str]:
        """`why_not` for each deployment that has no room."""
        out = {}
        for d in deployments:
            why = self.why_not(d, tokens)
            if why is not None:
                out[d] = why
        return out
