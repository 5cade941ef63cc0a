"""Route requests in-process across three simulated providers and watch the router learn.

    python examples/route_in_process.py

No gateway, no server of our own: `tokenlane.Router` runs the gateway's engine in this process.
The first requests explore (every provider is unmeasured), then the `balanced` policy settles
on the provider with the best cost + value-of-time tradeoff; routing options change that per
request.
"""

from __future__ import annotations

from _support import MODEL, TIME_SCALE, config, simulated_providers

from tokenlane import MaxPrice, Router, RoutingOptions
from tokenlane.client import ProviderArg

MESSAGES = [{"role": "user", "content": "Name three rivers."}]


def main() -> None:
    with simulated_providers() as (_, sim_url), Router(config(sim_url)) as router:
        print(f"(simulated providers run {1 / TIME_SCALE:.0f}x faster than real ones)\n")
        print(f"{'#':>2}  {'chosen':<20} {'why':<8} {'ttft':>8} {'tok/s':>8} {'cost $':>10}")
        for i in range(12):
            reply = router.chat(model=MODEL, messages=MESSAGES, max_tokens=24)
            obs = reply.observation
            assert reply.decision is not None and obs is not None
            print(f"{i:>2}  {reply.deployment:<20} {reply.decision.why:<8} "
                  f"{obs.ttft_s or 0:>7.4f}s {obs.decode_tps or 0:>8.0f} {obs.cost:>10.7f}")

        print("\nper-request routing options:")
        choices: list[tuple[str, ProviderArg]] = [
            ("sort=price", RoutingOptions(sort="price")),
            ("sort=throughput", RoutingOptions(sort="throughput")),
            ("max_price completion<=1.0", RoutingOptions(max_price=MaxPrice(completion=1.0))),
            ("only budget (a dict works too)", {"only": ["budget"]}),
        ]
        for label, options in choices:
            reply = router.chat(model=MODEL, messages=MESSAGES, max_tokens=8, provider=options)
            why = reply.decision.why if reply.decision else "-"
            print(f"  {label:<32} -> {reply.deployment} ({why})")

        print("\nlive estimates (router.stats()):")
        for row in router.stats().models[MODEL].deployments:
            ttft = f"{row.ttft_p50_s:.4f}s" if row.ttft_p50_s is not None else "-"
            tps = f"{row.decode_tps_p50:.0f}" if row.decode_tps_p50 is not None else "-"
            print(f"  {row.deployment:<20} n={row.samples:<3} ttft p50={ttft:<9} "
                  f"tok/s p50={tps:<7} circuit={row.circuit}")


if __name__ == "__main__":
    main()
