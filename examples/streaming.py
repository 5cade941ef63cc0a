"""Stream an answer, in-process: the routing decision first, then tokens as they arrive, then
what was measured. Sync and async.

    python examples/streaming.py

`router.chat(..., stream=True)` returns once the first token is in hand (before that, a failing
provider is retried elsewhere, invisibly); the stream then never switches provider.
"""

from __future__ import annotations

import asyncio

from _support import MODEL, PROVIDERS, config, simulated_providers

from tokenlane import AsyncStream, Router, Stream

MESSAGES = [{"role": "user", "content": "Tell me a short story."}]


def show_decision(stream: Stream | AsyncStream) -> None:
    decision = stream.decision
    assert decision is not None
    print(f"routed to {decision.chosen} (policy={decision.policy}, why={decision.why})")
    for c in decision.candidates:
        print(f"    {c.deployment:<20} predicted ttft={c.ttft_s:.3f}s tok/s={c.decode_tps:.0f} "
              f"cost=${c.cost_usd:.7f} samples={c.samples}")


def sync_stream(router: Router) -> None:
    with router.chat(model=MODEL, messages=MESSAGES, stream=True, max_tokens=24,
                     provider={"sort": "latency"}) as stream:
        show_decision(stream)
        for chunk in stream:
            print(chunk.text, end="", flush=True)
    obs = stream.observation
    assert obs is not None
    print(f"\nmeasured: ttft={obs.ttft_s:.3f}s tok/s={obs.decode_tps:.0f} "
          f"tokens={obs.output_tokens} cost=${obs.cost:.7f} outcome={obs.outcome}\n")


async def async_stream(router: Router) -> None:
    stream = await router.achat(model=MODEL, messages=MESSAGES, stream=True, max_tokens=24,
                                provider={"only": ["blaze"]})
    show_decision(stream)
    async with stream:
        async for chunk in stream:
            print(chunk.text, end="", flush=True)
            if chunk.choices and chunk.choices[0].finish_reason:
                print(f"  [finish_reason={chunk.choices[0].finish_reason}]")
    obs = stream.observation
    assert obs is not None
    print(f"measured: ttft={obs.ttft_s:.3f}s tok/s={obs.decode_tps:.0f} outcome={obs.outcome}\n")


def stop_early(router: Router) -> None:
    # No max_tokens: budget's answers here are long (see main), so the stream is surely still
    # running when it is closed, however slowly this process gets to run.
    with router.chat(model=MODEL, messages=MESSAGES, stream=True,
                     provider={"only": ["budget"]}) as stream:
        for i, chunk in enumerate(stream):
            print(chunk.text, end="", flush=True)
            if i == 4:
                break  # leaving the `with` closes the stream and the upstream connection
    assert stream.observation is not None
    print(f"... stopped early: outcome={stream.observation.outcome}")


def warm_up(router: Router) -> None:
    """One short request per provider, so the estimates below are measured, not priors."""
    for name in PROVIDERS:
        router.chat(model=MODEL, messages=MESSAGES, max_tokens=4, provider={"only": [name]})


def main() -> None:
    # Budget writes 4,000-token answers unless max_tokens says less: stop_early cuts one short.
    with (simulated_providers(budget={"output_tokens": 4000}) as (_, sim_url),
          Router(config(sim_url)) as router):
        warm_up(router)
        sync_stream(router)
        asyncio.run(async_stream(router))
        stop_early(router)


if __name__ == "__main__":
    main()
