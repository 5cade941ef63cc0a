"""Redis taken away mid-traffic (killed, or frozen so that every call times out): not one
request fails, every replica goes local (and says so on /metrics), and once Redis is back
each replica shares again, including what it measured meanwhile."""

from __future__ import annotations

import threading
from typing import Self

import openai
import pytest

from tokenlane.sim import SimProviderSpec

from ..redis_server import RedisServer
from .fleet import Fleet, fleet, wait_for

HI = [{"role": "user", "content": "hi"}]
SPECS = [SimProviderSpec(name=name, ttft_s=0.0, tokens_per_s=5000, output_tokens=3)
         for name in ("a", "b", "c")]


class Traffic:
    """One thread per replica sending requests back to back until stopped."""

    def __init__(self, f: Fleet) -> None:
        self.answered = [0] * len(f.replicas)
        self.failed: list[BaseException] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, args=(i, r.openai()))
                         for i, r in enumerate(f.replicas)]

    def __enter__(self) -> Self:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def _send(self, i: int, client: openai.OpenAI) -> None:
        while not self._stop.is_set():
            try:
                client.chat.completions.create(model="m", messages=HI)
                self.answered[i] += 1
            except openai.APIError as exc:
                self.failed.append(exc)

    def wait_answered(self, more: int) -> None:
        """Until every replica answered `more` requests past this point."""
        floor = list(self.answered)
        wait_for(f"{more} more answers on every replica",
                 lambda: all(n >= f + more for n, f in zip(self.answered, floor, strict=True)),
                 timeout_s=60)


def samples(f: Fleet, model: str, provider: str) -> list[int]:
    return [r.estimate(model, provider)["samples"] for r in f.replicas]


@pytest.mark.parametrize("outage", ["killed", "frozen"])
def test_redis_away_mid_traffic_fails_nothing_and_sharing_resumes(
        redis_server: RedisServer, outage: str) -> None:
    # Traffic goes to m; n (provider c) is sent requests by replica A alone, to follow
    # exactly what reaches the others.
    with fleet(SPECS, {"m": ["a", "b"], "n": ["c"]}, redis_server.url,
               state={"timeout_s": 0.25}) as f:
        a = f.replicas[0].openai()
        with Traffic(f) as traffic:
            traffic.wait_answered(5)
            assert all(r.metric("tokenlane_state_backend_up") == 1 for r in f.replicas)
            if outage == "killed":
                redis_server.kill()
            else:
                redis_server.pause()
            wait_for("every replica local", lambda: all(
                r.metric("tokenlane_state_backend_up") == 0 for r in f.replicas))
            traffic.wait_answered(20)  # local mode serves like any other
            for _ in range(4):  # measured by A while the others cannot hear of it
                a.chat.completions.create(model="n", messages=HI)
            assert samples(f, "n", "c") == [4, 0, 0]
            if outage == "killed":
                redis_server.start()
            else:
                redis_server.resume()
            wait_for("every replica sharing again", lambda: all(
                r.metric("tokenlane_state_backend_up") == 1 for r in f.replicas))
            traffic.wait_answered(5)
        assert traffic.failed == []
        assert all(r.metric("tokenlane_state_backend_errors_total") >= 1 for r in f.replicas)
        # What A measured while Redis was away reaches the others once it is back, once each
        # (a batch whose publication timed out yet landed is not counted twice).
        wait_for("A's backlog everywhere", lambda: samples(f, "n", "c") == [4, 4, 4])
        for _ in range(3):
            a.chat.completions.create(model="n", messages=HI)
        wait_for("shared again", lambda: samples(f, "n", "c") == [7, 7, 7])
