"""`Client` / `AsyncClient` against the real gateway on loopback (tests/harness.py), and the
openai-SDK helpers: the same answers, decisions and typed errors as the in-process Router."""

from __future__ import annotations

import socket
import zlib

import httpx
import openai
import pytest

from tokenlane import (
    AsyncClient,
    AsyncStream,
    AuthenticationFailed,
    ChatCompletion,
    Client,
    GatewayUnreachable,
    InvalidRequest,
    ModelNotFound,
    NoDeploymentAvailable,
    RoutingOptions,
    Stream,
    UpstreamRejected,
    decision_from,
    error_from,
    openai_extra,
)

from ..contract import validate_chat_chunk, validate_chat_completion
from ..harness import MASTER_KEY, stack
from ..loopback import http_app, serve
from .support import MESSAGES, MODELS, SPECS, N


@pytest.fixture(scope="module")
def gw():
    with stack(SPECS, MODELS, model_extra={"policy": "order"}) as s:
        yield s


@pytest.fixture
def client(gw):
    with Client(gw.url, MASTER_KEY) as c:
        yield c


def test_chat_with_decision_from_the_header(client) -> None:
    reply = client.chat(model="m", messages=MESSAGES, temperature=0)
    assert isinstance(reply, ChatCompletion)
    assert reply.text and reply.usage.completion_tokens == N
    assert reply.deployment == reply.decision.chosen == "fast/fast-m"
    assert reply.decision.policy == "order" and reply.decision.why == "policy"
    assert [c.deployment for c in reply.decision.candidates] == ["fast/fast-m", "slow/slow-m"]
    for candidate in reply.decision.candidates:
        assert None not in (candidate.ttft_s, candidate.decode_tps, candidate.cost_usd)
    assert reply.observation is None  # measured by the gateway, not reported per response
    validate_chat_completion(reply.raw)


def test_routing_options_are_sent_as_the_provider_object(client) -> None:
    typed = client.chat(model="m", messages=MESSAGES, provider=RoutingOptions(only=["slow"]))
    assert typed.deployment == "slow/slow-m"
    as_dict = client.chat(model="m", messages=MESSAGES, provider={"order": ["slow"]})
    assert as_dict.decision.chosen == "slow/slow-m"


def test_stream(client) -> None:
    with client.chat(model="m", messages=MESSAGES, stream=True,
                     stream_options={"include_usage": True}, max_tokens=5) as stream:
        assert isinstance(stream, Stream) and stream.decision.chosen == "fast/fast-m"
        chunks = list(stream)
    for chunk in chunks:
        validate_chat_chunk(chunk.raw)
    assert sum(1 for c in chunks if c.text) == 5
    assert chunks[-1].usage.completion_tokens == 5 and stream.closed


def test_stats_and_models(client) -> None:
    client.chat(model="m", messages=MESSAGES, provider={"only": ["fast"]})
    stats = client.stats()
    assert stats.deployment("fast/fast-m").samples >= 1
    assert stats.models["m"].policy == "order"
    assert client.models() == list(MODELS)


def test_base_url_may_end_in_v1(gw) -> None:
    with Client(f"{gw.url}/v1/", MASTER_KEY) as c:
        assert c.models() == list(MODELS)


async def test_async_client(gw) -> None:
    async with AsyncClient(gw.url, MASTER_KEY) as client:
        reply = await client.chat(model="m", messages=MESSAGES, provider={"only": ["slow"]})
        assert reply.deployment == "slow/slow-m"
        stream = await client.chat(model="m", messages=MESSAGES, stream=True)
        assert isinstance(stream, AsyncStream) and stream.deployment == "fast/fast-m"
        async with stream:
            text = [c.text async for c in stream]
        assert len([t for t in text if t]) == N
        assert (await client.stats()).deployment("slow/slow-m").samples >= 1
        assert await client.models() == list(MODELS)


def test_request_errors(client) -> None:
    with pytest.raises(ModelNotFound) as missing:
        client.chat(model="nope", messages=MESSAGES)
    assert (missing.value.status, missing.value.param) == (404, "model")
    with pytest.raises(InvalidRequest) as bad:
        client.chat(model="m", messages=MESSAGES, provider={"sortt": "x"})
    assert bad.value.param == "provider.sortt" and bad.value.code == "invalid_routing_option"


def test_client_lifetime(gw) -> None:
    with httpx.Client() as http:
        with Client(gw.url, MASTER_KEY, http_client=http) as c:
            assert c.models() == list(MODELS)
        assert not http.is_closed  # brought in: the caller's to close
    c = Client(gw.url, MASTER_KEY)
    c.close()
    c.close()  # idempotent
    with pytest.raises(RuntimeError):
        c.models()


async def test_async_client_lifetime(gw) -> None:
    async with httpx.AsyncClient() as http:
        async with AsyncClient(gw.url, MASTER_KEY, http_client=http) as c:
            assert await c.models() == list(MODELS)
        assert not http.is_closed
    c = AsyncClient(gw.url, MASTER_KEY)
    await c.aclose()
    await c.aclose()
    with pytest.raises(RuntimeError):
        await c.models()


def test_auth_and_unreachable(gw) -> None:
    with Client(gw.url, "wrong-key") as c, pytest.raises(AuthenticationFailed) as err:
        c.models()
    assert err.value.status == 401
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (Client(f"http://127.0.0.1:{port}", timeout=2) as c,
          pytest.raises(GatewayUnreachable) as down):
        c.chat(model="m", messages=MESSAGES)
    assert isinstance(down.value.__cause__, httpx.ConnectError)


def test_closing_a_stream_early_releases_the_upstream(gw, client) -> None:
    before = gw.sim.counters("trickle").disconnected
    with client.chat(model="trickle", messages=MESSAGES, stream=True) as stream:
        next(stream)
    gw.sim.wait_counters("trickle", lambda c: c.disconnected > before, timeout=10)


# -- the official openai SDK ------------------------------------------------------------------


def test_openai_sdk_with_routing_options_and_the_decision(gw) -> None:
    with gw.openai() as sdk:
        for via in ("body", "header"):
            raw = sdk.chat.completions.with_raw_response.create(
                model="m", messages=MESSAGES,
                **openai_extra(RoutingOptions(only=["slow"]), via=via))
            route = decision_from(raw)
            assert route is not None and route.chosen == "slow/slow-m", via
            assert raw.parse().choices[0].message.content
        with sdk.chat.completions.with_streaming_response.create(
                model="m", messages=MESSAGES, stream=True,
                **openai_extra({"order": ["slow"]})) as response:
            assert decision_from(response).chosen == "slow/slow-m"
            chunks = list(response.parse())
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == N


def test_openai_sdk_errors_map_to_typed_exceptions(gw) -> None:
    with gw.openai() as sdk:
        with pytest.raises(openai.APIStatusError) as err:
            sdk.chat.completions.create(model="failing", messages=MESSAGES)
        with pytest.raises(openai.NotFoundError) as missing:
            sdk.chat.completions.create(model="nope", messages=MESSAGES)
        with pytest.raises(openai.NotFoundError) as rejected:
            sdk.chat.completions.create(model="picky", messages=MESSAGES, stream=True)
    typed = error_from(err.value)
    assert isinstance(typed, NoDeploymentAvailable)
    assert [(a.deployment, a.outcome, a.status) for a in typed.attempts] == [
        ("bad1/bad1-failing", "5xx", 500), ("bad2/bad2-failing", "5xx", 500)]
    assert (typed.status, typed.code) == (503, err.value.code)
    assert typed.message == err.value.body["message"]  # the SDK prefixes its own
    assert isinstance(error_from(missing.value), ModelNotFound)
    upstream = error_from(rejected.value)
    assert isinstance(upstream, UpstreamRejected) and upstream.deployment == "picky/picky-picky"


async def test_async_openai_sdk_with_routing_options_and_the_decision(gw) -> None:
    async with gw.async_openai() as sdk:
        raw = await sdk.chat.completions.with_raw_response.create(
            model="m", messages=MESSAGES, **openai_extra({"only": ["slow"]}, via="header"))
        assert decision_from(raw).chosen == "slow/slow-m"
        assert raw.parse().choices[0].message.content


async def test_async_openai_sdk_errors_map_to_typed_exceptions(gw) -> None:
    async with gw.async_openai() as sdk:
        with pytest.raises(openai.APIStatusError) as err:
            await sdk.chat.completions.create(model="failing", messages=MESSAGES, stream=True)
    typed = error_from(err.value)
    assert isinstance(typed, NoDeploymentAvailable) and len(typed.attempts) == 2


def test_decision_from_a_response_without_one() -> None:
    assert decision_from(httpx.Response(200)) is None


class GzipProxy:
    """A reverse proxy in front of the gateway that compresses every response body as it
    streams (gzip, sync-flushed per piece), as compressing proxies and CDNs do."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream

    async def handle(self, scope, body, send) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"host", b"accept-encoding")]
        gzip = zlib.compressobj(wbits=31)
        async with httpx.AsyncClient(base_url=self.upstream) as http:
            request = http.build_request(scope["method"], scope["path"], headers=headers,
                                         content=body)
            response = await http.send(request, stream=True)
            passed = [(k, v) for k, v in response.headers.raw if k.lower() not in
                      (b"content-length", b"transfer-encoding", b"content-encoding")]
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [*passed, (b"content-encoding", b"gzip")]})
            async for piece in response.aiter_raw():
                packed = gzip.compress(piece) + gzip.flush(zlib.Z_SYNC_FLUSH)
                await send({"type": "http.response.body", "body": packed, "more_body": True})
            await send({"type": "http.response.body", "body": gzip.flush(zlib.Z_FINISH)})
            await response.aclose()


def test_stream_through_a_compressing_proxy(gw) -> None:
    with serve(http_app(GzipProxy(gw.url).handle)) as url, Client(url, MASTER_KEY) as client:
        with client.chat(model="m", messages=MESSAGES, stream=True, max_tokens=5) as stream:
            assert sum(1 for c in stream if c.text) == 5
        assert client.chat(model="m", messages=MESSAGES, max_tokens=5).usage.completion_tokens == 5


async def test_async_stream_through_a_compressing_proxy(gw) -> None:
    with serve(http_app(GzipProxy(gw.url).handle)) as url:
        async with AsyncClient(url, MASTER_KEY) as client:
            stream = await client.chat(model="m", messages=MESSAGES, stream=True, max_tokens=5)
            async with stream:
                assert len([c async for c in stream if c.text]) == 5
