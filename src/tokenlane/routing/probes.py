"""Active probes (off by default): keep idle deployments measured with a tiny request.

Exploration needs traffic; a deployment nobody routes to would otherwise never be re-measured.
Every `interval_s` the prober sends one small streamed request to each deployment whose numbers
are stale or thin and whose circuit is not open, through the normal engine (so the probe is
measured like any request), until the spend cap for the rolling day is reached.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from ..errors import TokenlaneError
from ..request import chat_request_from_body
from ..tracebacks import one_line
from .engine import Engine

__all__ = ["ProbeSettings", "Prober"]

log = logging.getLogger("tokenlane.probes")

_DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    enabled: bool = False
    interval_s: float = 300.0
    max_tokens: int = 16  # enough tokens to see a decode speed, little enough to cost nothing
    spend_cap_usd_per_day: float = 0.10
    min_weight: float = 2.0  # probe below this decayed sample weight, or when stale


class Prober:
    def __init__(self, engine: Engine, settings: ProbeSettings) -> None:
        self.engine = engine
        self.settings = settings
        self._spend: deque[tuple[float, float]] = deque()  # (time, usd) within the last day

    def spent_today(self) -> float:
        now = self.engine.clock.now()
        while self._spend and self._spend[0][0] < now - _DAY_S:
            self._spend.popleft()
        return sum(usd for _, usd in self._spend)

    def due(self) -> list[tuple[str, str]]:
        """(model, deployment id) pairs whose numbers need a probe, one per deployment."""
        seen: set[str] = set()
        out = []
        for model, route in self.engine.catalog.models.items():
            snapshot = self.engine.stats.snapshot(d.id for d in route.deployments)
            for d in route.deployments:
                e = snapshot.estimates[d.id]
                thin = e.stale or e.shifting or e.weight < self.settings.min_weight
                if d.id in seen or not thin or e.in_flight:
                    continue
                if self.engine.circuits.state(d.id) == "open":
                    continue
                seen.add(d.id)
                out.append((model, d.id))
        return out

    async def run_once(self) -> int:
        """Probe every deployment that is due, within the spend cap; returns probes sent."""
        sent = 0
        for model, deployment in self.due():
            if self.spent_today() >= self.settings.spend_cap_usd_per_day:
                log.info("probe spend cap reached; skipping the rest of this round")
                break
            request = chat_request_from_body({
                "model": model,
                "messages": [{"role": "user", "content": "Count from one to twenty."}],
                "max_tokens": self.settings.max_tokens,
                "provider": {"only": [deployment], "allow_fallbacks": False, "max_attempts": 1},
            })
            sent += 1
            try:
                result = await self.engine.complete(request)
            except TokenlaneError as exc:
                log.info("probe of %s failed: %s", deployment, exc.message)
                continue
            if result.observation is not None:
                self._spend.append((self.engine.clock.now(), result.observation.cost))
        return sent

    async def run(self) -> None:
        """Probe forever at the configured interval (a lifespan task; cancel to stop)."""
        while True:
            await self.engine.clock.sleep(self.settings.interval_s)
            try:
                await self.run_once()
            except Exception as exc:  # noqa: BLE001 - a probe round must never take the gateway down
                log.error("probe round failed: %s", one_line(exc))
