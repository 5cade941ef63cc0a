"""Real-provider differences end to end: the openai SDK -> gateway -> simulated providers that
answer as Groq and Cerebras document (refused parameters, retired models, rate-limit headers,
the two 429 kinds)."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
import openai
import pytest

from tokenlane.clock import ManualClock
from tokenlane.config import parse_settings
from tokenlane.server import create_app
from tokenlane.sim import SimProviderSpec, Simulator

from ..harness import MASTER_KEY, SIM_KEY, Stack, gateway_config
from ..loopback import serve

MESSAGES = [{"role": "user", "content": "hi"}]
# `groq` is the cheaper: the price policy tries it first whenever it may serve.
PRICES = {"groq": (0.1, 0.1), "plain": (1.0, 1.0)}


def spec(name: str, **kw: Any) -> SimProviderSpec:
    return SimProviderSpec(name=name, ttft_s=0, time_scale=0, output_tokens=8, **kw)


@contextmanager
def quirks(specs: list[SimProviderSpec], deployment: Mapping[str, Mapping[str, Any]],
           clock: ManualClock | None = None) -> Iterator[Stack]:
    """Gateway over `specs` (model `m`, price policy), `deployment[name]` merged into that
    provider's deployment settings (capabilities, unsupported, ...)."""
    specs = [s.model_copy(update={"api_key": SIM_KEY}) for s in specs]
    sim = Simulator(specs, clock=clock)
    with ExitStack() as stack:
        sim_url = stack.enter_context(serve(sim.app))
        names = [s.name for s in specs]
        data = gateway_config(sim_url, {"m": names}, prices=PRICES,
                              model_extra={"policy": "price"},
                              extra={"routing": {"exploration_share": 0.0,
                                                 "rechecks": {"idle_s": 3600}}})
        for dep in data["models"]["m"]["deployments"]:
            dep.update(deployment.get(dep["provider"], {}))
        settings = parse_settings(data)
        app = create_app(settings, env={"TL_TEST_KEYS": MASTER_KEY, "SIM_KEY": SIM_KEY},
                         clock=clock, rng=random.Random(1))
        yield Stack(sim, sim_url, stack.enter_context(serve(app)), app, settings)


def route(raw: Any) -> dict[str, str]:
    return dict(p.split("=", 1) for p in raw.headers["x-tokenlane-route"].split("; "))


GROQ_CAPS = {"capabilities": ["tools", "tool_choice", "json_object", "json_schema", "seed"]}


def test_a_feature_goes_to_deployments_that_support_it_first() -> None:
    with quirks([spec("groq", rejects=["logprobs"]), spec("plain")], {"groq": GROQ_CAPS}) as s:
        client = s.openai()
        raw = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
        assert raw.headers["x-tokenlane-deployment"] == "groq/groq-m"  # cheaper
        raw = client.chat.completions.with_raw_response.create(
            model="m", messages=MESSAGES, logprobs=True)
        assert raw.headers["x-tokenlane-deployment"] == "plain/plain-m"
        assert route(raw)["demoted"] == "groq/groq-m does not support logprobs"
        assert raw.parse().choices[0].logprobs is not None
        assert s.sim.counters("groq").requests == 1  # never sent what it would refuse


def test_require_parameters_excludes_and_no_one_left_is_a_400() -> None:
    with quirks([spec("groq"), spec("plain")], {"groq": GROQ_CAPS}) as s:
        client = s.openai()
        raw = client.chat.completions.with_raw_response.create(
            model="m", messages=MESSAGES, logprobs=True,
            extra_body={"provider": {"require_parameters": True}})
        assert raw.headers["x-tokenlane-deployment"] == "plain/plain-m"
        assert route(raw)["excluded"] == ("groq/groq-m does not support logprobs "
                                          "(require_parameters)")
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(
                model="m", messages=MESSAGES, logprobs=True,
                extra_body={"provider": {"require_parameters": True, "only": ["groq"]}})
        assert err.value.code == "unsupported_parameter" and err.value.param == "logprobs"


def test_drop_rule_sends_without_the_parameter_and_says_so() -> None:
    rules = {**GROQ_CAPS, "unsupported": "drop", "limit_param": "max_completion_tokens",
             "max_output_tokens": 3}
    with quirks([spec("groq", rejects=["logprobs"]), spec("plain")], {"groq": rules}) as s:
        raw = s.openai().chat.completions.with_raw_response.create(
            model="m", messages=MESSAGES, logprobs=True, top_logprobs=2, max_tokens=50)
        assert raw.headers["x-tokenlane-deployment"] == "groq/groq-m"
        assert route(raw)["dropped"] == "groq/groq-m logprobs"
        reply = raw.parse()
        assert reply.choices[0].logprobs is None  # it never saw the parameter
        assert reply.usage is not None and reply.usage.completion_tokens == 3  # capped


def test_an_unsupported_parameter_400_fails_over() -> None:
    # Capabilities unknown (no preset, none configured): the provider's own 400 says it.
    with quirks([spec("groq", rejects=["n"]), spec("plain")], {}) as s:
        raw = s.openai().chat.completions.with_raw_response.create(
            model="m", messages=MESSAGES, n=2)
        assert raw.headers["x-tokenlane-deployment"] == "plain/plain-m"
        assert len(raw.parse().choices) == 2
    with quirks([spec("groq", rejects=["n"]), spec("plain")], {}) as s:
        with pytest.raises(openai.BadRequestError):  # invalid messages: the client's fault
            s.openai().chat.completions.create(model="m", messages=[])
        assert s.sim.counters("plain").requests == 0


def test_a_retired_model_fails_over_and_stays_last() -> None:
    with quirks([spec("groq", models=["newer"]), spec("plain")], {}) as s:
        client = s.openai()
        raw = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
        assert raw.headers["x-tokenlane-deployment"] == "plain/plain-m"
        raw = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
        assert raw.headers["x-tokenlane-deployment"] == "plain/plain-m"
        assert route(raw)["demoted"].startswith("groq/groq-m model unavailable upstream (404)")
        assert s.sim.counters("groq").requests == 1
        metrics = httpx.get(f"{s.url}/metrics",
                            headers={"authorization": f"Bearer {MASTER_KEY}"}).text
        assert ('tokenlane_upstream_refusals_total{deployment="groq/groq-m",'
                'kind="model_unavailable"} 1.0') in metrics


def test_headroom_routes_away_before_a_429_and_back_after_the_reset() -> None:
    clock = ManualClock(lockstep=True)
    cerebras = spec("groq", rate_limit_headers="cerebras", tokens_per_minute=200)
    with quirks([cerebras, spec("plain")], {}, clock=clock) as s:
        client = s.openai()

        def ask() -> Any:
            return client.chat.completions.with_raw_response.create(
                model="m", messages=MESSAGES, max_completion_tokens=80)

        client.chat.completions.create(model="m", messages=MESSAGES,  # measured: not cold
                                       extra_body={"provider": {"only": ["plain"]}})
        assert ask().headers["x-tokenlane-deployment"] == "groq/groq-m"  # ~120 left
        assert ask().headers["x-tokenlane-deployment"] == "groq/groq-m"  # ~30 left
        raw = ask()
        assert raw.headers["x-tokenlane-deployment"] == "plain/plain-m"
        assert "no headroom: tokens/minute" in route(raw)["demoted"]
        assert s.sim.counters("groq").errors == 0  # went elsewhere before any 429
        clock.advance(60)
        assert ask().headers["x-tokenlane-deployment"] == "groq/groq-m"


@pytest.mark.parametrize(("kind", "stays_away"), [("capacity", 1.0), ("quota", 30.0)])
def test_cerebras_429_kinds(kind: str, stays_away: float) -> None:
    clock = ManualClock(lockstep=True)
    busy = spec("groq", rate_limit_rate=1, rate_limit_kind=kind, retry_after_s=30,
                rate_limit_headers="cerebras", requests_per_minute=100)
    with quirks([busy, spec("plain")], {}, clock=clock) as s:
        raw = s.openai().chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
        assert raw.headers["x-tokenlane-deployment"] == "plain/plain-m"  # failed over now
        # capacity: back soon; quota: until its reset (here the Retry-After, 30 s)
        assert s.engine.circuits.retry_in("groq/groq-m") == pytest.approx(stays_away)


def test_provider_reported_queue_time_is_kept_in_stats() -> None:
    clock = ManualClock(lockstep=True)
    cerebras = SimProviderSpec(name="groq", ttft_s=0.5, tokens_per_s=100, output_tokens=8,
                               time_info=True, queue_s=0.25)
    with quirks([cerebras, spec("plain")], {}, clock=clock) as s:
        for stream in (False, True):
            s.openai().chat.completions.create(
                model="m", messages=MESSAGES, stream=stream,
                extra_body={"provider": {"only": ["groq"]}})
        rows = {d["deployment"]: d for d in s.engine.stats_report()["models"]["m"]["deployments"]}
        assert rows["groq/groq-m"]["queue_s"] == pytest.approx(0.25)  # its own signal
        assert rows["groq/groq-m"]["ttft_p50_s"] == pytest.approx(0.5, rel=0.05)
        assert rows["plain/plain-m"]["queue_s"] is None  # no provider report, no number
