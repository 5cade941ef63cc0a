"""A provider's connection pool never queues silently: a request that waits for a pooled
connection is measured, in `/metrics` and in `/v1/router/stats`, per provider."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tokenlane.providers.pool_waits import PoolWaits
from tokenlane.sim import SimProviderSpec, Simulator

from ..harness import MASTER_KEY, Stack, stack
from ..loopback import serve

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
MESSAGES = [{"role": "user", "content": "Hi"}]
# 10 tokens/s: a stream holds its connection as long as the test lets it.
SLOW = SimProviderSpec(name="narrow", ttft_s=0, tokens_per_s=10, output_tokens=1000)

def _one_connection(sim_url: str) -> dict[str, Any]:
    return {"providers": {"narrow": {"base_url": Simulator.base_url(sim_url, "narrow"),
                                     "max_connections": 1}}}


def _pool_metrics(s: Stack) -> dict[str, float]:
    text = httpx.get(f"{s.url}/metrics", headers=AUTH).text
    out = {}
    for family in text_string_to_metric_families(text):
        if family.name.startswith("tokenlane_upstream_pool_"):
            for sample in family.samples:
                if sample.labels.get("provider") == "narrow":
                    key = sample.name + (f"{{le={sample.labels['le']}}}"
                                         if "le" in sample.labels else "")
                    out[key] = sample.value
    return out


def test_a_second_stream_waiting_for_the_only_connection_is_measured() -> None:
    upstream = Simulator([SLOW])
    with serve(upstream.app) as sim_url, \
            stack([], {"m": ["narrow"]}, extra=_one_connection(sim_url)) as s:
        client = s.openai(timeout=60)
        first = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        chunks = iter(first)
        next(chunks)  # the first stream holds the pool's one connection
        assert _pool_metrics(s)["tokenlane_upstream_pool_wait_seconds_count"] == 0

        result: dict[str, Any] = {}

        def second() -> None:
            result["text"] = "".join(
                c.choices[0].delta.content or "" for c in client.chat.completions.create(
                    model="m", messages=MESSAGES, stream=True, max_tokens=3) if c.choices)

        waiting = threading.Thread(target=second)
        waiting.start()
        for _ in range(2000):  # bounded: until the gateway says the second one waits
            if _pool_metrics(s)["tokenlane_upstream_pool_waiting"] == 1:
                break
        else:
            raise AssertionError(f"the second stream never queued: {_pool_metrics(s)}")
        queued_by = time.monotonic()
        assert upstream.counters("narrow").requests == 1  # it has not reached the upstream
        for _ in range(100):  # the first stream goes on (10 tokens/s); the second waits
            next(chunks)
            if time.monotonic() - queued_by >= 0.3:
                break
        first.close()  # its connection goes back; the second gets it
        waited_at_least = time.monotonic() - queued_by
        waiting.join(timeout=30)
        assert result["text"]

        got = _pool_metrics(s)
        assert got["tokenlane_upstream_pool_waiting"] == 0
        assert got["tokenlane_upstream_pool_wait_seconds_count"] == 1
        # It queued before the test saw it and got its connection after the close.
        assert got["tokenlane_upstream_pool_wait_seconds_sum"] >= waited_at_least >= 0.3
        assert got["tokenlane_upstream_pool_wait_seconds_bucket{le=0.25}"] == 0
        assert got["tokenlane_upstream_pool_wait_seconds_bucket{le=+Inf}"] == 1
        stats = httpx.get(f"{s.url}/v1/router/stats", headers=AUTH).json()
        narrow = stats["providers"]["narrow"]
        assert narrow["pool_waits"] == 1 and narrow["pool_waiting"] == 0
        assert narrow["pool_wait_s_max"] == narrow["pool_wait_s_total"] >= waited_at_least


def test_pool_waits_count_and_bucket() -> None:
    waits = PoolWaits()
    for seconds in (0.0005, 0.3, 0.3, 100.0):
        waits.queued()
        waits.dequeued(seconds)
    waits.queued()
    buckets = dict(waits.cumulative_buckets())
    assert buckets[0.001] == 1 and buckets[0.25] == 1 and buckets[0.5] == 3
    assert buckets[30.0] == 3 and buckets[float("inf")] == 4
    assert waits.summary() == {"pool_waits": 4, "pool_waiting": 1,
                               "pool_wait_s_total": pytest.approx(100.6005),
                               "pool_wait_s_max": 100.0,
                               "pool_wait_s_mean": pytest.approx(100.6005 / 4)}
