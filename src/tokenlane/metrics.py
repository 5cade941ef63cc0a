"""Prometheus metrics, one registry per app (no global state).

Label sets stay bounded: model and deployment come from config, outcome from a fixed list.
Estimates are read from the stats store at scrape time rather than pushed per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .providers.pool_waits import PoolWaits
from .routing.circuit import CircuitBoard
from .state.health import BackendHealth
from .stats.observation import Observation
from .stats.snapshot import Snapshot

if TYPE_CHECKING:
    from .keys.redis_limiter import LimitsHealth
    from .server.served import ServedRequest

__all__ = ["Metrics"]

_TTFT_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30)
_TPOT_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1)
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)
_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300)
# Virtual keys get a label each up to this many; later ones share "other".
_KEY_LABELS = 200


class Metrics:
    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("tokenlane_requests", "Upstream attempts by outcome",
                                ["model", "deployment", "outcome"], registry=r)
        self.ttft = Histogram("tokenlane_ttft_seconds", "Time to first token per attempt",
                              ["deployment"], buckets=_TTFT_BUCKETS, registry=r)
        self.tpot = Histogram("tokenlane_time_per_output_token_seconds",
                              "Decode time per output token after the first", ["deployment"],
                              buckets=_TPOT_BUCKETS, registry=r)
        self.input_tokens = Counter("tokenlane_input_tokens", "Prompt tokens sent",
                                    ["deployment"], registry=r)
        self.output_tokens = Counter("tokenlane_output_tokens", "Output tokens received",
                                     ["deployment"], registry=r)
        self.cost = Counter("tokenlane_cost_usd", "Spend at configured prices",
                            ["deployment"], registry=r)
        self.overhead = Histogram("tokenlane_gateway_overhead_seconds",
                                  "Gateway time from request received to upstream request sent",
                                  buckets=_OVERHEAD_BUCKETS, registry=r)
        self.hedges = Counter("tokenlane_hedges", "Hedged attempts started / won by the hedge",
                              ["event"], registry=r)
        self.refusals = Counter(
            "tokenlane_upstream_refusals",
            "Upstream answers saying this provider cannot serve the request (a retired model, "
            "an unsupported parameter); the request moved on", ["deployment", "kind"], registry=r)
        r.register(_EstimateCollector(snapshot))
        # Client-facing: one sample per client request, as the client saw it (server.served).
        self.client_requests = Counter(
            "tokenlane_client_requests", "Client requests by model, HTTP status and virtual key",
            ["model", "status", "key"], registry=r)
        self.client_ttft = Histogram(
            "tokenlane_client_ttft_seconds",
            "Request received to first token in hand, streamed answers", ["model"],
            buckets=_TTFT_BUCKETS, registry=r)
        self.client_duration = Histogram(
            "tokenlane_client_request_duration_seconds",
            "Request received to the end of the answer (or the error)", ["model"],
            buckets=_DURATION_BUCKETS, registry=r)
        self.client_tokens = Counter(
            "tokenlane_client_tokens", "Tokens of answered client requests (type: input|output)",
            ["model", "type"], registry=r)
        self.client_cost = Counter(
            "tokenlane_client_cost_usd", "Spend of answered client requests by model and key",
            ["model", "key"], registry=r)
        self._keys = _BoundedLabel(_KEY_LABELS)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def on_hedge(self, event: str) -> None:
        self._child(self.hedges, event).inc()

    def on_refusal(self, deployment: str, kind: str) -> None:
        self._child(self.refusals, deployment, kind).inc()

    def watch_circuits(self, board: CircuitBoard, deployments: list[str]) -> None:
        self.registry.register(_CircuitCollector(board, deployments))

    def watch_pool_waits(self, waits: Mapping[str, PoolWaits]) -> None:
        """Each provider's waits for a pooled connection (read at scrape time)."""
        self.registry.register(_PoolWaitCollector(waits))

    def watch_state_backend(self, backend: str, health: BackendHealth,
                            peers: Callable[[], int]) -> None:
        """The shared state backend's reachability, failed calls and the other replicas
        heard from (read at scrape time)."""
        self.registry.register(_StateBackendCollector(backend, health, peers))

    def watch_shared_limits(self, health: LimitsHealth) -> None:
        """Rate limits and budgets counted locally while Redis was out, and reconciled."""
        self.registry.register(_SharedLimitsCollector(health))

    def observe(self, obs: Observation) -> None:
        d = obs.deployment
        self._child(self.requests, obs.model, d, obs.outcome).inc()
        if obs.ttft_s is not None:
            self._child(self.ttft, d).observe(obs.ttft_s)
        if obs.decode_tps:
            self._child(self.tpot, d).observe(1.0 / obs.decode_tps)
        if obs.prompt_tokens:
            self._child(self.input_tokens, d).inc(obs.prompt_tokens)
        if obs.output_tokens:
            self._child(self.output_tokens, d).inc(obs.output_tokens)
        if obs.cost:
            self._child(self.cost, d).inc(obs.cost)

    def served(self, req: ServedRequest) -> None:
        key = self._keys.label(req.key)
        self._child(self.client_requests, req.model, str(req.status), key).inc()
        self._child(self.client_duration, req.model).observe(req.duration_s)
        if req.ttft_s is not None:
            self._child(self.client_ttft, req.model).observe(req.ttft_s)
        if req.input_tokens:
            self._child(self.client_tokens, req.model, "input").inc(req.input_tokens)
        if req.output_tokens:
            self._child(self.client_tokens, req.model, "output").inc(req.output_tokens)
        if req.cost:
            self._child(self.client_cost, req.model, key).inc(req.cost)

    def _child(self, metric: Counter | Histogram, *values: str) -> Any:
        """`metric.labels(*values)`, looked up once per label set: labels() validates and takes
        a lock on every call, a dozen times per request otherwise (label sets are bounded)."""
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _BoundedLabel:
    """A virtual key's id as a label value, for the first `limit` keys seen; "master" for no
    virtual key (a master key, or auth off); "other" past the limit, so a deployment with
    thousands of keys cannot grow the label set without end."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def label(self, key: str | None) -> str:
        if key is None:
            return "master"
        if key in self._seen:
            return key
        if len(self._seen) < self._limit:
            self._seen.add(key)
            return key
        return "other"


class _CircuitCollector(Collector):
    _STATES: ClassVar[dict[str, int]] = {"closed": 0, "half_open": 1, "open": 2}

    def __init__(self, board: CircuitBoard, deployments: list[str]) -> None:
        self._board = board
        self._deployments = deployments

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("tokenlane_circuit_state",
                                  "Circuit breaker: 0 closed, 1 half-open, 2 open",
                                  labels=["deployment"])
        for d in self._deployments:
            gauge.add_metric([d], self._STATES[self._board.state(d)])
        yield gauge


class _StateBackendCollector(Collector):
    def __init__(self, backend: str, health: BackendHealth, peers: Callable[[], int]) -> None:
        self._backend = backend
        self._health = health
        self._peers = peers

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("tokenlane_state_backend_up",
                               "1 while the shared state backend answers; 0: running local",
                               labels=["backend"])
        up.add_metric([self._backend], 1 if self._health.up else 0)
        errors = CounterMetricFamily("tokenlane_state_backend_errors",
                                     "Calls to the shared state backend that failed or timed out",
                                     labels=["backend"])
        errors.add_metric([self._backend], self._health.errors)
        peers = GaugeMetricFamily("tokenlane_state_peers",
                                  "Other replicas heard from through the state backend lately",
                                  labels=["backend"])
        peers.add_metric([self._backend], self._peers())
        yield up
        yield errors
        yield peers


class _SharedLimitsCollector(Collector):
    def __init__(self, health: LimitsHealth) -> None:
        self._health = health

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "tokenlane_limits_local_admissions",
            "Requests admitted on this replica's own counts of a key's limits: Redis was out "
            "of reach", value=self._health.local_admissions)
        yield CounterMetricFamily(
            "tokenlane_limits_reconciled_usd",
            "USD spent on local counts, since added to the fleet's budgets in Redis",
            value=self._health.reconciled_usd)


class _PoolWaitCollector(Collector):
    def __init__(self, waits: Mapping[str, PoolWaits]) -> None:
        self._waits = waits

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        seconds = HistogramMetricFamily(
            "tokenlane_upstream_pool_wait_seconds",
            "Time a request waited for a free connection in the provider's pool (only "
            "requests that found every connection busy)", labels=["provider"])
        waiting = GaugeMetricFamily("tokenlane_upstream_pool_waiting",
                                    "Requests waiting for a pooled connection now",
                                    labels=["provider"])
        for name, w in self._waits.items():
            buckets = [("+Inf" if b == float("inf") else repr(b), n)
                       for b, n in w.cumulative_buckets()]
            seconds.add_metric([name], buckets, w.sum_s)
            waiting.add_metric([name], w.waiting)
        yield seconds
        yield waiting


class _EstimateCollector(Collector):
    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        tps = GaugeMetricFamily("tokenlane_estimated_decode_tokens_per_second",
                                "Estimated decode speed (p50)", labels=["deployment"])
        ttft = GaugeMetricFamily("tokenlane_estimated_ttft_seconds",
                                 "Estimated time to first token (p50)", labels=["deployment"])
        for d, e in snap.estimates.items():
            if e.decode_tps_p50 is not None:
                tps.add_metric([d], e.decode_tps_p50)
            if e.ttft_p50_s is not None:
                ttft.add_metric([d], e.ttft_p50_s)
        yield tps
        yield ttft
