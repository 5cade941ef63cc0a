"""A client that goes away stops the simulated generation, and the simulator counts it.

No test sleeps: each waits on the simulator's counters, which wake the waiter the moment a
disconnect is recorded, and gives up after a bounded timeout.
"""

from __future__ import annotations

import asyncio

import httpx

from tokenlane.sim import SimProviderSpec

from .support import HELLO, StartSim

# Long enough that no stream here can finish on its own while a test runs.
ENDLESS = {"output_tokens": 1_000_000, "tokens_per_s": 100.0, "ttft_s": 0.0}


def test_closing_a_stream_mid_way_cancels_generation(start_sim: StartSim) -> None:
    sim, root = start_sim(SimProviderSpec(name="swift", **ENDLESS))  # type: ignore[arg-type]
    body = {"model": "m", "messages": HELLO, "stream": True}
    url = f"{root}/swift/v1/chat/completions"
    with httpx.Client(timeout=5) as http, http.stream("POST", url, json=body) as response:
        contents = 0
        for line in response.iter_lines():
            contents += '"content":"' in line and '"content":""' not in line
            if contents == 2:
                break  # leaving the block closes the connection mid-stream
    counters = sim.wait_counters("swift", lambda c: c.disconnected == 1)
    assert (counters.completed, counters.in_flight) == (0, 0)


def test_disconnect_during_time_to_first_token(start_sim: StartSim) -> None:
    sim, root = start_sim(SimProviderSpec(name="stall", ttft_s=3600.0))
    body = {"model": "m", "messages": HELLO, "stream": True}
    url = f"{root}/stall/v1/chat/completions"
    with httpx.Client(timeout=5) as http, http.stream("POST", url, json=body) as response:
        assert response.status_code == 200  # headers come at once, tokens after the TTFT
    counters = sim.wait_counters("stall", lambda c: c.disconnected == 1)
    assert counters.in_flight == 0


async def test_disconnect_while_a_non_streamed_reply_is_generated(start_sim: StartSim) -> None:
    sim, root = start_sim(SimProviderSpec(name="slow", ttft_s=3600.0))
    async with httpx.AsyncClient(timeout=5) as http:
        body = {"model": "m", "messages": HELLO}
        request = asyncio.create_task(http.post(f"{root}/slow/v1/chat/completions", json=body))
        await sim.await_counters("slow", lambda c: c.requests == 1)
        request.cancel()
        counters = await sim.await_counters("slow", lambda c: c.disconnected == 1)
    assert (counters.completed, counters.in_flight) == (0, 0)


async def test_many_concurrent_streams_at_zero_delay(start_sim: StartSim) -> None:
    sim, root = start_sim(SimProviderSpec(name="fast", time_scale=0, output_tokens=32))
    body = {"model": "m", "messages": HELLO, "stream": True}
    async with httpx.AsyncClient(timeout=10) as http:

        async def one() -> int:
            async with http.stream("POST", f"{root}/fast/v1/chat/completions", json=body) as r:
                return len([line async for line in r.aiter_lines() if line.startswith("data: ")])

        counts = await asyncio.gather(*(one() for _ in range(100)))
    assert counts == [1 + 32 + 1 + 1] * 100
    counters = sim.counters("fast")
    assert (counters.requests, counters.completed, counters.in_flight) == (100, 100, 0)
