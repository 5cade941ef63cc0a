"""Active probes: tiny measured requests to idle deployments, within a daily spend cap."""

from __future__ import annotations

from tokenlane.clock import ManualClock
from tokenlane.config import parse_settings
from tokenlane.routing.engine import Engine
from tokenlane.routing.probes import Prober, ProbeSettings
from tokenlane.sim import SimProviderSpec, Simulator

from ..harness import SIM_KEY, gateway_config
from ..loopback import serve


async def test_probes_measure_idle_deployments_until_the_cap() -> None:
    clock = ManualClock()
    specs = [SimProviderSpec(name=n, ttft_s=0.1, tokens_per_s=100, api_key=SIM_KEY)
             for n in ("a", "b")]
    sim = Simulator(specs, clock=clock)
    with serve(sim.app) as url:
        catalog = parse_settings(gateway_config(url, {"m": ["a", "b"]}, auth=False)).resolve(
            {"SIM_KEY": SIM_KEY})
        engine = Engine(catalog, clock=clock)
        # Probes cost ~$0.00005 (a: $1/$2 per 1M) and ~$0.00002 (b: half that): one round > cap.
        prober = Prober(engine, ProbeSettings(enabled=True, max_tokens=16,
                                              spend_cap_usd_per_day=0.00006))
        try:
            assert [d for _, d in prober.due()] == ["a/a-m", "b/b-m"]
            assert await prober.run_once() == 2
            snapshot = engine.stats.snapshot(["a/a-m", "b/b-m"]).estimates
            assert snapshot["a/a-m"].samples == 1 and snapshot["b/b-m"].samples == 1
            assert sim.counters("a").requests == 1 and sim.counters("b").requests == 1
            assert prober.spent_today() > 0.00006
            assert await prober.run_once() == 0  # cap reached: no spending until it rolls over
            clock.advance(86_401)
            engine.circuits.record("b/b-m", "429", retry_after=1e6)  # b is open: leave it alone
            assert await prober.run_once() == 1
            assert sim.counters("a").requests == 2 and sim.counters("b").requests == 1
        finally:
            await engine.aclose()
