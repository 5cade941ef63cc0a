"""One failure, one typed exception: the in-process Router and the gateway clients, sync and
async, streamed or not, raise the same class with the same OpenAI error fields (message, type,
param, code), status and every attempt. The gateway runs on loopback (tests/harness.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tokenlane import (
    AsyncClient,
    AsyncStream,
    Attempt,
    ChatCompletion,
    Client,
    ModelNotFound,
    NoDeploymentAvailable,
    Router,
    StreamBroken,
    TokenlaneError,
    UpstreamRejected,
)

from ..harness import MASTER_KEY, Stack, stack
from .support import ENV, MESSAGES, instant, router_config

SPECS = [
    instant("bad1", error_rate=1.0),
    instant("bad2", error_rate=1.0),
    instant("limited", rate_limit_rate=1.0, retry_after_s=2),
    instant("picky", models=["something-else"]),
    instant("broken", fault="error_event", fault_after_tokens=3),
]
# A 429 cools its deployment down for Retry-After: one model (so one deployment) per way of
# asking, or the gateway's later requests would be refused without trying.
WAYS = 8
MODELS = {"failing": ["bad1", "bad2"], "picky": ["picky"], "broken": ["broken"],
          **{f"limited{i}": ["limited"] for i in range(WAYS)}}
# Every request here fails: circuits that opened half-way would change the attempts listed.
EXTRA = {"routing": {"circuit": {"consecutive_failures": 1000, "min_requests": 1000}}}
FIELDS = ("message", "type", "param", "code", "status")

Ask = Callable[..., TokenlaneError]


@pytest.fixture(scope="module")
def gw() -> Iterator[Stack]:
    with stack(SPECS, MODELS, extra=EXTRA, model_extra={"policy": "order"}) as s:
        yield s


def _raised(call: Callable[[], Any]) -> TokenlaneError:
    with pytest.raises(TokenlaneError) as err:
        call()
    return err.value


async def _araised(call: Callable[[], Any]) -> TokenlaneError:
    with pytest.raises(TokenlaneError) as err:
        await call()
    return err.value


def _read(result: Any) -> None:
    """Read a result to its end (a stream raises mid-way; a completion is already whole)."""
    if not isinstance(result, ChatCompletion):
        with result:
            for _ in result:
                pass


async def _aread(result: Any) -> None:
    if isinstance(result, AsyncStream):
        async with result:
            async for _ in result:
                pass


def _router_sync(gw: Stack, **kw: Any) -> TokenlaneError:
    with Router(router_config(gw.sim_url, MODELS, extra=EXTRA), env=ENV) as r:
        return _raised(lambda: _read(r.chat(messages=MESSAGES, **kw)))


def _router_async(gw: Stack, **kw: Any) -> TokenlaneError:
    async def run() -> TokenlaneError:
        async with Router(router_config(gw.sim_url, MODELS, extra=EXTRA), env=ENV) as r:
            return await _araised(lambda: _achat_and_read(r.achat, **kw))

    return asyncio.run(run())


def _client_sync(gw: Stack, **kw: Any) -> TokenlaneError:
    with Client(gw.url, MASTER_KEY) as c:
        return _raised(lambda: _read(c.chat(messages=MESSAGES, **kw)))


def _client_async(gw: Stack, **kw: Any) -> TokenlaneError:
    async def run() -> TokenlaneError:
        async with AsyncClient(gw.url, MASTER_KEY) as c:
            return await _araised(lambda: _achat_and_read(c.chat, **kw))

    return asyncio.run(run())


async def _achat_and_read(achat: Callable[..., Any], **kw: Any) -> None:
    await _aread(await achat(messages=MESSAGES, **kw))


CALLERS: dict[str, Ask] = {"Router.chat": _router_sync, "Router.achat": _router_async,
                           "Client.chat": _client_sync, "AsyncClient.chat": _client_async}


def _every_way(gw: Stack, model: str) -> dict[str, TokenlaneError]:
    """`model` asked for each way; `{i}` in it numbers the ways."""
    ways = [(name, ask, stream) for name, ask in CALLERS.items() for stream in (False, True)]
    assert len(ways) == WAYS
    return {f"{name} stream={stream}": ask(gw, model=model.format(i=i), stream=stream)
            for i, (name, ask, stream) in enumerate(ways)}


def _assert_all_alike(raised: dict[str, TokenlaneError], *extra: str) -> TokenlaneError:
    first = next(iter(raised.values()))
    for way, exc in raised.items():
        assert type(exc) is type(first), way
        assert [getattr(exc, f) for f in (*FIELDS, *extra)] == [
            getattr(first, f) for f in (*FIELDS, *extra)], way
    return first


def test_all_failed_is_no_deployment_available_with_every_attempt(gw: Stack) -> None:
    exc = _assert_all_alike(_every_way(gw, "failing"), "attempts")
    assert isinstance(exc, NoDeploymentAvailable)
    assert (exc.status, exc.type, exc.code, exc.param) == (
        503, "service_unavailable", "no_deployment_available", None)
    assert [(a.deployment, a.outcome, a.status) for a in exc.attempts] == [
        ("bad1/bad1-failing", "5xx", 500), ("bad2/bad2-failing", "5xx", 500)]
    assert all(isinstance(a, Attempt) and a.reason for a in exc.attempts)
    assert exc.message.startswith("All deployments of failing failed")
    assert all(a.deployment in exc.message for a in exc.attempts)


def test_all_rate_limited_is_a_429_with_retry_after(gw: Stack) -> None:
    raised = list(_every_way(gw, "limited{i}").values())
    first = raised[0]
    assert isinstance(first, NoDeploymentAvailable)
    assert (first.status, first.type, first.code) == (429, "requests", "rate_limit_exceeded")
    for i, exc in enumerate(raised):
        assert isinstance(exc, NoDeploymentAvailable)
        assert exc.message == first.message.replace("limited0", f"limited{i}")
        assert [getattr(exc, f) for f in FIELDS[1:]] == [getattr(first, f) for f in FIELDS[1:]]
        assert [(a.deployment, a.outcome, a.status) for a in exc.attempts] == [
            (f"limited/limited-limited{i}", "429", 429)]
        # The upstream said 2 s. In process: what is left of them; the gateway's header: whole s.
        assert exc.retry_after is not None and 0 < exc.retry_after <= 2


def test_an_upstreams_own_4xx_is_upstream_rejected_naming_the_deployment(gw: Stack) -> None:
    exc = _assert_all_alike(_every_way(gw, "picky"), "deployment", "attempts")
    assert isinstance(exc, UpstreamRejected)
    assert exc.status == 404 and exc.deployment == "picky/picky-picky"
    assert [(a.deployment, a.outcome, a.status) for a in exc.attempts] == [
        ("picky/picky-picky", "4xx", 404)]
    assert exc.type == "invalid_request_error" and exc.message


def test_an_unknown_model_is_model_not_found(gw: Stack) -> None:
    exc = _assert_all_alike(_every_way(gw, "nope"))
    assert isinstance(exc, ModelNotFound)
    assert (exc.status, exc.param, exc.code) == (404, "model", "model_not_found")


def test_a_stream_broken_after_the_first_token_raises_stream_broken(gw: Stack) -> None:
    raised = {name: ask(gw, model="broken", stream=True) for name, ask in CALLERS.items()}
    exc = _assert_all_alike(raised)
    assert isinstance(exc, StreamBroken)
    assert (exc.status, exc.code) == (502, "upstream_stream_broken")
