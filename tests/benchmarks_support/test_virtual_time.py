"""The routing benchmark's virtual-time loop and in-process streaming transport.

The benchmark's numbers are only as good as these two: virtual time must move exactly as far
as the sleeps and timeouts ask (no more, no less, no wall time), and a simulated provider's
tokens must reach the gateway at the virtual instant they were sent.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from asgi_stream import StreamingASGITransport
from virtual_time import LoopClock, VirtualTimeLoop, run_virtual

from tokenlane.sim import SimProviderSpec, Simulator


def _has_text(line: str) -> bool:
    """An SSE data line whose chunk carries content text (not the role chunk's empty one)."""
    if not line.startswith("data: {"):
        return False
    chunk = json.loads(line.removeprefix("data: "))
    return any(c.get("delta", {}).get("content") for c in chunk.get("choices", ()))


def test_a_sleep_advances_virtual_time_exactly_and_costs_no_wall_time() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.sleep(10)
        return loop.time() - t0

    wall = time.perf_counter()
    assert run_virtual(main()) == pytest.approx(10, abs=1e-9)
    assert time.perf_counter() - wall < 1.0


def test_concurrent_sleeps_overlap_instead_of_adding_up() -> None:
    async def main() -> tuple[float, list[float]]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        woke: list[float] = []

        async def nap(seconds: float) -> None:
            await asyncio.sleep(seconds)
            woke.append(loop.time() - t0)

        await asyncio.gather(nap(3), nap(1), nap(2))
        return loop.time() - t0, woke

    total, woke = run_virtual(main())
    assert total == pytest.approx(3)
    assert woke == pytest.approx([1, 2, 3])


def test_asyncio_timeout_fires_at_its_virtual_deadline() -> None:
    async def main() -> tuple[bool, float]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        timed_out = False
        try:
            async with asyncio.timeout(2.5):
                await asyncio.sleep(3600)
        except TimeoutError:
            timed_out = True
        return timed_out, loop.time() - t0

    timed_out, elapsed = run_virtual(main())
    assert timed_out
    assert elapsed == pytest.approx(2.5)


def test_time_does_not_move_while_something_is_runnable() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        sleeper = asyncio.ensure_future(asyncio.sleep(1))
        for _ in range(1000):  # busy work between yields: the sleeper's timer must wait
            await asyncio.sleep(0)
        during = loop.time() - t0
        await sleeper
        return during

    assert run_virtual(main()) == 0


def test_thread_results_are_waited_for_when_nothing_is_scheduled() -> None:
    async def main() -> int:
        return await asyncio.to_thread(lambda: 42)

    assert run_virtual(main()) == 42


def test_a_deadlock_raises_instead_of_hanging() -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()  # nothing will ever resolve it

    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(idle_wall_s=0.05)) as runner, \
            pytest.raises(RuntimeError, match="deadlocked"):
        runner.run(main())


def test_simulated_tokens_arrive_at_their_virtual_instants() -> None:
    """A streamed reply read through the transport: the first token after TTFT, then one
    every 1/tokens_per_s, stamped by the reader on the shared clock."""

    async def main() -> list[float]:
        clock = LoopClock(asyncio.get_running_loop())
        sim = Simulator([SimProviderSpec(name="p", ttft_s=0.5, tokens_per_s=10,
                                         output_tokens=5)], clock=clock)
        transport = StreamingASGITransport(sim.app)
        stamps: list[float] = []
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            t0 = clock.now()
            async with client.stream("POST", "/p/v1/chat/completions", json={
                    "model": "m", "stream": True,
                    "messages": [{"role": "user", "content": "hi"}]}) as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    if _has_text(line):
                        stamps.append(clock.now() - t0)
        return stamps

    stamps = run_virtual(main())
    assert stamps == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9], abs=1e-6)


def test_closing_early_tells_the_app_the_client_left() -> None:
    async def main() -> tuple[float, bool]:
        clock = LoopClock(asyncio.get_running_loop())
        sim = Simulator([SimProviderSpec(name="p", ttft_s=0.1, tokens_per_s=1,
                                         output_tokens=100)], clock=clock)
        transport = StreamingASGITransport(sim.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            t0 = clock.now()
            async with client.stream("POST", "/p/v1/chat/completions", json={
                    "model": "m", "stream": True,
                    "messages": [{"role": "user", "content": "hi"}]}) as response:
                async for line in response.aiter_lines():
                    if _has_text(line):
                        break
        counters = sim.counters("p")
        return clock.now() - t0, counters.disconnected == 1 and counters.completed == 0

    elapsed, idle = run_virtual(main())
    assert elapsed == pytest.approx(0.1, abs=1e-6)  # not the 100 s the whole reply takes
    assert idle
