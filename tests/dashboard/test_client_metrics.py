"""Client-facing metrics: one sample per client request, as the client saw it, with bounded
labels (model from config, key ids capped), scraped from /metrics after openai SDK traffic."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tokenlane.metrics import Metrics
from tokenlane.server.served import ServedRequest
from tokenlane.sim import SimProviderSpec
from tokenlane.stats.snapshot import Snapshot

from ..harness import MASTER_KEY, Stack, stack

SIM = SimProviderSpec(name="fast", ttft_s=0.01, tokens_per_s=2000, output_tokens=12,
                      time_scale=0)


@pytest.fixture
def gw() -> Iterator[Stack]:
    with stack([SIM], {"llama": ["fast"]}) as s:
        yield s


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_requests_ttft_duration_tokens_cost(gw: Stack) -> None:
    client = gw.openai()
    for i in range(4):
        messages = [{"role": "user", "content": f"hi {i}"}]
        if i % 2:
            client.chat.completions.create(model="llama", messages=messages)
        else:
            list(client.chat.completions.create(model="llama", messages=messages, stream=True))
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="made-up-" + "x" * 50,
                                       messages=[{"role": "user", "content": "hi"}])
    text = httpx.get(f"{gw.url}/metrics",
                     headers={"authorization": f"Bearer {MASTER_KEY}"}).text
    found = samples(text)
    assert value(found, "tokenlane_client_requests_total", model="llama", status="200",
                 key="master") == 4
    # A name a client made up is not a label value: cardinality stays the config's.
    assert value(found, "tokenlane_client_requests_total", model="unknown", status="404",
                 key="master") == 1
    assert "made-up" not in text
    assert value(found, "tokenlane_client_ttft_seconds_count", model="llama") == 2  # streamed
    assert value(found, "tokenlane_client_request_duration_seconds_count", model="llama") == 4
    assert value(found, "tokenlane_client_request_duration_seconds_count", model="unknown") == 1
    assert value(found, "tokenlane_client_tokens_total", model="llama", type="output") == 48
    assert value(found, "tokenlane_client_tokens_total", model="llama", type="input") > 0
    # Every attempt succeeded first time, so the client's spend is the deployment's.
    spent = value(found, "tokenlane_client_cost_usd_total", model="llama", key="master")
    assert spent > 0
    assert spent == pytest.approx(value(found, "tokenlane_cost_usd_total",
                                        deployment="fast/fast-llama"))


def test_key_labels_are_capped() -> None:
    metrics = Metrics(lambda: Snapshot(at=0.0))
    for i in range(500):
        metrics.served(ServedRequest(at=0.0, surface="/v1/chat/completions", model="m",
                                     key=f"key{i}", status=200, duration_s=0.1, ttft_s=None,
                                     input_tokens=1, output_tokens=1, cost=0.01,
                                     decision=None))
    found = samples(metrics.render().decode())
    keys = {dict(labels)["key"] for name, labels in found
            if name == "tokenlane_client_requests_total"}
    assert len(keys) == 201 and "other" in keys and "key0" in keys and "key499" not in keys
    assert value(found, "tokenlane_client_requests_total", model="m", status="200",
                 key="other") == 300
