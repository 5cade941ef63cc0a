"""Simulated time over real HTTP: a ManualClock measures the delays exactly, at no wall cost."""

from __future__ import annotations

import httpx
import pytest

from tokenlane.clock import ManualClock
from tokenlane.sim import SimConfigError, SimProviderSpec

from .support import HELLO, SdkClient, StartSim


def slow(**fields: object) -> SimProviderSpec:
    base: dict[str, object] = {
        "name": "slow",
        "ttft_s": 2.0,
        "tokens_per_s": 10.0,
        "output_tokens": 20,
    }
    return SimProviderSpec.model_validate({**base, **fields})


def test_non_stream_takes_ttft_plus_tokens_over_speed(start_sim: StartSim, sdk: SdkClient) -> None:
    clock = ManualClock()
    _, root = start_sim(slow(), clock=clock)
    before = clock.now()
    reply = sdk(root, "slow").chat.completions.create(model="m", messages=HELLO)
    assert reply.usage is not None and reply.usage.completion_tokens == 20
    assert clock.now() - before == pytest.approx(4.0)


def test_stream_takes_the_same_time(start_sim: StartSim, sdk: SdkClient) -> None:
    clock = ManualClock()
    _, root = start_sim(slow(), clock=clock)
    before = clock.now()
    chunks = list(sdk(root, "slow").chat.completions.create(model="m", messages=HELLO, stream=True))
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 20
    assert clock.now() - before == pytest.approx(4.0)


def test_prompt_length_and_time_scale(start_sim: StartSim, sdk: SdkClient) -> None:
    clock = ManualClock()
    _, root = start_sim(slow(ttft_per_1k_prompt_tokens_s=1.0, time_scale=0.5), clock=clock)
    long_prompt = [{"role": "user", "content": "x" * 3988}]  # 1000 prompt tokens
    before = clock.now()
    sdk(root, "slow").chat.completions.create(model="m", messages=long_prompt)  # type: ignore[arg-type]
    assert clock.now() - before == pytest.approx((2.0 + 1.0 + 2.0) * 0.5)


def test_update_changes_speed_mid_run(start_sim: StartSim, sdk: SdkClient) -> None:
    clock = ManualClock()
    sim, root = start_sim(slow(), clock=clock)
    api = sdk(root, "slow")
    start = clock.now()
    api.chat.completions.create(model="m", messages=HELLO)
    assert clock.now() - start == pytest.approx(4.0)

    sim.update("slow", tokens_per_s=40.0, ttft_s=0.5)
    start = clock.now()
    api.chat.completions.create(model="m", messages=HELLO)
    assert clock.now() - start == pytest.approx(0.5 + 20 / 40)
    assert sim.spec("slow").tokens_per_s == 40.0


def test_update_over_http_for_a_simulator_in_another_process(
    start_sim: StartSim, sdk: SdkClient
) -> None:
    clock = ManualClock()
    _sim, root = start_sim(slow(api_key="sk-secret"), clock=clock)
    changed = httpx.post(f"{root}/_sim/providers/slow", json={"ttft_s": 1.0})
    assert changed.status_code == 200
    assert changed.json()["ttft_s"] == 1.0
    listed = httpx.get(f"{root}/_sim/providers").json()["providers"]
    assert [p["name"] for p in listed] == ["slow"]
    assert "api_key" not in listed[0]  # keys are never echoed
    start = clock.now()
    sdk(root, "slow", api_key="sk-secret").chat.completions.create(model="m", messages=HELLO)
    assert clock.now() - start == pytest.approx(1.0 + 2.0)
    counters = httpx.get(f"{root}/_sim/counters").json()
    assert counters["slow"]["completed"] == 1 and counters["slow"]["in_flight"] == 0


def test_bad_updates_are_rejected(start_sim: StartSim) -> None:
    sim, root = start_sim(slow())
    with pytest.raises(SimConfigError, match="tokens_per_s"):
        sim.update("slow", tokens_per_s=0)
    with pytest.raises(SimConfigError, match="bogus: unknown key"):
        sim.update("slow", bogus=1)
    with pytest.raises(SimConfigError, match="name"):
        sim.update("slow", name="other")
    with pytest.raises(KeyError):
        sim.update("nobody", ttft_s=1)
    assert sim.spec("slow") == slow()
    rejected = httpx.post(f"{root}/_sim/providers/slow", json={"jitter": 5})
    assert rejected.status_code == 400
    assert "jitter" in rejected.json()["error"]["message"]
    assert httpx.post(f"{root}/_sim/providers/nobody", json={}).status_code == 404
    assert httpx.post(f"{root}/_sim/providers/slow", json=[1]).status_code == 400
