"""OpenRouter compatibility end to end: `models` fallbacks, per-model fallback_models, the
`provider` fields we accept, forwarding them to an OpenRouter upstream, Azure's and Gemini's
presets, and /v1/models' `created` -- through the openai SDK and real loopback HTTP."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import openai
import orjson
import pytest

from tokenlane.config import parse_settings
from tokenlane.server import create_app
from tokenlane.sim import SimProviderSpec, Simulator
from tokenlane.yamlfile import ConfigError

from ..harness import MASTER_KEY, SIM_KEY, gateway_config
from ..loopback import http_app, serve

MESSAGES = [{"role": "user", "content": "hi"}]
CHUNK = (b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"up",'
         b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n'
         b"data: [DONE]\n\n")


class Recorder:
    """An upstream that records what it is sent (path, query, headers, body) and says hi."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def handle(self, scope: dict[str, Any], body: bytes, send: Any) -> None:
        self.seen.append({"path": scope["path"], "query": scope["query_string"].decode(),
                          "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
                          "body": orjson.loads(body)})
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": CHUNK})


@contextmanager
def gateway(data: dict[str, Any], env: dict[str, str]) -> Iterator[Any]:
    app = create_app(parse_settings(data), env={"TL_TEST_KEYS": MASTER_KEY, **env},
                     rng=random.Random(1))
    with serve(app) as url:
        yield openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0)


def recorded(preset: str, key_env: str, **provider: Any) -> dict[str, Any]:
    return {"server": {"auth": {"master_keys_env": "TL_TEST_KEYS"}},
            "providers": {"up": {"preset": preset, **provider}},
            "models": {"m": {"created": 1754352000, "deployments": [
                {"provider": "up", "model": "vendor/m", "price": {"input": 1, "output": 1}}]}},
            "routing": {"probes": {"enabled": False}}}


@pytest.fixture
def upstream() -> Iterator[tuple[Recorder, str]]:
    recorder = Recorder()
    with serve(http_app(recorder.handle)) as url:
        yield recorder, url


def test_openrouter_fields_are_accepted_and_forwarded_to_openrouter(upstream) -> None:
    recorder, url = upstream
    data = recorded("openrouter", "OPENROUTER_API_KEY", base_url=f"{url}/api/v1")
    fields = {"order": ["up"], "require_parameters": True, "data_collection": "deny",
              "zdr": True, "quantizations": ["fp8"], "sort": {"by": "price"},
              "max_price": {"prompt": 5, "request": 0.01}, "value_of_time": 1.0}
    with gateway(data, {"OPENROUTER_API_KEY": "sk-or"}) as client:
        reply = client.chat.completions.create(model="m", messages=MESSAGES,
                                               extra_body={"provider": fields})
        assert reply.choices[0].message.content == "hi"
        models = client.models.list().data
    sent = recorder.seen[0]["body"]["provider"]
    # OpenRouter's own fields reach it; our additions (value_of_time) do not.
    assert sent == {"order": ["up"], "require_parameters": True, "data_collection": "deny",
                    "zdr": True, "quantizations": ["fp8"], "sort": "price",
                    "max_price": {"prompt": 5.0, "request": 0.01}}
    assert [(m.id, m.created) for m in models] == [("m", 1754352000)]


def test_other_upstreams_never_see_the_provider_object(upstream) -> None:
    recorder, url = upstream
    with gateway(recorded("together", "TOGETHER_API_KEY", base_url=f"{url}/v1"),
                 {"TOGETHER_API_KEY": "k"}) as client:
        client.chat.completions.create(model="m", messages=MESSAGES, max_completion_tokens=9,
                                       extra_body={"provider": {"zdr": True},
                                                   "models": ["m"]})
    body = recorder.seen[0]["body"]
    assert "provider" not in body and "models" not in body
    assert body["max_tokens"] == 9 and "max_completion_tokens" not in body  # Together's name


def test_azure_preset_sends_api_key_header_and_api_version(upstream) -> None:
    recorder, url = upstream
    data = recorded("azure-openai", "AZURE_OPENAI_API_KEY",
                    base_url=f"{url}/openai/deployments/gpt")
    with gateway(data, {"AZURE_OPENAI_API_KEY": "az-secret"}) as client:
        client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=5)
    seen = recorder.seen[0]
    assert seen["path"] == "/openai/deployments/gpt/chat/completions"
    assert seen["query"] == "api-version=2024-10-21"
    assert seen["headers"]["api-key"] == "az-secret" and "authorization" not in seen["headers"]
    assert seen["body"]["max_completion_tokens"] == 5


def test_azure_preset_needs_a_base_url_and_gemini_resolves() -> None:
    with pytest.raises(ConfigError, match="needs 'base_url'"):
        parse_settings(recorded("azure-openai", "AZURE_OPENAI_API_KEY"))
    catalog = parse_settings(recorded("gemini", "GEMINI_API_KEY")).resolve(
        {"GEMINI_API_KEY": "g"})
    assert catalog.providers["up"].base_url.endswith("/v1beta/openai")


@contextmanager
def two_models(fallback_models: list[str]) -> Iterator[tuple[Any, Simulator]]:
    specs = [SimProviderSpec(name=n, ttft_s=0, time_scale=0, output_tokens=4, api_key=SIM_KEY,
                             **kw) for n, kw in (("down", {"fault": "http_503"}), ("up", {}))]
    sim = Simulator(specs)
    with ExitStack() as stack:
        sim_url = stack.enter_context(serve(sim.app))
        data = gateway_config(sim_url, {"big": ["down"], "small": ["up"]})
        data["models"]["big"]["fallback_models"] = fallback_models
        app = create_app(parse_settings(data), env={"TL_TEST_KEYS": MASTER_KEY,
                                                    "SIM_KEY": SIM_KEY})
        url = stack.enter_context(serve(app))
        yield openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0), sim


def test_models_list_falls_back_to_the_next_model() -> None:
    with two_models([]) as (client, sim):
        raw = client.chat.completions.with_raw_response.create(
            model="big", messages=MESSAGES, extra_body={"models": ["big", "small"]})
        assert raw.headers["x-tokenlane-deployment"] == "up/up-small"
        assert sim.counters("down").requests == 1
        with pytest.raises(openai.APIStatusError):  # no fallback asked for: the 503s show
            client.chat.completions.create(model="big", messages=MESSAGES)
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="big", messages=MESSAGES,
                                           extra_body={"models": "small"})


def test_configured_fallback_models() -> None:
    with two_models(["small"]) as (client, _):
        raw = client.chat.completions.with_raw_response.create(model="big", messages=MESSAGES)
        assert raw.headers["x-tokenlane-deployment"] == "up/up-small"
    with pytest.raises(ConfigError, match="unknown model"), two_models(["nope"]):
        pass
