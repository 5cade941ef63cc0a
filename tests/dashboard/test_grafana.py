"""deploy/grafana/tokenlane.json stays on our metric names: every metric and label a panel
queries is one that a running gateway's /metrics serves (after openai SDK traffic)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tokenlane.sim import SimProviderSpec

from ..harness import MASTER_KEY, stack

BOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "tokenlane.json"
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"),
             "gauge": ("",), "unknown": ("",)}


def board() -> dict:
    return json.loads(BOARD.read_text(encoding="utf-8"))


def queries() -> list[str]:
    return [t["expr"] for p in board()["panels"] for t in p.get("targets", [])]


def served_metrics() -> dict[str, set[str]]:
    """Every series name a gateway serves -> the labels seen on it."""
    fast = SimProviderSpec(name="fast", time_scale=0, output_tokens=8)
    limited = SimProviderSpec(name="limited", time_scale=0, rate_limit_rate=1.0)
    with stack([fast, limited], {"m": ["limited", "fast"]}) as s:
        client = s.openai()
        for _ in range(3):
            list(client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True,
                extra_body={"provider": {"order": ["limited", "fast"]}}))
        text = httpx.get(f"{s.url}/metrics",
                         headers={"authorization": f"Bearer {MASTER_KEY}"}).text
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for suffix in _SUFFIXES.get(family.type, ("",)):
            names.setdefault(family.name + suffix, set())
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def test_the_board_is_well_formed() -> None:
    data = board()
    assert data["uid"] == "tokenlane" and data["title"] == "tokenlane"
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    for panel in data["panels"]:
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"
    titles = " ".join(p["title"] for p in data["panels"]).lower()
    for idea in ("decode", "ttft", "429", "circuit", "share", "spend", "requests", "tokens"):
        assert idea in titles, idea


def test_every_metric_and_label_queried_is_served() -> None:
    served = served_metrics()
    used = set()
    for expr in queries():
        metrics = set(re.findall(r"\btokenlane_[a-z0-9_]+", expr))
        assert metrics, expr
        used |= metrics
        for name in metrics:
            assert name in served, f"{name} (in {expr}) is not served by /metrics"
        labels = set()
        for group in re.findall(r"\b(?:by|ignoring|on)\s*\(([^)]*)\)", expr):
            labels |= {label.strip() for label in group.split(",") if label.strip()}
        for matchers in re.findall(r"\{([^}]*)\}", expr):
            labels |= set(re.findall(r"([a-z_]+)\s*(?:=~|!~|!=|=)", matchers))
        known = set().union(*(served[name] for name in metrics)) | {"le"}
        if all(served[name] for name in metrics):  # labels seen on every metric queried
            assert labels <= known, (expr, labels - known)
    # The client-facing metrics and the per-deployment ones are all on the board.
    for name in ("tokenlane_client_requests_total", "tokenlane_client_ttft_seconds_bucket",
                 "tokenlane_client_request_duration_seconds_bucket",
                 "tokenlane_client_tokens_total", "tokenlane_client_cost_usd_total",
                 "tokenlane_estimated_decode_tokens_per_second", "tokenlane_circuit_state"):
        assert name in used, name
