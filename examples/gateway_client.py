"""`tokenlane.Client` and `AsyncClient` against a running gateway: typed routing options, the
decision with every answer, live stats, typed errors.

    python examples/gateway_client.py

Against your own gateway: `Client("http://host:8000", api_key=...)` (or $TOKENLANE_API_KEY).
"""

from __future__ import annotations

import asyncio

from _support import MODEL, gateway

from tokenlane import (
    AsyncClient,
    Client,
    NoDeploymentAvailable,
    Percentiles,
    RoutingOptions,
)

MESSAGES = [{"role": "user", "content": "What is a token?"}]


def sync_client(url: str) -> None:
    with Client(url) as gw:
        print("models:", gw.models())
        for _ in range(6):
            reply = gw.chat(model=MODEL, messages=MESSAGES, max_tokens=8)
            assert reply.decision is not None
            print(f"  {reply.deployment:<20} why={reply.decision.why:<8} {reply.text!r}")

        fast = RoutingOptions(sort="throughput",
                              preferred_max_latency=Percentiles(p90=2.0))
        reply = gw.chat(model=MODEL, messages=MESSAGES, max_tokens=8, provider=fast)
        print(f"throughput, p90 TTFT under 2 s -> {reply.deployment}")

        with gw.chat(model=MODEL, messages=MESSAGES, stream=True,
                     provider={"sort": "latency"}) as stream:
            print(f"streaming from {stream.deployment}: ", end="")
            for chunk in stream:
                print(chunk.text, end="", flush=True)
            print()

        try:
            gw.chat(model=MODEL, messages=MESSAGES, provider={"only": ["budget"]})
        except NoDeploymentAvailable as exc:  # the gateway's 503, as a typed exception
            print(f"only=budget: {exc.status} {exc.code}; attempts: "
                  + ", ".join(f"{a.deployment} {a.outcome}" for a in exc.attempts))

        print("live estimates:")
        for row in gw.stats().models[MODEL].deployments:
            ttft = "-" if row.ttft_p50_s is None else f"{row.ttft_p50_s:.3f}s"
            err = "-" if row.error_rate is None else f"{row.error_rate:.0%}"
            print(f"  {row.deployment:<20} n={row.samples:<3} ttft p50={ttft:<7} "
                  f"errors={err:<5} circuit={row.circuit}")


async def async_client(url: str) -> None:
    async with AsyncClient(url) as gw:
        replies = await asyncio.gather(*(
            gw.chat(model=MODEL, messages=MESSAGES, max_tokens=4, provider={"sort": "price"})
            for _ in range(4)))
        print("async, sort=price:", sorted({r.deployment or "?" for r in replies}))
        stream = await gw.chat(model=MODEL, messages=MESSAGES, stream=True, max_tokens=6)
        async with stream:
            text = "".join([chunk.text async for chunk in stream])
        print(f"async stream from {stream.deployment}: {text!r}")


def main() -> None:
    # budget fails every request: the gateway falls back, and its circuit opens.
    with gateway(budget={"error_rate": 1.0}) as (_, url):
        sync_client(url)
        asyncio.run(async_client(url))


if __name__ == "__main__":
    main()
