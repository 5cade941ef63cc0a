"""A Messages client's `anthropic-version` / `anthropic-beta` reach Anthropic-dialect
upstreams, and nothing else of the client's headers reaches any upstream.

The official anthropic SDK is the client; the simulated providers record the headers each
request arrived with (`Simulator.request_headers`), which is what is checked.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest
from anthropic._constants import ANTHROPIC_API_VERSION

from tokenlane.providers.anthropic import ANTHROPIC_VERSION, AnthropicDialect
from tokenlane.sim import SimProviderSpec

from ..harness import MASTER_KEY, SIM_KEY
from .support import anthropic_stack

CLAUDE = SimProviderSpec(name="claude", ttft_s=0, tokens_per_s=1000, output_tokens=8,
                         time_scale=0, api_key=SIM_KEY)
BACKUP = CLAUDE.model_copy(update={"name": "backup"})
USER = [{"role": "user", "content": "Say something short."}]
BETAS = ["prompt-caching-2024-07-31", "token-efficient-tools-2025-02-19"]
ONLY_BACKUP = {"provider": {"only": ["backup/backup-m"], "allow_fallbacks": False}}


@pytest.fixture(scope="module")
def gw():
    # The operator turned one beta on for the whole provider: a client's betas join it.
    with anthropic_stack([CLAUDE, BACKUP], {"m": ["claude", "backup"]},
                         claude={"headers": {"anthropic-beta": "operator-beta"}}) as s:
        yield s


def client(gw: Any, **kwargs: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, auth_token=MASTER_KEY, max_retries=0, **kwargs)


def last_headers(gw: Any, provider: str) -> dict[str, str]:
    return gw.sim.request_headers(provider)[-1]


def test_betas_from_the_sdk_reach_the_anthropic_upstream(gw) -> None:
    message = client(gw).beta.messages.create(model="m", max_tokens=50, messages=USER,
                                              betas=BETAS)
    assert message.stop_reason == "end_turn"
    seen = last_headers(gw, "claude")
    assert seen["anthropic-beta"] == ",".join(["operator-beta", *BETAS])
    # What the SDK sent (its own API version, not the gateway's default).
    assert seen["anthropic-version"] == ANTHROPIC_API_VERSION != ANTHROPIC_VERSION


def test_streamed_requests_forward_them_too(gw) -> None:
    sdk = client(gw, default_headers={"anthropic-beta": BETAS[0]})
    with sdk.messages.stream(model="m", max_tokens=50, messages=USER) as stream:
        text = "".join(stream.text_stream)
    assert text
    assert last_headers(gw, "claude")["anthropic-beta"] == f"operator-beta,{BETAS[0]}"


def test_the_clients_version_replaces_the_default(gw) -> None:
    sdk = client(gw, default_headers={"anthropic-version": "2099-12-31"})
    sdk.messages.create(model="m", max_tokens=20, messages=USER)
    assert last_headers(gw, "claude")["anthropic-version"] == "2099-12-31"


def test_a_chat_client_gets_the_default_version_and_no_betas(gw) -> None:
    gw.openai().chat.completions.create(model="m", messages=USER, max_tokens=20)
    seen = last_headers(gw, "claude")
    assert seen["anthropic-version"] == ANTHROPIC_VERSION
    assert seen["anthropic-beta"] == "operator-beta"  # the config's own, nothing added


def test_no_other_client_header_is_forwarded(gw) -> None:
    sdk = client(gw, default_headers={"x-client-note": "private", "anthropic-beta": BETAS[0]})
    sdk.messages.create(model="m", max_tokens=20, messages=USER)
    claude = last_headers(gw, "claude")
    assert "x-client-note" not in claude
    assert MASTER_KEY not in str(gw.sim.request_headers("claude"))
    # An OpenAI-dialect deployment gets none of Anthropic's headers either.
    sdk.messages.create(model="m", max_tokens=20, messages=USER, extra_body=ONLY_BACKUP)
    backup = last_headers(gw, "backup")
    assert not [name for name in backup if name.startswith("anthropic-")]
    assert "x-client-note" not in backup


def test_an_overlong_beta_header_is_anthropics_400(gw) -> None:
    before = len(gw.sim.request_headers("claude"))
    response = httpx.post(f"{gw.url}/v1/messages", headers={
        "x-api-key": MASTER_KEY, "anthropic-beta": "b" * 2000},
        json={"model": "m", "max_tokens": 5, "messages": USER})
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "anthropic-beta" in body["error"]["message"]
    assert len(gw.sim.request_headers("claude")) == before  # refused before any upstream


async def test_trace_context_and_client_headers_travel_together(gw) -> None:
    """The dialect itself, straight to the simulated Anthropic provider: a traced request
    that also carries a client's version and betas sends all of them."""
    dialect = AnthropicDialect(gw.engine.catalog.providers["claude"])
    trace = [("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]
    body = {"model": "claude-m", "messages": USER, "max_tokens": 5, "stream": True}
    try:
        for forwarded in ((), (("anthropic-version", "2099-12-31"), ("anthropic-beta", "b1"))):
            stream = await dialect.open_stream(body, None, trace, forwarded)
            chunks = [c async for c in stream]
            await stream.aclose()
            assert chunks
            seen = gw.sim.request_headers("claude")[-1]
            assert seen["traceparent"] == trace[0][1]
            assert seen["anthropic-version"] == (dict(forwarded).get("anthropic-version")
                                                 or ANTHROPIC_VERSION)
            assert seen["anthropic-beta"] == ",".join(["operator-beta", *(
                [dict(forwarded)["anthropic-beta"]] if forwarded else [])])
    finally:
        await dialect.aclose()
