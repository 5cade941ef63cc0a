"""Active probes (on by default): re-measure deployments nobody is using, with a tiny request.

Routing stops sending users to a deployment that got worse; the prober is what notices when
it gets well again, without sending a user to find out. Every `interval_s` it asks the recheck
schedule (`rechecks`) which deployments are due — a degraded one within `first_s`..`max_s` of
its last measurement, an idle healthy one every `idle_s`, one never measured at once — and
sends each a small streamed request (`max_tokens`, a short prompt) through the engine, so the
probe is measured exactly like a user's request (TTFT, decode speed, outcome) and feeds the same
stats. A probe is also the trial of an open circuit: its success closes it.

Budget: at most one probe in flight per deployment, none to a deployment honouring a provider's
Retry-After, and a spend cap over a rolling day (`spend_cap_usd_per_day`, $1 by default: a
16-token probe costs about $0.00002 at today's open-model prices, so a deployment degraded
all day, re-measured every 2 s, costs about $0.9); past the cap, probing pauses for the rest of
the day. While the prober runs (`engine.probing`), users are not sent to explore.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ..errors import TokenlaneError
from ..tracebacks import one_line
from .engine import Engine
from .health import HealthSettings, degraded

__all__ = ["ProbeSettings", "Prober"]

log = logging.getLogger("tokenlane.probes")

_DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    enabled: bool = True
    interval_s: float = 0.25  # how often the schedule is consulted (a probe is sent when due)
    max_tokens: int = 16  # enough tokens to see a decode speed, little enough to cost nothing
    spend_cap_usd_per_day: float = 1.0


class Prober:
    def __init__(self, engine: Engine, settings: ProbeSettings,
                 health: HealthSettings | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.health = health or engine.health
        self._spend: deque[tuple[float, float]] = deque()  # (time, usd) within the last day
        self._running: dict[str, asyncio.Task[None]] = {}
        # With replicas (tokenlane.state): which of the due deployments this one may probe
        # now (the others are being probed by another replica). None: all of them.
        self.leases: Callable[[Sequence[str]], Awaitable[set[str]]] | None = None
        self.rounds = 0  # rounds run (tests and operators: is the prober alive?)

    def spent_today(self) -> float:
        now = self.engine.clock.now()
        while self._spend and self._spend[0][0] < now - _DAY_S:
            self._spend.popleft()
        return sum(usd for _, usd in self._spend)

    def over_budget(self) -> bool:
        return self.spent_today() >= self.settings.spend_cap_usd_per_day

    def due(self) -> list[tuple[str, str]]:
        """(model, deployment id) pairs due a probe now, one per deployment."""
        engine = self.engine
        now = engine.clock.now()
        seen: set[str] = set()
        out = []
        for model, route in engine.catalog.models.items():
            snapshot = engine.stats.snapshot((d.id for d in route.deployments),
                                             circuit=engine.circuits.state)
            for d in route.deployments:
                if d.id in seen or d.id in self._running or "chat" not in d.endpoints:
                    continue  # (a probe is a chat request)
                seen.add(d.id)
                e = snapshot.estimates[d.id]
                if engine.circuits.rate_limited(d.id) or engine.circuits.auth_failed(d.id):
                    continue  # it asked us to stay away, or refuses our key
                # (Users' streams in flight do not make a probe redundant: a stream sent into
                # a slowdown stays slow after the deployment recovers.)
                measured_at = None if e.age_s is None else now - e.age_s
                if engine.rechecks.due(d.id, degraded(e, self.health), measured_at, now,
                                       hopeful=e.getting_better):
                    out.append((model, d.id))
        return out

    async def run_once(self) -> int:
        """Start a probe of every deployment that is due, within the spend cap; returns how
        many were started (each runs as its own task, so a stalled one holds up no other)."""
        started = 0
        due = self.due()
        if self.leases is not None and due:
            granted = await self.leases([d for _, d in due])
            for _, deployment in due:
                if deployment not in granted:  # another replica's probe: one recheck, counted
                    self.engine.rechecks.sent(deployment, self.engine.clock.now())
            due = [(m, d) for m, d in due if d in granted]
        self.rounds += 1
        for model, deployment in due:
            if self.over_budget():
                log.info("probe spend cap reached; skipping the rest of this round")
                break
            self.engine.rechecks.sent(deployment, self.engine.clock.now())
            task = asyncio.create_task(self._probe(model, deployment))
            self._running[deployment] = task
            task.add_done_callback(lambda _, d=deployment: self._running.pop(d, None))
            started += 1
        return started

    async def wait_idle(self) -> None:
        """Wait for the probes in flight to finish (tests and shutdown)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def _probe(self, model: str, deployment: str) -> None:
        try:
            result = await self.engine.probe(model, deployment, self.settings.max_tokens)
        except TokenlaneError as exc:
            log.debug("probe of %s failed: %s", deployment, exc.message)
            return
        except Exception as exc:  # noqa: BLE001 - a probe must never take the gateway down
            log.error("probe of %s failed: %s", deployment, one_line(exc))
            return
        if result.observation is not None:
            self._spend.append((self.engine.clock.now(), result.observation.cost))

    async def run(self) -> None:
        """Probe forever at the configured interval (a lifespan task; cancel to stop)."""
        self.engine.probing = True
        try:
            while True:
                # The first round at once: a new gateway measures every deployment before
                # users would have to find out which is which.
                try:
                    await self.run_once()
                except Exception as exc:  # noqa: BLE001 - a round must never take the gateway down
                    log.error("probe round failed: %s", one_line(exc))
                await self.engine.clock.sleep(self.settings.interval_s)
        finally:
            self.engine.probing = False
            for task in list(self._running.values()):
                task.cancel()
            await asyncio.gather(*self._running.values(), return_exceptions=True)
