"""Routing on measurements, end to end: simulated providers of known speed and price, the real
gateway, the official openai SDK. A lockstep ManualClock makes every simulated second exact and
free, so estimates can be compared with the simulator's truth."""

from __future__ import annotations

import httpx
import openai
import pytest

from tokenlane.cli import main as cli_main
from tokenlane.clock import ManualClock
from tokenlane.sim import SimProviderSpec

from ..harness import MASTER_KEY, stack

MESSAGES = [{"role": "user", "content": "Hello there"}]


def spec(name: str, ttft: float, tps: float, **kw: object) -> SimProviderSpec:
    return SimProviderSpec(name=name, ttft_s=ttft, tokens_per_s=tps, output_tokens=20, **kw)


def chosen(raw) -> str:  # type: ignore[no-untyped-def]
    return raw.headers["x-tokenlane-deployment"].split("/")[0]


def test_estimates_converge_to_the_simulated_truth() -> None:
    truth = {"quick": (0.3, 400.0, 0.0), "laggy": (0.8, 80.0, 0.5)}  # ttft, tps, +ttft per 1k
    specs = [spec(n, t, s, jitter=0.1, ttft_per_1k_prompt_tokens_s=g, seed=i)
             for i, (n, (t, s, g)) in enumerate(truth.items())]
    with stack(specs, {"m": list(truth)}, clock=ManualClock(lockstep=True)) as s:
        client = s.openai()
        for name in truth:
            for i in range(24):
                # Short prompts mostly; a spread of long ones teaches TTFT growth.
                content = "word " * (i % 4 * 1000 if i % 2 else 10)
                client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": content}],
                    extra_body={"provider": {"order": [name], "allow_fallbacks": False}})
        report = httpx.get(f"{s.url}/v1/router/stats",
                           headers={"authorization": f"Bearer {MASTER_KEY}"}).json()
    estimates = {d["provider"]: d for d in report["models"]["m"]["deployments"]}
    for name, (ttft, tps, growth) in truth.items():
        e = estimates[name]
        assert e["samples"] == 24 and not e["stale"]
        # Jitter is ±10% per delay; medians of 24 land well inside ±10% of the truth.
        assert e["decode_tps_p50"] == pytest.approx(tps, rel=0.10)
        assert e["ttft_per_1k_prompt_s"] == pytest.approx(growth, abs=0.1)
        at_mean = ttft + growth * e["ttft_mean_prompt_tokens"] / 1000
        assert e["ttft_p50_s"] == pytest.approx(at_mean, rel=0.25)
        assert e["error_rate"] == 0
    # Effective price from actual usage: output price per 1M plus the prompt's share.
    assert estimates["quick"]["usd_per_m_output"] > estimates["laggy"]["usd_per_m_output"]


@pytest.fixture(scope="module")
def measured():
    """fast: quick decode, dear; snappy: first token soonest; cheap: slow and cheap."""
    specs = [spec("fast", 0.5, 1000), spec("snappy", 0.05, 100), spec("cheap", 1.0, 30)]
    prices = {"fast": (2.0, 4.0), "snappy": (1.0, 2.0), "cheap": (0.1, 0.2)}
    with stack(specs, {"m": ["fast", "snappy", "cheap"]}, prices=prices,
               clock=ManualClock(lockstep=True),
               extra={"routing": {"exploration_share": 0.0}}) as s:
        client = s.openai()
        for name in prices:
            for _ in range(3):
                client.chat.completions.create(
                    model="m", messages=MESSAGES,
                    extra_body={"provider": {"order": [name], "allow_fallbacks": False}})
        yield s


@pytest.mark.parametrize(("options", "expected"), [
    ({"sort": "throughput"}, "fast"),
    ({"sort": "latency"}, "snappy"),
    ({"sort": "price"}, "cheap"),
    ({"sort": "balanced", "value_of_time": 0.01}, "cheap"),
    ({"sort": "balanced", "value_of_time": 1000}, "fast"),
    ({"sort": "price", "require": {"max_latency": 0.6}}, "snappy"),
    ({"sort": "price", "preferred_min_throughput": 500}, "fast"),
    ({"order": ["snappy", "fast"]}, "snappy"),
    ({"ignore": ["fast", "snappy"]}, "cheap"),
])
def test_sdk_routing_options_choose_the_deployment(measured, options, expected) -> None:
    raw = measured.openai().chat.completions.with_raw_response.create(
        model="m", messages=MESSAGES, extra_body={"provider": options})
    assert chosen(raw) == expected
    route = dict(part.split("=", 1) for part in raw.headers["x-tokenlane-route"].split("; "))
    assert route["chosen"] == f"{expected}/{expected}-m"
    assert route["candidates"].startswith(f"{expected}/{expected}-m ttft=")


def test_suffixes_and_header_options(measured) -> None:
    client = measured.openai()
    assert chosen(client.chat.completions.with_raw_response.create(
        model="m:nitro", messages=MESSAGES)) == "fast"
    raw = client.chat.completions.with_raw_response.create(model="m:floor", messages=MESSAGES)
    assert chosen(raw) == "cheap" and raw.parse().model == "m"
    assert chosen(client.chat.completions.with_raw_response.create(
        model="m", messages=MESSAGES,
        extra_headers={"x-tokenlane-provider": '{"sort": "latency"}'})) == "snappy"


def test_constraints_nobody_meets_are_a_clear_503(measured) -> None:
    with pytest.raises(openai.InternalServerError) as err:
        measured.openai().chat.completions.create(
            model="m", messages=MESSAGES,
            extra_body={"provider": {"require": {"min_throughput": 5000}}})
    assert err.value.status_code == 503
    assert "routing constraints" in err.value.response.json()["error"]["message"]


def test_bad_routing_options_are_400_naming_the_field(measured) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        measured.openai().chat.completions.create(
            model="m", messages=MESSAGES, extra_body={"provider": {"max_price": {"prompt": -1}}})
    assert err.value.response.json()["error"]["param"] == "provider.max_price.prompt"


def test_router_follows_a_provider_that_got_faster() -> None:
    clock = ManualClock(lockstep=True)
    specs = [spec("a", 0.2, 300), spec("b", 0.2, 100)]
    with stack(specs, {"m": ["a", "b"]}, clock=clock, seed=3,
               extra={"routing": {"exploration_share": 0.2, "half_life_s": 10,
                                  "stale_after_s": 30}},
               model_extra={"policy": "throughput"}) as s:
        client = s.openai()

        def run(n: int) -> list[str]:
            return [chosen(client.chat.completions.with_raw_response.create(
                model="m", messages=MESSAGES)) for _ in range(n)]

        before = run(30)
        assert before.count("a") >= 20  # a is faster; b only gets exploration
        s.sim.update("b", tokens_per_s=1000)
        after = run(60)
    first_b = after.index("b")
    assert first_b < 30, after
    # Within a bounded number of requests the router has moved: most of the last 20 go to b.
    assert after[-20:].count("b") >= 15, after


def test_stats_api_cli_table_and_metrics(measured, capsys) -> None:
    assert cli_main(["stats", "--url", measured.url, "--key", MASTER_KEY]) == 0
    table = capsys.readouterr().out
    assert "m  (policy: balanced)" in table
    assert all(f"{n}/{n}-m" in table for n in ("fast", "snappy", "cheap"))
    assert "fresh" in table
    metrics = httpx.get(f"{measured.url}/metrics",
                        headers={"authorization": f"Bearer {MASTER_KEY}"}).text
    assert 'tokenlane_requests_total{deployment="fast/fast-m",model="m",outcome="ok"}' in metrics
    assert "tokenlane_ttft_seconds_bucket" in metrics
    assert "tokenlane_time_per_output_token_seconds_bucket" in metrics
    assert 'tokenlane_output_tokens_total{deployment="cheap/cheap-m"}' in metrics
    assert "tokenlane_cost_usd_total" in metrics
    assert "tokenlane_gateway_overhead_seconds_count" in metrics
    line = next(x for x in metrics.splitlines() if x.startswith(
        'tokenlane_estimated_decode_tokens_per_second{deployment="fast/fast-m"}'))
    assert float(line.split()[-1]) == pytest.approx(1000, rel=0.01)
